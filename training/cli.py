"""The ``cvm`` command: generate demo data, train, and serve.

Every user error (bad file, bad option) ends with one line on stderr and exit code 2; no
traceback. ``CVM_DEBUG=1`` shows tracebacks.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from models.exceptions import CVMError

EXIT_USAGE = 2
EXIT_REFUSED = 3  # promote: the gate refused


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _parse_date(value: str) -> pd.Timestamp:
    try:
        return pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        raise argparse.ArgumentTypeError(f"not a date: {value!r} (use YYYY-MM-DD)") from exc


def cmd_generate(args: argparse.Namespace) -> int:
    from training import synthetic

    start = time.perf_counter()
    _say(f"generating {args.customers:,} customers (seed {args.seed}) ...")
    transactions, customers, truth = synthetic.generate(
        args.customers, seed=args.seed, as_of=args.as_of or "2025-12-31"
    )
    paths = synthetic.write(args.out, transactions, customers, truth, fmt=args.format)
    _say(
        f"wrote {len(transactions):,} transactions and {len(customers):,} customers in "
        f"{time.perf_counter() - start:.1f}s:"
    )
    for path in paths.values():
        print(path)
    return 0


def _demo_data(args: argparse.Namespace) -> tuple[Path, Path, str]:
    from training import config, synthetic

    out = config.cvm_home() / "demo"
    as_of = str(args.as_of.date()) if args.as_of is not None else "2025-12-31"
    _say(f"generating demo data ({args.demo_customers:,} customers) into {out} ...")
    transactions, customers, truth = synthetic.generate(
        args.demo_customers, seed=args.seed, as_of=as_of
    )
    paths = synthetic.write(out, transactions, customers, truth, fmt="csv")
    return Path(paths["transactions"]), Path(paths["customers"]), as_of


def _report_line(report: Any) -> str:
    line = f"{report.path}: read {report.n_read:,}, kept {report.n_kept:,}, quarantined {report.n_quarantined:,}"
    if getattr(report, "duplicates_kept", 0):
        line += f"; {report.duplicates_kept:,} identical repeats kept (--keep-duplicates)"
    if report.n_quarantined:
        reasons = ", ".join(f"{k} {v:,}" for k, v in sorted(report.reasons.items()))
        line += f" ({reasons}) -> {report.quarantine_path}"
    return line


@dataclass
class Inputs:
    """Validated training inputs and where they came from."""

    transactions: pd.DataFrame
    customers: pd.DataFrame | None
    as_of: pd.Timestamp
    tx_path: Path
    cust_path: Path | None
    quarantined: list[Path]


def _inputs(args: argparse.Namespace) -> Inputs:
    """Load and validate the files named by the options (or generate demo data)."""
    from training import config, data

    cust_path: Path | None
    if getattr(args, "demo", False):
        tx_path, cust_path, as_of_text = _demo_data(args)
        as_of: Any = pd.Timestamp(args.as_of or as_of_text)
    else:
        if not args.transactions:
            raise CVMError("give --transactions FILE (and optionally --customers FILE), or --demo")
        tx_path = Path(args.transactions)
        cust_path = Path(args.customers) if args.customers else None
        as_of = args.as_of
    quarantine_dir = config.cvm_home() / "quarantine"
    transactions, tx_report = data.load_transactions(
        tx_path,
        as_of=as_of,
        bad_rows=args.bad_rows,
        quarantine_dir=quarantine_dir,
        keep_duplicates=getattr(args, "keep_duplicates", False),
    )
    reports = [tx_report]
    customers = None
    if cust_path is not None:
        customers, cust_report = data.load_customers(
            cust_path, bad_rows=args.bad_rows, quarantine_dir=quarantine_dir
        )
        reports.append(cust_report)
    for report in reports:
        _say(_report_line(report))
    if as_of is None:
        as_of = transactions["timestamp"].max().normalize()
        _say(f"--as-of not given: using the last purchase date, {as_of.date()}")
    quarantined = [Path(r.quarantine_path) for r in reports if r.quarantine_path]
    return Inputs(transactions, customers, pd.Timestamp(as_of), tx_path, cust_path, quarantined)


def _train_config(args: argparse.Namespace, as_of: pd.Timestamp) -> Any:
    from training.pipeline import TrainConfig

    return TrainConfig(
        as_of=as_of,
        churn_horizon_days=args.horizon_days,
        clv_holdout_days=args.holdout_days,
        clv_horizon_days=args.clv_horizon_days,
        discount_rate=args.discount_rate,
        margin=args.margin,
        churn_max_iter=args.churn_max_iter,
        drop_leaky=not getattr(args, "keep_leaky", False),
    )


def _train_and_register(
    args: argparse.Namespace, inputs: Inputs, previous: dict[str, Any], alias: str | None
) -> tuple[Any, dict[str, dict[str, str]]]:
    from training import data, tracking
    from training.pipeline import train_all

    if previous:
        _say("matching segment ids to the current champion's")
    _say(f"training as of {inputs.as_of.date()} ...")
    result = train_all(
        inputs.transactions,
        inputs.customers,
        _train_config(args, inputs.as_of),
        progress=_say,
        previous=previous,
    )
    registered = tracking.log_and_register(
        result,
        data_fingerprint=data.fingerprint(inputs.transactions),
        extra_params={
            "transactions_file": str(inputs.tx_path),
            "customers_file": str(inputs.cust_path or ""),
        },
        extra_artifacts=inputs.quarantined,
        alias=alias,
        progress=_say,
    )
    return result, registered


def _print_registered(registered: dict[str, dict[str, str]]) -> None:
    from training import config

    for info in registered.values():
        print(f"registered {info['name']} version {info['version']} as @{info['alias']}")
    print(f"MLflow run {next(iter(registered.values()))['run_id']} in {config.tracking_uri()}")


def cmd_train(args: argparse.Namespace) -> int:
    from training import tracking
    from training.pipeline import metrics_table

    if args.if_missing:
        existing = tracking.champion_versions()
        if all(existing.values()):
            versions = ", ".join(f"{k} v{v}" for k, v in existing.items())
            _say(f"champion models exist ({versions}); nothing to train (--if-missing)")
            return 0
    inputs = _inputs(args)
    result, registered = _train_and_register(args, inputs, tracking.load_champions(), alias=None)
    print(metrics_table(result.metrics))
    print()
    _print_registered(registered)
    return 0


def _by_family(metrics: dict[str, float]) -> dict[str, dict[str, float]]:
    prefixes = {"churn": "churn_", "clv": "clv_", "segmentation": "segment_"}
    return {f: {k: v for k, v in metrics.items() if k.startswith(p)} for f, p in prefixes.items()}


def cmd_retrain(args: argparse.Namespace) -> int:
    """Train challengers and compare them with the champions on the same fresh holdout."""
    from training import compare, registry, tracking

    previous = tracking.load_champions()
    if not previous:
        _say("error: no champion models to compare with: run cvm train first")
        return EXIT_USAGE
    inputs = _inputs(args)
    result, registered = _train_and_register(args, inputs, previous, alias=tracking.CHALLENGER)
    _say("evaluating champion and challenger on the same fresh holdout ...")
    options = {"churn_horizon_days": args.horizon_days, "clv_holdout_days": args.holdout_days}
    data_args = (inputs.transactions, inputs.customers, inputs.as_of)
    old = _by_family(compare.holdout_metrics(previous, *data_args, **options))
    new = _by_family(compare.holdout_metrics(result.holdout_models, *data_args, **options))
    champions = registry.alias_versions()
    for family, info in registered.items():
        champion_version = champions[family]["champion"]
        registry.save_comparison(
            family, info["version"], champion_version, old[family], new[family]
        )
    tracking.log_comparison(next(iter(registered.values()))["run_id"], old, new)
    print(compare.comparison_table(old, new))
    print()
    for family in registered:
        print(compare.gate(family, old[family], new[family]).message())
    print()
    _print_registered(registered)
    print("promote with: cvm promote [--family F] [--force]")
    return 0


def _tolerances(values: list[str]) -> dict[str, float]:
    out = {}
    for item in values:
        key, _, value = item.partition("=")
        try:
            out[key.strip()] = float(value)
        except ValueError as exc:
            raise CVMError(
                f"--tolerance {item!r}: use METRIC=NUMBER, e.g. churn_roc_auc=0.02"
            ) from exc
    return out


def cmd_promote(args: argparse.Namespace) -> int:
    from training import config, registry

    families = [args.family] if args.family else list(config.REGISTERED_NAMES)
    tolerances = _tolerances(args.tolerance)
    refused = False
    for family in families:
        try:
            outcome = registry.promote(
                family, force=args.force, tolerances=tolerances, reason=args.reason or ""
            )
        except registry.RegistryError as exc:
            _say(f"{family}: {exc}")
            refused = True
            continue
        if outcome.gate is not None:
            for line in outcome.gate.reasons:
                _say(f"  {family}: {line}")
        print(f"{family}: {outcome.message}")
        refused |= not outcome.promoted
    return EXIT_REFUSED if refused else 0


def cmd_rollback(args: argparse.Namespace) -> int:
    from training import registry

    try:
        old, new = registry.rollback(args.family, reason=args.reason or "")
    except registry.RegistryError as exc:
        _say(f"error: {exc}")
        return EXIT_USAGE
    print(f"{args.family}: @champion moved back from v{old} to v{new}")
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    from training import batch, tracking

    models = tracking.load_champions()
    missing = [f for f in ("segmentation", "churn", "clv") if f not in models]
    if missing:
        _say(f"error: no champion model for {', '.join(missing)}: train first (cvm train)")
        return EXIT_USAGE
    inputs = _inputs(args)
    _say(f"scoring as of {inputs.as_of.date()} ...")
    scored = batch.score_customers(
        models, inputs.transactions, inputs.customers, inputs.as_of, progress=_say
    )
    out = Path(args.out)
    batch.write_table(scored, out)
    _say(f"wrote {len(scored):,} customers x {scored.shape[1]} columns to {out}")
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
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from models.churn.kpi import churn_table

    inputs = _inputs(args)
    end = inputs.as_of
    start = pd.Timestamp(args.start) if args.start else end - pd.DateOffset(months=12)
    table = churn_table(
        start,
        end,
        freq=args.freq,
        transactions=inputs.transactions,
        customers=inputs.customers,
        segment=args.segment,
        active_days=args.active_days,
        margin=args.margin,
    )
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(table.to_string(index=False, float_format=lambda v: f"{v:,.4f}"))
    fig, ax = plt.subplots(figsize=(8, 4))
    for name, group in table.groupby("segment"):
        ax.plot(group["period_start"], 100 * group["churn_rate"], "o-", label=str(name))
    ax.set_ylabel("churn rate (%)")
    ax.legend()
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(args.chart)
    _say(f"wrote the chart to {args.chart}")
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
    scored = batch.score_customers(
        models, inputs.transactions, inputs.customers, inputs.as_of, progress=_say
    ).set_index("customer_id")
    ranked = value_at_risk(scored["churn_probability"], scored["clv"], top=args.top)
    ranked = ranked.join(scored[["rfm_segment", "recommended_action"]])
    with pd.option_context("display.width", 200, "display.max_colwidth", 60):
        print(ranked.to_string(float_format=lambda v: f"{v:,.3f}"))
    if args.out:
        batch.write_table(ranked.reset_index(), Path(args.out))
        _say(f"wrote {len(ranked):,} customers to {args.out}")
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


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    _check_port_free(args.host, args.port)
    os.environ.setdefault("CVM_HOST", args.host)
    uvicorn.run(
        "service.app:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        access_log=False,  # the service writes its own JSON access log (CVM_ACCESS_LOG)
    )
    return 0


def _training_options(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--transactions", help="transactions file (CSV or Parquet)")
    add("--customers", help="customer table (CSV or Parquet), optional")
    add("--as-of", type=_parse_date, default=None, help="as of this date (default: last purchase)")
    add("--demo", action="store_true", help="generate demo data first and train on it")
    add("--demo-customers", type=int, default=5000)
    add("--seed", type=int, default=0, help="demo data seed")
    add(
        "--bad-rows",
        choices=["error", "quarantine"],
        default="error",
        help="stop on invalid rows (default) or quarantine them and go on",
    )
    add(
        "--keep-leaky",
        action="store_true",
        help="keep customer-table columns that alone separate churners (default: leave them "
        "out of the churn model as probable leaks, with a warning)",
    )
    add(
        "--keep-duplicates",
        action="store_true",
        help="keep rows identical to an earlier row (default: quarantine them); for data "
        "without transaction ids, where equal purchases on one day can be real",
    )
    add("--horizon-days", type=int, default=90, help="churn horizon (days)")
    add("--holdout-days", type=int, default=180, help="CLV evaluation holdout (days)")
    add("--clv-horizon-days", type=int, default=365, help="CLV horizon (days)")
    add("--discount-rate", type=float, default=0.10, help="annual discount rate")
    add("--margin", type=float, default=None, help="CLV margin (default: from costs, else 1.0)")
    add("--churn-max-iter", type=int, default=None, help="boosting rounds of the churn model")


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
    gen.set_defaults(func=cmd_generate)

    train = sub.add_parser("train", help="train all three model families and register them")
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

    families = ["segmentation", "churn", "clv"]
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
        help="allowed worsening, e.g. churn_roc_auc=0.02 (repeatable)",
    )
    promote.add_argument("--reason", help="why (recorded on the model version)")
    promote.set_defaults(func=cmd_promote)

    rollback = sub.add_parser("rollback", help="move @champion back to the previous champion")
    rollback.add_argument("--family", required=True, choices=families)
    rollback.add_argument("--reason", help="why (recorded on the model version)")
    rollback.set_defaults(func=cmd_rollback)

    score = sub.add_parser("score", help="score every customer with the champion models")
    score.add_argument("--transactions", required=True, help="transactions file (CSV or Parquet)")
    score.add_argument("--customers", help="customer table (CSV or Parquet), optional")
    score.add_argument(
        "--as-of", type=_parse_date, default=None, help="score as of (default: last purchase)"
    )
    score.add_argument("--out", required=True, help="output file: scored.parquet or scored.csv")
    score.add_argument("--bad-rows", choices=["error", "quarantine"], default="error")
    score.add_argument(
        "--keep-duplicates",
        action="store_true",
        help="keep rows identical to an earlier row (default: quarantine them)",
    )
    score.set_defaults(func=cmd_score)

    aud = sub.add_parser("audience", help="export the customers with one label as a target list")
    aud.add_argument(
        "--scheme",
        required=True,
        help="rfm, value_matrix, behaviour, lifecycle, nine_grid, nine_grid_strategy or churn_risk",
    )
    aud.add_argument("--label", required=True, help="e.g. at_risk, gold, 2, lapsed, high")
    aud.add_argument("--from", dest="source", required=True, help="a file written by cvm score")
    aud.add_argument("--out", required=True, help="audience file (.csv or .parquet)")
    aud.set_defaults(func=cmd_audience)

    report = sub.add_parser(
        "report", help="reports; `cvm report churn` prints churn KPIs by period"
    )
    report.add_argument("kind", choices=["churn"])
    report.add_argument("--transactions", required=True)
    report.add_argument("--customers", help="customer table (contract dates, segment column)")
    report.add_argument("--as-of", type=_parse_date, default=None, help="end of the report")
    report.add_argument("--start", help="start date (default: 12 months before the end)")
    report.add_argument("--freq", default="MS", help="period: MS (months), QS (quarters), YS")
    report.add_argument("--segment", help="customer-table column to break the rate down by")
    report.add_argument(
        "--active-days",
        type=int,
        default=365,
        help="non-contractual: a customer counts as active within this many days of a purchase",
    )
    report.add_argument(
        "--margin", type=float, default=None, help="profit margin for the churn loss"
    )
    report.add_argument("--chart", default="churn_report.png", help="chart file (PNG)")
    report.add_argument("--bad-rows", choices=["error", "quarantine"], default="error")
    report.add_argument(
        "--keep-duplicates",
        action="store_true",
        help="keep rows identical to an earlier row (default: quarantine them)",
    )
    report.set_defaults(func=cmd_report)

    risk = sub.add_parser("risk", help="high-value, high-risk customers first (P(churn) x CLV)")
    risk.add_argument("--transactions", required=True)
    risk.add_argument("--customers")
    risk.add_argument("--as-of", type=_parse_date, default=None)
    risk.add_argument("--top", type=int, default=20, help="how many customers to list")
    risk.add_argument("--out", help="also write them to this .csv/.parquet file")
    risk.add_argument("--bad-rows", choices=["error", "quarantine"], default="error")
    risk.set_defaults(func=cmd_risk)

    serve = sub.add_parser("serve", help="serve the champion models over HTTP")
    serve.add_argument("--host", default=os.environ.get("CVM_HOST", "127.0.0.1"))
    serve.add_argument("--port", type=int, default=int(os.environ.get("CVM_PORT", "8000")))
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
        _say(f"error: {exc}")
        return EXIT_USAGE
    except KeyboardInterrupt:
        _say("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
