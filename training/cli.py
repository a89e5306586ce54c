"""The ``cvm`` command: generate demo data, train, and serve.

Every user error (bad file, bad option) ends with one line on stderr and exit code 2; a
registry that cannot be reached or read, with exit code 75 (try again later); no traceback and
no password. ``CVM_DEBUG=1`` shows tracebacks.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from models.exceptions import CVMError, InvalidInputError
from models.families import FAMILIES, REQUIRED_FAMILIES, mixed_as_of
from models.redact import redact

if TYPE_CHECKING:
    from service.config import Settings

EXIT_USAGE = 2
EXIT_REFUSED = 3  # promote: nothing was promoted (the gate refused, or a check failed)
EXIT_PARTIAL = 4  # promote: some families were promoted, others not
EXIT_UNAVAILABLE = 75  # the registry cannot be reached or read now: try again (EX_TEMPFAIL)
# `cvm report churn --by`: models.churn.segment_kpi.SEGMENT_SCHEMES (named here so that the
# parser does not import the models; a test holds the two equal)
REPORT_SCHEMES = ("value_matrix", "rfm", "lifecycle", "nine_grid", "cluster")


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _risk_bands(value: str) -> tuple[str, tuple[float, float]]:
    from models.churn.risk import parse_bands

    try:
        return parse_bands(value)
    except CVMError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _value_index(value: str) -> dict[str, Any]:
    from models.segments.value_index import resolve_value_index

    try:
        return resolve_value_index(value)
    except CVMError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _parse_date(value: str) -> pd.Timestamp:
    try:
        return pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        raise argparse.ArgumentTypeError(f"not a date: {value!r} (use YYYY-MM-DD)") from exc


def _money(value: str) -> float:
    try:
        number = float(value.replace(",", "").replace("_", ""))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from exc
    if not number >= 0 or number == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number >= 0: {value!r}")
    return number


def _save_rates(value: str) -> dict[str, float]:
    from models.planner import parse_save_rates

    try:
        return parse_save_rates(value)
    except CVMError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def cmd_generate(args: argparse.Namespace) -> int:
    from training import synthetic

    start = time.perf_counter()
    if args.period:
        if args.campaign_plan:
            _say("error: --campaign-plan plays a plan into the campaigns; --period data have none")
            return 2
        return _generate_discrete(args, start)
    _say(f"generating {args.customers:,} customers (seed {args.seed}) ...")
    transactions, customers, truth = synthetic.generate(
        args.customers, seed=args.seed, as_of=args.as_of or "2025-12-31"
    )
    campaigns = None
    planned = None
    if args.campaign_plan:
        if not args.campaigns:
            _say("error: --campaign-plan needs the campaigns (leave out --no-campaigns)")
            return 2
        plan_path = Path(args.campaign_plan)
        if not plan_path.is_file():
            _say(f"error: {plan_path}: file not found (write it with cvm plan --out)")
            return 2
        if plan_path.suffix.lower() in (".parquet", ".pq"):
            planned = pd.read_parquet(plan_path)
        else:
            planned = pd.read_csv(plan_path, dtype=str)
    if args.campaigns:
        try:
            transactions, campaigns, truth = synthetic.generate_campaigns(
                transactions,
                customers,
                truth,
                seed=args.seed,
                planned=planned,
                planned_id=args.plan_campaign_id or _send_campaign_id(planned),
                planned_control_share=args.plan_control_share,
            )
        except InvalidInputError as exc:
            if planned is None:
                raise
            _say(f"error: {args.campaign_plan}: {exc}")
            return 2
    paths = synthetic.write(
        args.out, transactions, customers, truth, fmt=args.format, campaigns=campaigns
    )
    contacts = f" and {len(campaigns):,} campaign contacts" if campaigns is not None else ""
    _say(
        f"wrote {len(transactions):,} transactions, {len(customers):,} customers{contacts} in "
        f"{time.perf_counter() - start:.1f}s:"
    )
    for path in paths.values():
        print(path)
    return 0


def _generate_discrete(args: argparse.Namespace, start: float) -> int:
    """``cvm generate --period``: a discrete-opportunity data set (BG/BB truth)."""
    from training import synthetic
    from training.synthetic_discrete import generate_discrete

    _say(f"generating {args.customers:,} customers, one chance to buy per {args.period} ...")
    transactions, customers, truth = generate_discrete(
        args.customers, seed=args.seed, as_of=args.as_of or "2025-12-31", period=args.period
    )
    paths = synthetic.write(args.out, transactions, customers, truth, fmt=args.format)
    _say(
        f"wrote {len(transactions):,} transactions, {len(customers):,} customers in "
        f"{time.perf_counter() - start:.1f}s:"
    )
    for path in paths.values():
        print(path)
    return 0


def _inputs(args: argparse.Namespace) -> Any:
    """The files named by the shared data options, validated (or demo data with --demo);
    read in Spark with ``--engine spark``."""
    from training.inputs import load_inputs

    model, period = getattr(args, "clv_model", "auto"), getattr(args, "period", None)
    if period and model not in ("auto", "bgbb"):  # said before the data is read
        raise CVMError(
            f"--period {period} is for --model bgbb (or auto, where BG/BB per {period} joins "
            f"the candidates); {model} is a continuous-time model"
        )
    if getattr(args, "engine", "pandas") == "spark":
        if model == "bgbb" or period:
            raise CVMError(
                "--model bgbb and --period (BG/BB for discrete-opportunity data) are trained "
                "by the pandas engine only: leave out --engine spark"
            )
        if getattr(args, "campaigns_file", None):
            _say(
                f"warning: --campaigns {args.campaigns_file} is not used with --engine spark: "
                "the uplift model (cvm-uplift) is trained by the pandas engine only; the "
                "other families are trained without it"
            )
        return _spark_inputs(args)

    return load_inputs(
        args.transactions,
        args.customers,
        args.as_of,
        bad_rows=args.bad_rows,
        keep_duplicates=args.keep_duplicates,
        demo_customers=args.demo_customers if getattr(args, "demo", False) else None,
        seed=getattr(args, "seed", 0),
        progress=(lambda message: None) if getattr(args, "quiet", False) else _say,
        warn=_say,
        command=args.command,
        campaigns=getattr(args, "campaigns_file", None),
    )


def _spark(args: argparse.Namespace) -> Any:
    """The Spark session of ``--engine spark`` (``--spark-master``, ``--spark-conf``)."""
    from training.spark.session import check_engine, parse_conf, spark_session

    conf = parse_conf(args.spark_conf)
    check_engine()  # PySpark and Java: one line saying what to install
    if not getattr(args, "quiet", False):
        _say(f"starting Spark ({args.spark_master}) ...")
    return spark_session(args.spark_master, conf)


def _spark_inputs(args: argparse.Namespace) -> Any:
    from training.spark.train import load_spark_inputs

    if getattr(args, "demo", False):
        raise CVMError(
            "--demo is not available with --engine spark: generate data first "
            "(cvm generate --format parquet) and pass --transactions"
        )
    if not args.transactions:
        raise CVMError("give --transactions PATH (a file, folder or glob) with --engine spark")
    quiet = getattr(args, "quiet", False)
    return load_spark_inputs(
        _spark(args),
        args.transactions,
        args.customers,
        args.as_of,
        bad_rows=args.bad_rows,
        keep_duplicates=args.keep_duplicates,
        progress=(lambda message: None) if quiet else _say,
        warn=_say,
        command=args.command,
        sample_customers=getattr(args, "sample_customers", 0) or 0,
        holdout_customers=getattr(args, "holdout_customers", 0) or 0,
        seed=getattr(args, "seed", 0),
    )


# TrainConfig field ← the training option that sets it.
_CONFIG_OPTIONS = {
    "churn_horizon_days": "horizon_days",
    "clv_holdout_days": "holdout_days",
    "clv_horizon_days": "clv_horizon_days",
    "discount_rate": "discount_rate",
    "margin": "margin",
    "churn_max_iter": "churn_max_iter",
    "uplift_window_days": "campaign_window_days",
    "value_index": "value_index",
    "clv_model": "clv_model",
    "clv_period": "period",
}


def _train_config(args: argparse.Namespace, as_of: pd.Timestamp) -> Any:
    from training.pipeline import TrainConfig

    settings = {field: getattr(args, option) for field, option in _CONFIG_OPTIONS.items()}
    if args.risk_bands is not None:
        settings["risk_bands"] = args.risk_bands
    return TrainConfig(as_of=as_of, drop_leaky=not args.keep_leaky, **settings)


def _print_registered(registered: dict[str, dict[str, str]]) -> None:
    from training import config

    for info in registered.values():
        print(f"registered {info['name']} version {info['version']} as @{info['alias']}")
    where = redact(config.tracking_uri())
    print(f"MLflow run {next(iter(registered.values()))['run_id']} in {where}")


def _progress(args: argparse.Namespace) -> Any:
    """Where a data command's progress goes: a live line with the time left on a terminal,
    plain stamped lines otherwise, nothing with ``--quiet``."""
    from training.progress import Progress

    return Progress(mode="quiet" if getattr(args, "quiet", False) else "auto")


def _results(metrics: dict[str, float], verbose: bool) -> str:
    """Every metric with ``--verbose``; by default the few that say how each family did."""
    from training.pipeline import metrics_summary, metrics_table

    return metrics_table(metrics) if verbose else metrics_summary(metrics)


def cmd_train(args: argparse.Namespace) -> int:
    from training.retrain import current_champions, train_and_register

    if args.if_missing:
        from training import tracking

        existing = tracking.champion_versions()
        if all(existing[f] for f in REQUIRED_FAMILIES):
            versions = ", ".join(f"{k} v{v}" for k, v in existing.items() if v)
            _say(f"champion models exist ({versions}); nothing to train (--if-missing)")
            return 0
    inputs = _inputs(args)
    with _progress(args) as progress:
        result, registered = train_and_register(
            inputs, _train_config(args, inputs.as_of), current_champions(), progress=progress
        )
    print(_results(result.metrics, args.verbose))
    print()
    _print_registered(registered)
    return 0


def cmd_retrain(args: argparse.Namespace) -> int:
    """Train challengers and compare them with the champions on the same fresh holdout."""
    from training import tracking
    from training.retrain import retrain

    champions = tracking.load_champions()
    if not champions:
        _say("error: no champion models to compare with: run cvm train first")
        return EXIT_USAGE
    inputs = _inputs(args)
    with _progress(args) as progress:
        comparison = retrain(
            inputs, _train_config(args, inputs.as_of), champions, progress=progress
        )
    if args.verbose:
        print(_results(comparison.metrics, True))
        print()
    print(comparison.table())
    if comparison.label_kept_share:
        kept = ", ".join(f"{k} {100 * v:.1f}%" for k, v in comparison.label_kept_share.items())
        print(f"customers keeping their segment label with the challenger: {kept}")
    print()
    for result in comparison.gates.values():
        print(result.message())
    print()
    _print_registered(comparison.registered)
    print("promote with: cvm promote [--family F] [--force]")
    return 0


def _tolerances(values: list[str]) -> dict[str, Any]:
    """``METRIC=NUMBER`` (absolute) or ``METRIC=NUMBER%`` (of the champion's value)."""
    from training.gate import Tolerance

    out = {}
    for item in values:
        key, sign, value = item.partition("=")
        try:
            if not sign or not key.strip():
                raise ValueError(item)
            out[key.strip()] = Tolerance.parse(value, key.strip())
        except (ValueError, CVMError) as exc:
            raise CVMError(
                f"--tolerance {item!r}: use METRIC=NUMBER (in the metric's units, e.g. "
                "churn_roc_auc=0.02) or METRIC=PERCENT% (of the champion's value, e.g. "
                "clv_holdout_mae=5%)"
            ) from exc
    return out


def cmd_promote(args: argparse.Namespace) -> int:
    """Exit 0 when every family asked for was promoted, 4 when some were, 3 when none."""
    from training import registry

    families = [args.family] if args.family else _promotable()
    tolerances = _tolerances(args.tolerance)
    promoted = 0
    for family in families:
        try:
            outcome = registry.promote(
                family,
                force=args.force,
                tolerances=tolerances,
                reason=args.reason or "",
                skip_load_check=args.skip_load_check,
            )
        except registry.RegistryError as exc:
            _say(f"{family}: {exc}")
            continue
        if outcome.gate is not None:
            for line in outcome.gate.reasons:
                _say(f"  {family}: {line}")
        print(f"{family}: {outcome.message}")
        promoted += outcome.promoted
    if promoted:
        warning = mixed_as_of(registry.champion_as_of())
        if warning:
            _say(f"warning: {warning}")
    if promoted == len(families):
        return 0
    if promoted:
        _say(f"promoted {promoted} of {len(families)} families (exit {EXIT_PARTIAL})")
        return EXIT_PARTIAL
    return EXIT_REFUSED


def _promotable() -> list[str]:
    """What ``cvm promote`` without ``--family`` promotes: the required families, and an
    optional one (uplift) when it has a challenger (a registry that never saw campaign
    history has none)."""
    from training import registry

    aliases = registry.alias_versions()
    return [
        f
        for f, family in FAMILIES.items()
        if family.required or aliases.get(f, {}).get("challenger")
    ]


def cmd_rollback(args: argparse.Namespace) -> int:
    from training import registry

    old, new = registry.rollback(args.family, reason=args.reason or "")  # errors: exit 2
    print(f"{args.family}: @champion moved back from v{old} to v{new}")
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    if args.engine == "spark":
        return _score_spark(args)
    from training import batch, tracking

    models = tracking.load_champions()
    missing = [f for f in REQUIRED_FAMILIES if f not in models]
    if missing:
        _say(f"error: no champion model for {', '.join(missing)}: train first (cvm train)")
        return EXIT_USAGE
    inputs = _inputs(args)
    with _progress(args) as progress:
        progress(f"scoring as of {inputs.as_of.date()} ...")
        scored = batch.score_customers(
            models, inputs.transactions, inputs.customers, inputs.as_of, progress=progress
        )
    out = Path(args.out)
    batch.write_table(scored, out)
    _say(f"wrote {len(scored):,} customers x {scored.shape[1]} columns to {out}")
    return 0


def _score_spark(args: argparse.Namespace) -> int:
    """``cvm score --engine spark``: a Parquet folder with the pandas scoring's columns."""
    from training.spark.score import resolve_versions, score_customers

    versions = resolve_versions()  # before the data: a missing model is said at once
    inputs = _inputs(args)
    out = args.out
    start = time.perf_counter()
    with _progress(args) as progress:
        progress(f"scoring as of {inputs.as_of.date()} ...")
        scored = score_customers(
            inputs.spark,
            inputs.transactions,
            inputs.customers,
            inputs.as_of,
            versions,
            inputs.n_transactions,
            progress=progress,
        )
        scored.write.mode("overwrite").parquet(out)
    written = inputs.spark.read.parquet(out)
    _say(
        f"wrote {written.count():,} customers x {len(written.columns)} columns to {out}/ "
        f"({time.perf_counter() - start:.1f}s)"
    )
    return 0


def cmd_audience(args: argparse.Namespace) -> int:
    from training import batch

    scored = batch.read_scored(Path(args.source))
    chosen = batch.audience(scored, args.scheme, args.label)
    out = Path(args.out)
    batch.write_table(chosen, out)
    _say(f"wrote {len(chosen):,} customers with {args.scheme} = {args.label} to {out}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """Churn rate and churn loss by period (and segment), with the change from the period before."""
    if args.kind == "campaign":
        return _report_campaign(args)
    if args.kind == "migration":
        return _report_migration(args)
    if args.kind in ("concentration", "cohorts"):
        return _report_value(args)
    from training.reports import churn_report, format_churn_table, plot_churn_rates

    models = None
    if args.by:
        if args.segment:
            _say("error: give --segment (a customer-table column) or --by (a scheme), not both")
            return EXIT_USAGE
        from training import tracking

        models = tracking.load_champions()
        missing = [f for f in ("segmentation", "clv") if f not in models]
        if missing:
            _say(f"error: --by needs the champion {' and '.join(missing)} model: train first")
            return EXIT_USAGE
    table = churn_report(
        _inputs(args),
        start=pd.Timestamp(args.start) if args.start else None,
        freq=args.freq,
        segment=args.segment,
        active_days=args.active_days,
        margin=args.margin,
        by=args.by,
        models=models,
    )
    with pd.option_context("display.width", 250, "display.max_columns", 30):
        print(format_churn_table(table))
    if args.by:
        _say(f"segments: each customer's {args.by} label as of the start of each period")
    _say(f"wrote the chart to {plot_churn_rates(table, args.chart or 'churn_report.png')}")
    if args.csv:
        table.to_csv(args.csv, index=False)
        _say(f"wrote the table to {args.csv}")
    return 0


def _report_value(args: argparse.Namespace) -> int:
    """``cvm report concentration`` (profit held by the top customers, Lorenz curve) and
    ``cvm report cohorts`` (retention and revenue by acquisition month)."""
    from training.value_reports import write_report

    inputs = _inputs(args)
    text, written = write_report(
        args.kind,
        inputs.transactions,
        inputs.as_of,
        start=pd.Timestamp(args.start) if args.start else None,
        margin=args.margin,
        chart=args.chart,
        csv=args.csv,
    )
    with pd.option_context("display.width", 250, "display.max_columns", 40):
        print(text)
    _say(f"wrote the chart to {written[0]} and the table to {written[1]}")
    return 0


def _send_campaign_id(planned: pd.DataFrame | None) -> str:
    """The campaign id of a send file (``cvm plan --campaign-out``) when it names one, else
    ``plan``."""
    if planned is not None and "campaign_id" in planned.columns:
        ids = planned["campaign_id"].dropna().astype(str).unique()
        if len(ids) == 1:
            return str(ids[0])
    return "plan"


def cmd_plan(args: argparse.Namespace) -> int:
    """A retention campaign within a budget: whom to contact, with which offer."""
    from models.planner import (
        DEFAULT_UPLIFT_Z,
        check_control_share,
        check_z,
        format_summary,
        load_offers,
        unmeasured_offers,
    )
    from training import batch, plan, tracking

    offers = load_offers(args.offers)  # a bad offers file fails before the data is read
    if args.uplift_z is not None:
        check_z(args.uplift_z, field="--uplift-z")
    if args.campaign_out:
        check_control_share(args.control_share)  # before the data is read
    models = tracking.load_champions()
    missing = [f for f in REQUIRED_FAMILIES if f not in models]
    if missing:
        _say(f"error: no champion model for {', '.join(missing)}: train first (cvm train)")
        return EXIT_USAGE
    if args.campaigns and not Path(args.campaigns).exists():
        _say(f"error: {args.campaigns}: campaigns file not found")
        return EXIT_USAGE
    inputs = _inputs(args)
    with _progress(args) as progress:
        progress(f"scoring as of {inputs.as_of.date()} ...")
        result = plan.plan_campaign(
            models,
            inputs.transactions,
            inputs.customers,
            inputs.as_of,
            offers,
            args.budget,
            acquisition_cost=args.acquisition_cost,
            save_rates=args.save_rates,
            uplift_z=DEFAULT_UPLIFT_Z if args.uplift_z is None else args.uplift_z,
            progress=progress,
        )
    if args.campaigns and result.summary["assumption_based"]:
        _say(
            f"note: {args.campaigns} is not used yet: no uplift model is served, so the plan "
            "uses the assumed save rates"
        )
    print(format_summary(result.summary))
    out = Path(args.out)
    plan.write_contacts(result, out)
    _say(f"wrote {len(result.contacts):,} contacts to {out}")
    if args.campaign_out:
        send = args.send_date or inputs.as_of.normalize() + pd.Timedelta(days=1)
        rows = plan.campaign_rows(
            result.contacts, args.campaign_id, send, args.control_share, args.seed
        )
        is_held = (rows["treatment"] == "control").to_numpy()
        held = int(is_held.sum())
        batch.write_table(rows, Path(args.campaign_out))
        unmeasured = unmeasured_offers(rows["planned_offer"], is_held)
        if unmeasured:
            _say(
                f"warning: no contact of offer(s) {', '.join(unmeasured)} was held out (too "
                "few contacts for --control-share): their effect cannot be measured on its own"
            )
        _say(
            f"wrote campaign {args.campaign_id!r} (sent {send.date()}) to {args.campaign_out}: "
            f"{len(rows) - held:,} contacts, {held:,} held out as control "
            f"(expected spend {rows['cost'].sum():,.2f} of the plan's "
            f"{result.summary['expected_spend']:,.2f})"
        )
    return 0


def _report_campaign(args: argparse.Namespace) -> int:
    """What one campaign earned: treated vs control, with 95 % intervals (terminal, chart,
    MLflow run)."""
    from training import campaign_report as cr

    if not args.campaign_id or not args.campaigns_file:
        _say("error: cvm report campaign needs --campaign-id and --campaigns")
        return EXIT_USAGE
    inputs = _inputs(args)  # the campaigns file too: its load line, bad rows and quarantine
    table = cr.report_from_frames(
        inputs.campaigns,
        inputs.transactions,
        args.campaign_id,
        window_days=args.window_days,
        margin_rate=args.margin_rate,
        as_of=inputs.as_of,
    )
    for warning in table.attrs.get("warnings", []):
        _say(f"warning: {warning}")
    with pd.option_context("display.width", 250, "display.max_columns", 30):
        print(cr.format_report(table, args.campaign_id))
    chart = cr.plot_campaign(table, args.chart or "campaign_report.png")
    _say(f"wrote the chart to {chart}")
    if not args.no_mlflow:
        params = {
            "campaign_id": args.campaign_id,
            "window_days": args.window_days,
            "margin_rate": args.margin_rate,
            "window_complete": not table.attrs.get("warnings"),
            "retention_interval": cr.RETENTION_METHOD,
            "spend_interval": cr.SPEND_METHOD,
        }
        _say(f"logged to MLflow run {cr.log_report(table, chart, params)}")
    return 0


def _report_migration(args: argparse.Namespace) -> int:
    """How customers moved between segments from --from to --to, and the customer equity
    that movement implies (Markov chain; terminal, chart, CSV)."""
    from training import migration_report as mr
    from training import tracking

    mr.check_order(args.from_date, args.to_date)  # before anything is loaded
    by, csv = args.by or "rfm", args.csv or "migration.csv"
    mr.check_csv(csv)
    models = tracking.load_champions()
    missing = [f for f in ("segmentation", "clv") if f not in models]
    if missing:
        _say(f"error: no champion model for {', '.join(missing)}: train first (cvm train)")
        return EXIT_USAGE
    inputs = _inputs(args)
    mr.check_in_data(
        args.from_date, args.to_date, inputs.transactions, inputs.as_of, inputs.tx_path
    )
    report = mr.migration_report(
        models,
        inputs.transactions,
        inputs.customers,
        args.from_date,
        args.to_date,
        by,
        periods=args.periods,
        annual_discount_rate=args.discount_rate,
        margin=args.margin,
    )
    with pd.option_context("display.width", 250, "display.max_columns", 30):
        print(mr.format_report(report))
    table, equity = mr.write_tables(report, csv)
    chart = mr.plot_transitions(
        report.model,
        args.chart or "migration_report.png",
        f"Customer migration by {by}",
        f"label at {report.start.date()}",
        f"label at {report.end.date()}",
    )
    _say(f"wrote {table}, {equity} and the chart {chart}")
    return 0


def cmd_risk(args: argparse.Namespace) -> int:
    """The high-value, high-risk customers first: P(churn) × CLV with the champion models."""
    from models.churn.kpi import value_at_risk
    from training import batch, tracking

    models = tracking.load_champions()
    if len(models) < 3:
        _say("error: no champion models: train first (cvm train)")
        return EXIT_USAGE
    inputs = _inputs(args)
    with _progress(args) as progress:
        scored = batch.score_customers(
            models, inputs.transactions, inputs.customers, inputs.as_of, progress=progress
        ).set_index("customer_id")
    from models.churn.risk import thresholds_of

    ranked = value_at_risk(
        scored["churn_probability"],
        scored["clv"],
        top=args.top,
        thresholds=thresholds_of(models["churn"]),
    )
    ranked = ranked.join(scored[["rfm_segment", "recommended_action"]])
    with pd.option_context("display.width", 200, "display.max_colwidth", 60):
        print(ranked.to_string(float_format=lambda v: f"{v:,.3f}"))
    if args.out:
        batch.write_table(batch.for_export(ranked.reset_index()), Path(args.out))
        _say(f"wrote {len(ranked):,} customers to {args.out}")
    return 0


def cmd_features(args: argparse.Namespace) -> int:
    """The invocation rows of one model family for a transactions file."""
    from training import invocation_features as inv

    out = Path(args.out)
    inv.output_format(out)  # a bad file name fails before the data is read
    inputs = _inputs(args)
    frame = inv.invocation_features(
        args.family,
        inputs.transactions,
        inputs.customers,
        inputs.as_of,
        all_columns=args.all_columns,
        with_ids=args.with_ids,
        say=(lambda message: None) if args.quiet else _say,
    )
    inv.write(frame, out)
    _say(
        f"wrote {len(frame):,} customers x {frame.shape[1]} columns to {out} (customer id "
        f"order, as of {inputs.as_of.date()})"
    )
    return 0


def _check_port_free(host: str, port: int) -> None:
    """A one-line error (exit 2) when ``host:port`` cannot be bound, before anything loads."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise CVMError(f"cannot serve on --host {host!r}: {exc.strerror}") from exc
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            raise CVMError(
                f"cannot serve on {host}:{port}: {exc.strerror} (choose another with --port)"
            ) from exc


def _check_service_settings() -> Settings:
    """Settings the service would refuse at start-up (a key setting holding no key) are a
    one-line error (exit 2) here, not a traceback from inside uvicorn."""
    from service.config import Settings
    from service.security import Guard

    settings = Settings()
    Guard.from_settings(settings)  # raises KeySettingError, a CVMError
    return settings


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    settings = _check_service_settings()
    _check_port_free(args.host, args.port)
    os.environ.setdefault("CVM_HOST", args.host)
    with _worker_group(args.workers):
        uvicorn.run(
            "service.app:create_app",
            factory=True,
            host=args.host,
            port=args.port,
            workers=args.workers,
            log_level=args.log_level,
            access_log=False,  # the service writes its own JSON access log (CVM_ACCESS_LOG)
            # uvicorn's httptools protocol with bounded request heads and timeouts for slow
            # clients (CVM_MAX_HEADER_BYTES, CVM_MAX_HEADERS, CVM_HEADER_TIMEOUT, CVM_BODY_TIMEOUT)
            http="service.http_protocol:ServeProtocol",
            # on SIGTERM/SIGINT: stop accepting, let requests in flight finish (this long at most)
            timeout_graceful_shutdown=settings.shutdown_timeout,
        )
    return 0


@contextlib.contextmanager
def _worker_group(workers: int) -> Iterator[None]:
    """With several workers: the run folder that keeps them in step (service/workers.py) and
    prometheus-client's multiprocess folder, both set in the environment the workers inherit,
    emptied at start and (when made here) removed at the end."""
    if workers == 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        yield
        return
    import shutil
    import tempfile

    from service.workers import RUN_DIR_ENV

    made = None
    if not os.environ.get(RUN_DIR_ENV):
        made = tempfile.mkdtemp(prefix="cvm-serve-")
        os.environ[RUN_DIR_ENV] = made
    run_dir = Path(os.environ[RUN_DIR_ENV])
    metrics = Path(os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(run_dir / "metrics")))
    for folder in (run_dir, metrics):
        folder.mkdir(parents=True, exist_ok=True)
    for stale in [*run_dir.glob("worker-*.json"), *metrics.glob("*.db")]:
        stale.unlink()  # a previous server's workers: their counts would be added to ours
    try:
        yield
    finally:
        if made is not None:
            shutil.rmtree(made, ignore_errors=True)


def _data_options(parser: argparse.ArgumentParser, *, required: bool = True) -> None:
    """The input options every data command shares (train, retrain, score, report, risk,
    features)."""
    add = parser.add_argument
    add("--transactions", required=required, help="transactions file (CSV or Parquet)")
    add(
        "--customers",
        help="customer table (CSV or Parquet), optional: attributes, signup and contract "
        "dates, a segment column for reports",
    )
    add("--as-of", type=_parse_date, default=None, help="as of this date (default: last purchase)")
    add(
        "--bad-rows",
        choices=["error", "quarantine"],
        default="error",
        help="stop on invalid rows (default) or quarantine them and go on",
    )
    add(
        "--keep-duplicates",
        action="store_true",
        help="keep rows identical to an earlier row (default: quarantine them); for data "
        "without transaction ids, where equal purchases on one day can be real",
    )
    chatter = parser.add_mutually_exclusive_group()
    chatter.add_argument(
        "-q", "--quiet", action="store_true", help="no progress output, only errors and results"
    )
    chatter.add_argument(
        "-v", "--verbose", action="store_true", help="every metric, not only the key ones"
    )


def _engine_options(parser: argparse.ArgumentParser, *, training: bool) -> None:
    """``--engine spark`` and its settings (train, retrain, score)."""
    add = parser.add_argument
    add(
        "--engine",
        choices=["pandas", "spark"],
        default="pandas",
        help="pandas: one process (default); spark: Apache Spark, for customer bases that "
        "outgrow one machine (inputs: a CSV or Parquet file, folder or glob on any path Spark "
        "reads, e.g. s3a:// or hdfs://)",
    )
    add("--spark-master", default="local[*]", help="Spark master (default local[*])")
    add(
        "--spark-conf",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a Spark setting, e.g. spark.driver.memory=8g; repeatable",
    )
    if training:
        add(
            "--sample-customers",
            type=_positive_int,
            default=1_000_000,
            help="--engine spark: customers the churn and segmentation models are fitted on "
            "(a random sample stratified on the churn label; default 1,000,000)",
        )
        add(
            "--holdout-customers",
            type=_positive_int,
            default=200_000,
            help="--engine spark: other customers the holdout metrics are measured on "
            "(default 200,000)",
        )


def _whole_number(value: str, least: int) -> int:
    """``value`` as a whole number (``1,000`` and ``1_000`` read as 1000) of at least
    ``least``, else an argparse error naming it."""
    try:
        number = int(value.replace(",", "").replace("_", ""))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a whole number: {value!r}") from exc
    if number < least:
        word = "must be 0 or more" if least == 0 else f"must be at least {least}"
        raise argparse.ArgumentTypeError(f"{word}: {value!r}")
    return number


def _positive_int(value: str) -> int:
    return _whole_number(value, 1)


def _training_options(parser: argparse.ArgumentParser) -> None:
    _data_options(parser, required=False)
    _engine_options(parser, training=True)
    add = parser.add_argument
    add("--demo", action="store_true", help="generate demo data first and train on it")
    add("--demo-customers", type=int, default=5000)
    add(
        "--seed",
        type=int,
        default=0,
        help="demo data seed; with --engine spark, the random seed of the customer samples",
    )
    add(
        "--keep-leaky",
        action="store_true",
        help="keep customer-table columns that alone separate churners (default: leave them "
        "out of the churn model as probable leaks, with a warning)",
    )
    add("--horizon-days", type=int, default=90, help="churn horizon (days)")
    add(
        "--holdout-days",
        type=int,
        default=None,
        help="CLV evaluation holdout (days; default: a third of the history, 4 weeks to 180 days)",
    )
    add("--clv-horizon-days", type=int, default=365, help="CLV horizon (days)")
    add(
        "--model",
        "--clv-model",
        dest="clv_model",
        choices=["auto", "bgnbd", "paretonbd", "bgbb"],
        default="auto",
        help="CLV model: auto (default: the one that forecasts the holdout best), bgnbd, "
        "paretonbd, or bgbb (discrete opportunities: each customer buys or not in each period)",
    )
    add(
        "--period",
        choices=["week", "month", "quarter", "year"],
        default=None,
        help="BG/BB's period: with --model bgbb, or with auto to add BG/BB to the candidates "
        "(default: the period the purchases keep to, if any)",
    )
    add("--discount-rate", type=float, default=0.10, help="annual discount rate")
    add("--margin", type=float, default=None, help="CLV margin (default: from costs, else 1.0)")
    add("--churn-max-iter", type=int, default=None, help="boosting rounds of the churn model")
    add(
        "--campaigns",
        dest="campaigns_file",
        metavar="FILE",
        default=None,
        help="campaign history (CSV or Parquet: customer_id, campaign_id, sent_at, treatment = "
        "offer id or control, optional cost and channel): also train the uplift model "
        "(cvm-uplift); --demo uses the demo's campaigns.csv",
    )
    add(
        "--campaign-window-days",
        type=_positive_int,
        default=60,
        help="uplift: a contacted customer counts as retained with a purchase within this "
        "many days of the send (default 60)",
    )
    add(
        "--risk-bands",
        type=_risk_bands,
        default=None,
        metavar="BASIS:LOW,HIGH",
        help="churn risk band cuts: quantile:0.5,0.8 (default: the lowest half low, the top "
        "fifth high, of the model's scores) or probability:0.3,0.6 (fixed probabilities)",
    )
    add(
        "--value-index",
        type=_value_index,
        default=None,
        metavar="FILE",
        help="the AHP value index: a JSON file of indicators (columns of the summary or of "
        "the customer table, higher or lower is better) and their pairwise comparisons on "
        "Saaty's 1-9 scale; `bank` uses the shipped bank template (default: revenue, "
        "purchase days, days since the last purchase, P(alive) and tenure)",
    )


def _non_negative_int(value: str) -> int:
    return _whole_number(value, 0)


def _migration_options(report: argparse.ArgumentParser) -> None:
    """The options of ``cvm report migration``."""
    add = report.add_argument
    add("--from", dest="from_date", type=_parse_date, help="migration: the first date")
    add("--to", dest="to_date", type=_parse_date, help="migration: the second date")
    add(
        "--periods",
        type=_non_negative_int,
        default=4,
        help="migration: customer equity over this many periods after the current one (a "
        "period: the time from --from to --to; default 4)",
    )
    add(
        "--discount-rate",
        type=float,
        default=0.10,
        help="migration: annual discount rate, turned into a rate per period (default 0.10)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cvm",
        description="Customer value management: train CLV, churn and segmentation models, serve them.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    gen = sub.add_parser("generate", help="write a synthetic demo data set with known truth")
    gen.add_argument("--customers", type=int, default=5000, help="number of customers")
    gen.add_argument("--seed", type=int, default=0)
    gen.add_argument("--out", required=True, help="output directory")
    gen.add_argument("--as-of", default=None, help="last day of observed history (YYYY-MM-DD)")
    gen.add_argument("--format", choices=["csv", "parquet"], default="csv")
    gen.add_argument(
        "--no-campaigns",
        dest="campaigns",
        action="store_false",
        help="leave out the randomised retention campaigns (campaigns.csv, whose effects are "
        "played into the transactions, and campaign_truth.csv)",
    )
    gen.add_argument(
        "--period",
        choices=["week", "month", "quarter", "year"],
        default=None,
        help="a discrete-opportunity business instead: each customer buys or not in each "
        "period (BG/BB truth in truth.json; no campaigns), for cvm train --model bgbb",
    )
    gen.add_argument(
        "--campaign-plan",
        default=None,
        help="a contact list written by `cvm plan --out` (a random --plan-control-share held "
        "out) or a send written by `cvm plan --campaign-out` (its control group as drawn): "
        "sent instead of the last randomised campaign (on its day, 100 days before --as-of), "
        "to simulate what the plan earns",
    )
    gen.add_argument(
        "--plan-campaign-id",
        default=None,
        help="the simulated plan's campaign id (default: the send file's campaign_id, else plan)",
    )
    gen.add_argument(
        "--plan-control-share",
        type=float,
        default=0.2,
        help="share of the plan's customers held out as the control group (0.2)",
    )
    gen.set_defaults(func=cmd_generate)

    train = sub.add_parser(
        "train",
        help="train the model families and register them (the uplift model too with "
        "--campaigns or --demo)",
    )
    _training_options(train)
    train.add_argument(
        "--if-missing", action="store_true", help="do nothing when champion models exist"
    )
    train.set_defaults(func=cmd_train)

    retrain = sub.add_parser(
        "retrain", help="train challengers and compare them with the champions on a fresh holdout"
    )
    _training_options(retrain)
    retrain.set_defaults(func=cmd_retrain)

    families = list(FAMILIES)
    promote = sub.add_parser(
        "promote", help="move @champion to the challenger if it passes the gate"
    )
    promote.add_argument("--family", choices=families, help="one family (default: all)")
    promote.add_argument("--force", action="store_true", help="promote even if the gate fails")
    promote.add_argument(
        "--tolerance",
        action="append",
        default=[],
        metavar="METRIC=VALUE",
        help="allowed worsening: in the metric's units (churn_roc_auc=0.02) or a percentage "
        "of the champion's value (clv_holdout_mae=5%%); repeatable",
    )
    promote.add_argument("--reason", help="why (recorded on the model version)")
    promote.add_argument(
        "--skip-load-check",
        action="store_true",
        help="promote without loading the challenger and scoring its input example first",
    )
    promote.set_defaults(func=cmd_promote)

    rollback = sub.add_parser("rollback", help="move @champion back to the previous champion")
    rollback.add_argument("--family", required=True, choices=families)
    rollback.add_argument("--reason", help="why (recorded on the model version)")
    rollback.set_defaults(func=cmd_rollback)

    score = sub.add_parser("score", help="score every customer with the champion models")
    _data_options(score)
    _engine_options(score, training=False)
    score.add_argument(
        "--out",
        required=True,
        help="output file: scored.parquet or scored.csv (--engine spark: a Parquet folder)",
    )
    score.set_defaults(func=cmd_score)

    aud = sub.add_parser("audience", help="export the customers with one label as a target list")
    aud.add_argument(
        "--scheme",
        required=True,
        help="a segmentation scheme (e.g. rfm) or churn_risk; an unknown one is answered "
        "with the list of valid ones",
    )
    aud.add_argument("--label", required=True, help="e.g. at_risk, gold, 2, lapsed, high")
    aud.add_argument("--from", dest="source", required=True, help="a file written by cvm score")
    aud.add_argument("--out", required=True, help="audience file (.csv or .parquet)")
    aud.set_defaults(func=cmd_audience)

    report = sub.add_parser(
        "report",
        help="reports; `cvm report churn` prints churn KPIs by period, `cvm report campaign` "
        "what a campaign earned against its control group, `cvm report concentration` the "
        "share of profit the top customers hold, `cvm report cohorts` retention and revenue "
        "by acquisition month",
    )
    report.add_argument(
        "kind", choices=["churn", "campaign", "migration", "concentration", "cohorts"]
    )
    _data_options(report)
    report.add_argument(
        "--start",
        help="start date (default: 12 months before the end; cohorts: 24); concentration: "
        "profit from then on; cohorts: customers acquired from then on",
    )
    report.add_argument("--freq", default="MS", help="period: MS (months), QS (quarters), YS")
    report.add_argument("--segment", help="customer-table column to break the rate down by")
    report.add_argument(
        "--by",
        choices=REPORT_SCHEMES,
        help="churn: break the rate down by the champion models' segments, each customer's "
        "label taken as of the start of each period; migration: the segments customers move "
        "between (default rfm)",
    )
    report.add_argument(
        "--csv",
        default=None,
        help="table file (CSV); churn: only when given; concentration and cohorts: default "
        "concentration_report.csv or cohorts_report.csv; migration: the transitions (the "
        "equity by state goes beside it as NAME_equity.csv; default migration.csv)",
    )
    report.add_argument(
        "--active-days",
        type=int,
        default=365,
        help="non-contractual: a customer counts as active within this many days of a purchase",
    )
    report.add_argument(
        "--margin",
        type=float,
        default=None,
        help="profit margin: churn: for the churn loss; concentration: for purchases without "
        "a cost (default: the margin of those with one)",
    )
    report.add_argument(
        "--chart",
        default=None,
        help="chart file (PNG; default <kind>_report.png)",
    )
    report.add_argument("--campaign-id", help="campaign: the campaign to report on")
    report.add_argument(
        "--campaigns",
        dest="campaigns_file",
        metavar="CAMPAIGNS",
        help="campaign: the campaigns file (CSV or Parquet)",
    )
    report.add_argument(
        "--window-days",
        type=_positive_int,
        default=60,
        help="campaign: a customer counts as retained with a purchase within this many days "
        "after the offer was sent (default 60)",
    )
    report.add_argument(
        "--margin-rate",
        type=float,
        default=None,
        help="campaign: profit share of spend (default: the margin from the transactions' costs)",
    )
    report.add_argument(
        "--no-mlflow", action="store_true", help="campaign: do not log the report to MLflow"
    )
    _migration_options(report)
    report.set_defaults(func=cmd_report)

    plan = sub.add_parser(
        "plan", help="whom to contact with which retention offer, within a budget"
    )
    _data_options(plan)
    plan.add_argument("--budget", type=_money, required=True, help="total expected spend")
    plan.add_argument("--offers", required=True, help="offers file (JSON list of offers)")
    plan.add_argument(
        "--acquisition-cost",
        type=_money,
        default=None,
        help="what winning a new customer costs: the plan compares it with retention",
    )
    plan.add_argument("--campaigns", help="campaign history (CSV or Parquet), for the uplift model")
    plan.add_argument(
        "--save-rates",
        type=_save_rates,
        default=None,
        metavar="BAND=RATE,...",
        help="without an uplift model: the share of would-be churners an offer keeps, by "
        "risk band (default low=0.05,medium=0.15,high=0.1)",
    )
    plan.add_argument(
        "--uplift-z",
        type=float,
        default=None,
        help="with an uplift model: plan on estimate - Z x its standard error (default 1; "
        "0: the estimates themselves)",
    )
    plan.add_argument("--out", required=True, help="contact list (.csv or .parquet)")
    plan.add_argument(
        "--campaign-out",
        help="also write the send as a campaigns file (.csv or .parquet): the offer or "
        "'control' per customer, the control group drawn within each offer, planned_offer "
        "and cost; cvm report campaign reads it after the send",
    )
    plan.add_argument(
        "--campaign-id", default="plan", help="with --campaign-out: the campaign id (plan)"
    )
    plan.add_argument(
        "--send-date",
        type=_parse_date,
        default=None,
        help="with --campaign-out: the send date (default: the day after --as-of)",
    )
    plan.add_argument(
        "--control-share",
        type=float,
        default=0.2,
        help="with --campaign-out: the share of each offer's customers held out (0.2)",
    )
    plan.add_argument(
        "--seed", type=int, default=0, help="with --campaign-out: the control draw's seed (0)"
    )
    plan.set_defaults(func=cmd_plan)

    risk = sub.add_parser("risk", help="high-value, high-risk customers first (P(churn) x CLV)")
    _data_options(risk)
    risk.add_argument("--top", type=int, default=20, help="how many customers to list")
    risk.add_argument("--out", help="also write them to this .csv/.parquet file")
    risk.set_defaults(func=cmd_risk)

    features = sub.add_parser(
        "features",
        help="write the input rows of /v1/models/{name}/invocations for a transactions file",
        description="One row per customer with the columns the family's champion takes (its "
        "signature; every engineered column when there is no champion), as CSV, Parquet or "
        "NDJSON by the --out file's extension: post it to /v1/models/cvm-<family>/invocations "
        "or to mlflow models serve.",
    )
    _data_options(features)
    features.add_argument(
        "--family", required=True, choices=["churn", "clv", "segmentation"], help="model family"
    )
    features.add_argument(
        "--out", required=True, help="output file: .csv, .parquet or .ndjson (.jsonl)"
    )
    features.add_argument(
        "--all-columns",
        action="store_true",
        help="every engineered column, not only the champion's signature",
    )
    features.add_argument(
        "--with-ids",
        action="store_true",
        help="add customer_id as the first column (to join the answers back; the "
        "invocations route refuses it as an unknown column)",
    )
    features.set_defaults(func=cmd_features)

    serve = sub.add_parser("serve", help="serve the champion models over HTTP")
    serve.add_argument("--host", default=os.environ.get("CVM_HOST", "127.0.0.1"))
    serve.add_argument("--port", type=int, default=int(os.environ.get("CVM_PORT", "8000")))
    serve.add_argument(
        "--workers",
        type=_positive_int,
        default=os.environ.get("CVM_WORKERS", "1"),
        help="worker processes (env CVM_WORKERS, default 1); set it to the number of cores",
    )
    serve.add_argument("--log-level", default="info")
    serve.set_defaults(func=cmd_serve)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``cvm`` console script."""
    args = build_parser().parse_args(argv)
    from training.data import DataError

    try:
        return int(args.func(args) or 0)
    except (DataError, CVMError) as exc:
        if os.environ.get("CVM_DEBUG"):
            raise
        _say(f"error: {redact(exc)}")
        return EXIT_USAGE
    except KeyboardInterrupt:
        _say("interrupted")
        return 130
    except Exception as exc:  # MLflow: an unreachable, locked or refusing registry
        from models import registry_errors
        from training import config

        if os.environ.get("CVM_DEBUG") or not registry_errors.is_registry_problem(exc):
            raise
        _say(f"error: {registry_errors.describe(exc, config.tracking_uri())}")
        return EXIT_UNAVAILABLE


if __name__ == "__main__":
    sys.exit(main())
