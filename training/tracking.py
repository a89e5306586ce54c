"""MLflow tracking and registry: one run per training, a registered pyfunc model per family
(three, and ``cvm-uplift`` when campaign history was given).

The only training module (with :mod:`training.pyfunc`) that imports mlflow.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import io
import json
import logging
import re
import subprocess
import tempfile
import tomllib
import warnings
from pathlib import Path
from typing import Any

import joblib
import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.models import infer_signature

import models
import training
from models.families import CHALLENGER, CHAMPION, FAMILIES
from training import config
from training.model_card import model_card
from training.pipeline import TrainResult
from training.progress import stage_of
from training.pyfunc import CVMModel, score
from training.registry import event_key

# What the registered pyfunc needs at load time (the service's web stack is not among it).
PYFUNC_DEPENDENCIES = ("numpy", "scipy", "pandas", "scikit-learn", "joblib", "mlflow")


def pip_requirements() -> list[str]:
    """The pyfunc's pip requirements with the lower bounds this package declares (its
    installed metadata, else ``pyproject.toml`` next to the sources); explicit, so MLflow
    skips its slow inference, and never out of step with the package."""
    try:
        declared = importlib.metadata.requires("cvm") or []
    except importlib.metadata.PackageNotFoundError:
        pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
        declared = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["dependencies"]
    by_name = {}
    for requirement in declared:
        if ";" in requirement:  # extras and markers: not needed to load the model
            continue
        name = re.split(r"[\[<>=!~ ]", requirement, maxsplit=1)[0].lower()
        by_name[name] = requirement.replace(" ", "")
    missing = [name for name in PYFUNC_DEPENDENCIES if name not in by_name]
    if missing:
        raise RuntimeError(f"pyproject.toml does not declare {', '.join(missing)}")
    return [by_name[name] for name in PYFUNC_DEPENDENCIES]


def setup() -> str:
    """Point MLflow at the configured store and experiment; returns the experiment id."""
    logging.getLogger("mlflow").setLevel(logging.WARNING)  # our own progress lines suffice
    mlflow.set_tracking_uri(config.tracking_uri())
    mlflow.set_registry_uri(config.tracking_uri())
    name = config.experiment_name()
    experiment = mlflow.get_experiment_by_name(name)
    if experiment is None:
        uri = config.tracking_uri()
        try:
            if uri.startswith(("http://", "https://")):  # the server decides where artifacts live
                experiment_id = mlflow.create_experiment(name)
            else:
                experiment_id = mlflow.create_experiment(
                    name, artifact_location=config.artifact_root()
                )
        except mlflow.exceptions.MlflowException as exc:
            # Another trainer created it between our look-up and our creation.
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
            experiment = mlflow.get_experiment_by_name(name)
            if experiment is None:
                raise
            experiment_id = experiment.experiment_id
    else:
        experiment_id = experiment.experiment_id
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id


def git_commit() -> str | None:
    """The code version (git commit of the source tree) when available."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def champion_versions() -> dict[str, str | None]:
    """The version each family's ``champion`` alias points to (None when absent); an optional
    family (uplift) only when it has one."""
    setup()
    client = MlflowClient()
    out: dict[str, str | None] = {}
    for family, name in config.REGISTERED_NAMES.items():
        try:
            out[family] = str(client.get_model_version_by_alias(name, CHAMPION).version)
        except mlflow.exceptions.MlflowException:
            if FAMILIES[family].required:
                out[family] = None
    return out


def _has_alias(client: MlflowClient, name: str, alias: str) -> bool:
    """Whether ``name@alias`` exists (a registry that cannot be read raises)."""
    from models import registry_errors

    try:
        client.get_model_version_by_alias(name, alias)
    except mlflow.exceptions.MlflowException as exc:
        if registry_errors.is_missing(exc):
            return False
        raise
    return True


# A lower version this much older than ours with no alias decision is a trainer that died
# between registering and choosing the alias, not one that is still choosing (milliseconds).
UNDECIDED_FOR_MS = 10 * 60 * 1000


def _decided(version: Any) -> bool:
    """Whether training (or anyone) gave the version an alias: it holds one, or it has the
    ``registered`` event that training records right after it sets the alias."""
    if getattr(version, "aliases", None):
        return True
    return any(k.startswith("event.") and k.endswith(".registered") for k in version.tags)


def initial_alias(client: MlflowClient, name: str, version: str) -> str:
    """The alias training gives a version it has just registered: ``challenger`` when the
    family has a champion; otherwise ``champion``, unless a lower-numbered version of the
    family, registered at most :data:`UNDECIDED_FOR_MS` before this one, has no alias decision
    yet: a trainer running at the same time, whose version came first and so becomes the
    champion. Version numbers are the one thing the registry hands out atomically, so however
    two trainers interleave, the lower version is the champion and the higher the challenger.

    Order matters: the other versions are read before the champion is read again, and
    training sets the alias before it records the ``registered`` event, so a lower version
    seen decided has its alias visible by then."""
    if _has_alias(client, name, CHAMPION):
        return CHALLENGER
    mine = client.get_model_version(name, version)
    for other in client.search_model_versions(f"name='{name}'"):
        if int(other.version) >= int(version) or _decided(other):
            continue
        if int(mine.creation_timestamp) - int(other.creation_timestamp) < UNDECIDED_FOR_MS:
            return CHALLENGER
    return CHALLENGER if _has_alias(client, name, CHAMPION) else CHAMPION


def log_comparison(
    run_id: str, champion: dict[str, dict[str, float]], challenger: dict[str, dict[str, float]]
) -> None:
    """Log the holdout comparison to the challenger's run (``compare_champion_*`` / ``_challenger_*``)."""
    setup()
    client = MlflowClient()
    for side, metrics in (("champion", champion), ("challenger", challenger)):
        for values in metrics.values():
            for key, value in values.items():
                client.log_metric(run_id, f"compare_{side}_{key}", float(value))


def log_label_migrations(run_id: str, migrations: dict[str, Any]) -> None:
    """Log to the challenger's run, for each scheme, how its labels move from the champion's
    (:class:`models.migration.CustomerMigration` of the same customers as of one date):
    ``label_migration/<scheme>.csv`` (the transitions), ``label_migration/<scheme>.png`` (the
    heat map) and the metric ``label_kept_share_<scheme>`` (the share of customers keeping
    their label)."""
    from training.migration_report import plot_transitions

    setup()
    client = MlflowClient()
    with tempfile.TemporaryDirectory() as tmp:
        for scheme, migration in migrations.items():
            table = Path(tmp) / f"{scheme}.csv"
            migration.transitions().to_csv(table, index=False)
            chart = plot_transitions(
                migration,
                Path(tmp) / f"{scheme}.png",
                f"Champion to challenger: {scheme}",
                "champion's label",
                "challenger's label",
            )
            for path in (table, chart):
                client.log_artifact(run_id, str(path), "label_migration")
            client.log_metric(run_id, f"label_kept_share_{scheme}", float(migration.kept_share_))


def load_champions() -> dict[str, Any]:
    """The current champion estimators by family (families without one are left out)."""
    setup()
    client = MlflowClient()
    out: dict[str, Any] = {}
    for family, name in config.REGISTERED_NAMES.items():
        try:
            version = client.get_model_version_by_alias(name, CHAMPION)
        except mlflow.exceptions.MlflowException:
            continue
        source = client.get_model_version_download_uri(name, version.version)
        out[family] = mlflow.pyfunc.load_model(source).unwrap_python_model().model
    return out


def champion_signature(family: str) -> tuple[str, list[dict[str, Any]]] | None:
    """(version, input columns) of the family's champion: its MLflow signature as
    ``Schema.to_dict()``, the columns ``/v1/models/{name}/invocations`` takes; None when the
    family has no champion or the champion has no signature. Reads the model's MLmodel file
    only, nothing is loaded."""
    from models import registry_errors

    uri = config.tracking_uri()
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    name = config.REGISTERED_NAMES[family]
    try:
        version = client.get_model_version_by_alias(name, CHAMPION)
    except mlflow.exceptions.MlflowException as exc:
        if registry_errors.is_missing(exc):
            return None
        raise
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    signature = mlflow.models.get_model_info(f"models:/{name}/{version.version}").signature
    if signature is None or signature.inputs is None:
        return None
    return str(version.version), signature.inputs.to_dict()


def log_and_register(
    result: TrainResult,
    *,
    data_fingerprint: str,
    extra_params: dict[str, Any] | None = None,
    extra_artifacts: list[Path] | None = None,
    alias: str | None = None,
    progress: Any = print,
) -> dict[str, dict[str, str]]:
    """Log the run (params, metrics, plots, fingerprint) and register each family's model
    (the three required ones, and ``cvm-uplift`` when the run trained it).

    A family's first version gets the alias ``champion``; later versions get ``challenger``
    (promotion is a separate, gated step; see :func:`initial_alias` for trainers running at
    the same time); ``alias`` forces one. The ``registered`` event is recorded after the alias
    is set (:func:`initial_alias` relies on that order). Returns ``{family: {"name", "version", "alias",
    "run_id"}}``.
    """
    setup()
    client = MlflowClient()
    code_paths = [str(Path(models.__file__).parent), str(Path(training.__file__).parent)]
    commit = git_commit()
    registered: dict[str, dict[str, str]] = {}
    with mlflow.start_run(run_name=f"train as of {result.params['as_of']}") as run:
        mlflow.log_params({**result.params, **(extra_params or {})})
        mlflow.log_metrics(result.metrics)
        tags = {
            "data_fingerprint": data_fingerprint,
            "as_of": result.params["as_of"],
            "cvm_model_format": str(models.MODEL_FORMAT),
        }
        if commit:
            tags["git_commit"] = commit
        mlflow.set_tags(tags)
        for filename, figure in result.figures.items():
            mlflow.log_figure(figure, f"plots/{filename}")
        for name, table in result.tables.items():
            mlflow.log_text(table.to_csv(), f"tables/{name}.csv")
        for name, text in result.texts.items():
            mlflow.log_text(text, f"tables/{name}")
        for path in extra_artifacts or []:
            mlflow.log_artifact(str(path), "data_reports")
        with (
            stage_of(progress, "registering", len(result.models)) as stage,
            tempfile.TemporaryDirectory() as tmp,
        ):
            for family, estimator in result.models.items():
                name = config.REGISTERED_NAMES[family]
                progress(f"logging and registering {name} ...")
                model_file = Path(tmp) / f"{family}.joblib"
                joblib.dump(estimator, model_file)
                reference_file = Path(tmp) / f"{family}_drift_reference.json"
                reference_file.write_text(json.dumps(result.drift_references.get(family, {})))
                card_file = Path(tmp) / f"{family}_model_card.md"
                card_file.write_text(model_card(family, name, result, data_fingerprint, commit))
                mlflow.log_artifact(str(card_file), "model_cards")
                # Integers become doubles so that missing values at scoring time fit the schema.
                example = result.input_examples[family].apply(
                    lambda col: col.astype("float64") if pd.api.types.is_integer_dtype(col) else col
                )
                with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
                    warnings.simplefilter("ignore")  # MLflow's advice on pickling and integers
                    signature = infer_signature(example, score(family, estimator, example))
                    info = mlflow.pyfunc.log_model(
                        name=family,
                        python_model=CVMModel(family),
                        artifacts={
                            "model": str(model_file),
                            "drift_reference": str(reference_file),
                            "model_card": str(card_file),
                        },
                        code_paths=code_paths,
                        signature=signature,
                        input_example=example.reset_index(drop=True),
                        pip_requirements=pip_requirements(),
                        registered_model_name=name,
                    )
                version = str(info.registered_model_version)
                target = alias or initial_alias(client, name, version)
                client.set_registered_model_alias(name, target, version)
                client.set_model_version_tag(
                    name, version, event_key("registered"), f"registered as @{target} by training"
                )
                for key, value in {**tags, "family": family, "run_id": run.info.run_id}.items():
                    client.set_model_version_tag(name, version, key, value)
                registered[family] = {
                    "name": name,
                    "version": version,
                    "alias": target,
                    "run_id": run.info.run_id,
                }
                stage.advance()
    return registered


__all__ = ["setup", "log_and_register", "champion_versions", "initial_alias"]
