"""Training jobs: train and register the families (the uplift family too with campaign history), and retrain challengers compared
with the champions on the same fresh holdout (the comparison is stored on each challenger
version, where ``promote`` and the admin API's gate read it)."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from models.families import CHALLENGER, metrics_by_family
from training import compare
from training.gate import GateResult, comparison_table, gate
from training.inputs import Inputs
from training.pipeline import TrainConfig, TrainResult
from training.progress import stage_of


def in_background(work: Callable[[], Any]) -> Future:
    """Run ``work`` in a thread of its own; its result (or exception) from ``.result()``."""
    executor = ThreadPoolExecutor(1, thread_name_prefix="cvm-registry")
    try:
        return executor.submit(work)
    finally:
        executor.shutdown(wait=False)


def _ready_tracking() -> None:
    """Import MLflow and open (or create) the store: seconds of start-up that overlap the
    model fits when run in the background."""
    from training import tracking

    tracking.setup()


def current_champions() -> Future:
    """The champion estimators by family, loaded in the background (MLflow's import and the
    store's start-up included) while training starts."""

    def load() -> dict[str, Any]:
        from training import tracking

        return tracking.load_champions()

    return in_background(load)


def train_and_register(
    inputs: Inputs | Any,
    config: TrainConfig,
    previous: dict[str, Any] | Future,
    *,
    alias: str | None = None,
    progress: Callable[[str], None] = print,
) -> tuple[TrainResult, dict[str, dict[str, str]]]:
    """Fit every family on ``inputs`` and register one version each (``alias``: None gives a
    family's first version ``champion`` and later ones ``challenger``). ``previous``: the
    current champions, or a future of them (:func:`current_champions`): their cluster ids
    are kept. MLflow starts up in the background while the models are fitted."""
    # MLflow starts once: with the champions' future when given (two threads creating the
    # experiment of a new store would race)
    ready = previous if isinstance(previous, Future) else in_background(_ready_tracking)
    progress(f"training as of {inputs.as_of.date()} ...")
    result = inputs.train(config, progress=progress, previous=previous)
    ready.result()  # a registry that cannot be reached is raised here, after the fits
    from training import tracking

    registered = tracking.log_and_register(
        result,
        data_fingerprint=inputs.fingerprint(),
        extra_params={
            "transactions_file": str(inputs.tx_path),
            "customers_file": str(inputs.cust_path or ""),
            **(
                {"campaigns_file": str(inputs.campaigns_path)}
                if getattr(inputs, "campaigns_path", None)
                else {}
            ),
        },
        extra_artifacts=inputs.quarantined,
        alias=alias,
        progress=progress,
    )
    return result, registered


@dataclass
class Comparison:
    """Champion and challenger gate metrics by family on the same holdout, and the verdicts."""

    champion: dict[str, dict[str, float]]
    challenger: dict[str, dict[str, float]]
    registered: dict[str, dict[str, str]]
    gates: dict[str, GateResult]
    metrics: dict[str, float] = field(default_factory=dict)  # the challengers' training run
    # --by scheme → share of the customers the challenger gives the champion's label
    label_kept_share: dict[str, float] = field(default_factory=dict)

    def table(self) -> str:
        return comparison_table(self.champion, self.challenger)


def retrain(
    inputs: Inputs | Any,
    config: TrainConfig,
    champions: dict[str, Any],
    *,
    progress: Callable[[str], None] = print,
) -> Comparison:
    """Train challengers (registered as ``challenger``), measure them and the ``champions``
    on the same fresh holdout, and store the comparison on each challenger version."""
    result, registered = train_and_register(
        inputs, config, champions, alias=CHALLENGER, progress=progress
    )
    from training import registry, tracking

    progress("evaluating champion and challenger on the same fresh holdout ...")
    segment_k = _common_k(champions, result.holdout_models)
    with stage_of(progress, "champion against challenger", 3) as stage:
        holdout_tx, holdout_customers = inputs.holdout_data()
        holdout = compare.Holdout.build(
            holdout_tx,
            holdout_customers,
            inputs.as_of,
            churn_horizon_days=config.churn_horizon_days,
            clv_holdout_days=int(result.params["clv_holdout_days"]),  # as resolved
        )
        # the uplift challenger's holdout contacts (the latest campaigns), for both sides
        holdout.uplift = result.uplift_holdout
        stage.advance()

        def measure(models: dict[str, Any]) -> dict[str, dict[str, float]]:
            metrics = compare.holdout_metrics(models, holdout=holdout, segment_k=segment_k)
            stage.advance()
            return metrics_by_family(metrics)

        old, new = measure(champions), measure(result.holdout_models)
        if "segmentation" in champions and "segmentation" in result.holdout_models:
            new["segmentation"]["segment_label_agreement"] = compare.label_agreement(
                champions["segmentation"], result.holdout_models["segmentation"], holdout
            )
    aliases = registry.alias_versions()
    for family, info in registered.items():
        registry.save_comparison(
            family,
            info["version"],
            aliases.get(family, {}).get("champion"),
            old[family],
            new[family],
        )
    run_id = next(iter(registered.values()))["run_id"]
    tracking.log_comparison(run_id, old, new)
    kept = {}
    if _labels_both(champions, result.models):
        from training.migration_report import label_migrations

        progress("logging how the challenger relabels the champion's customers ...")
        migrations = label_migrations(champions, result.models, holdout.summary)
        tracking.log_label_migrations(run_id, migrations)
        kept = {by: float(m.kept_share_) for by, m in migrations.items()}
    gates = {family: gate(family, old[family], new[family]) for family in registered}
    return Comparison(old, new, registered, gates, result.metrics, kept)


def _labels_both(champions: dict[str, Any], challengers: dict[str, Any]) -> bool:
    """Both sides can label customers as ``cvm score`` does (segmentation and CLV models)."""
    return all(f in side for f in ("segmentation", "clv") for side in (champions, challengers))


def _common_k(champions: dict[str, Any], challengers: dict[str, Any]) -> int | None:
    """None when both segmentations have the same K (each is measured on its own labels);
    otherwise the champion's K, at which both are re-clustered."""
    if "segmentation" not in champions or "segmentation" not in challengers:
        return None
    old = compare.n_clusters(champions["segmentation"].clusters_)
    new = compare.n_clusters(challengers["segmentation"].clusters_)
    return None if old == new else old


__all__ = ["Comparison", "retrain", "train_and_register"]
