"""The ``cvm`` command: generate demo data, train, and serve.

Every user error (bad file, bad option) ends with one line on stderr and exit code 2; no
traceback. ``CVM_DEBUG=1`` shows tracebacks.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd

from models.exceptions import CVMError

EXIT_USAGE = 2


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
    as_of = "2025-12-31"
    _say(f"generating demo data ({args.demo_customers:,} customers) into {out} ...")
    transactions, customers, truth = synthetic.generate(
        args.demo_customers, seed=args.seed, as_of=as_of
    )
    paths = synthetic.write(out, transactions, customers, truth, fmt="csv")
    return Path(paths["transactions"]), Path(paths["customers"]), as_of


def cmd_train(args: argparse.Namespace) -> int:
    from training import config, data, tracking
    from training.pipeline import TrainConfig, metrics_table, train_all

    if args.if_missing:
        existing = tracking.champion_versions()
        if all(existing.values()):
            versions = ", ".join(f"{k} v{v}" for k, v in existing.items())
            _say(f"champion models exist ({versions}); nothing to train (--if-missing)")
            return 0
    if args.demo:
        tx_path, demo_customers, as_of_text = _demo_data(args)
        cust_path: Path | None = demo_customers
        as_of: Any = pd.Timestamp(args.as_of or as_of_text)
    else:
        if not args.transactions:
            _say("error: give --transactions FILE (and optionally --customers FILE), or --demo")
            return EXIT_USAGE
        tx_path = Path(args.transactions)
        cust_path = Path(args.customers) if args.customers else None
        as_of = args.as_of

    quarantine_dir = config.cvm_home() / "quarantine"
    transactions, tx_report = data.load_transactions(
        tx_path, as_of=as_of, bad_rows=args.bad_rows, quarantine_dir=quarantine_dir
    )
    reports = [tx_report]
    customers = None
    if cust_path is not None:
        customers, cust_report = data.load_customers(
            cust_path, bad_rows=args.bad_rows, quarantine_dir=quarantine_dir
        )
        reports.append(cust_report)
    for report in reports:
        line = (
            f"{report.path}: read {report.n_read:,}, kept {report.n_kept:,}, "
            f"quarantined {report.n_quarantined:,}"
        )
        if report.n_quarantined:
            reasons = ", ".join(f"{k} {v:,}" for k, v in sorted(report.reasons.items()))
            line += f" ({reasons}) -> {report.quarantine_path}"
        _say(line)
    if as_of is None:
        as_of = transactions["timestamp"].max().normalize()
        _say(f"--as-of not given: using the last purchase date, {as_of.date()}")

    train_config = TrainConfig(
        as_of=pd.Timestamp(as_of),
        churn_horizon_days=args.horizon_days,
        clv_holdout_days=args.holdout_days,
        clv_horizon_days=args.clv_horizon_days,
        discount_rate=args.discount_rate,
        margin=args.margin,
    )
    previous = tracking.load_champions()
    if previous:
        _say("matching segment ids to the current champion's")
    _say(f"training as of {train_config.as_of.date()} ...")
    result = train_all(transactions, customers, train_config, progress=_say, previous=previous)
    fingerprint = data.fingerprint(transactions)
    registered = tracking.log_and_register(
        result,
        data_fingerprint=fingerprint,
        extra_params={"transactions_file": str(tx_path), "customers_file": str(cust_path or "")},
        extra_artifacts=[Path(r.quarantine_path) for r in reports if r.quarantine_path],
        progress=_say,
    )
    print(metrics_table(result.metrics))
    print()
    for info in registered.values():
        print(f"registered {info['name']} version {info['version']} as @{info['alias']}")
    print(f"MLflow run {next(iter(registered.values()))['run_id']} in {config.tracking_uri()}")
    return 0


def _load_inputs(args: argparse.Namespace) -> tuple[pd.DataFrame, pd.DataFrame | None, Any]:
    from training import config, data

    quarantine_dir = config.cvm_home() / "quarantine"
    transactions, report = data.load_transactions(
        args.transactions, as_of=args.as_of, bad_rows=args.bad_rows, quarantine_dir=quarantine_dir
    )
    _say(report.summary())
    customers = None
    if args.customers:
        customers, cust_report = data.load_customers(
            args.customers, bad_rows=args.bad_rows, quarantine_dir=quarantine_dir
        )
        _say(cust_report.summary())
    as_of = args.as_of if args.as_of is not None else transactions["timestamp"].max().normalize()
    return transactions, customers, as_of


def cmd_score(args: argparse.Namespace) -> int:
    from training import batch, tracking

    models = tracking.load_champions()
    missing = [f for f in ("segmentation", "churn", "clv") if f not in models]
    if missing:
        _say(f"error: no champion model for {', '.join(missing)}: train first (cvm train)")
        return EXIT_USAGE
    transactions, customers, as_of = _load_inputs(args)
    _say(f"scoring as of {pd.Timestamp(as_of).date()} ...")
    scored = batch.score_customers(models, transactions, customers, as_of, progress=_say)
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


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    os.environ.setdefault("CVM_HOST", args.host)
    uvicorn.run(
        "service.app:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
    )
    return 0


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

    train = sub.add_parser(
        "train", help="train all three model families and register them in MLflow"
    )
    train.add_argument("--transactions", help="transactions file (CSV or Parquet)")
    train.add_argument("--customers", help="customer table (CSV or Parquet), optional")
    train.add_argument(
        "--as-of",
        type=_parse_date,
        default=None,
        help="train as of this date (default: last purchase)",
    )
    train.add_argument(
        "--demo", action="store_true", help="generate demo data first and train on it"
    )
    train.add_argument("--demo-customers", type=int, default=5000)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument(
        "--if-missing", action="store_true", help="do nothing when champion models exist"
    )
    train.add_argument(
        "--bad-rows",
        choices=["error", "quarantine"],
        default="error",
        help="stop on invalid rows (default) or quarantine them and go on",
    )
    train.add_argument("--horizon-days", type=int, default=90, help="churn horizon (days)")
    train.add_argument(
        "--holdout-days", type=int, default=180, help="CLV evaluation holdout (days)"
    )
    train.add_argument("--clv-horizon-days", type=int, default=365, help="CLV horizon (days)")
    train.add_argument("--discount-rate", type=float, default=0.10, help="annual discount rate")
    train.add_argument(
        "--margin",
        type=float,
        default=None,
        help="profit margin for CLV (default: learned from costs, else 1.0)",
    )
    train.set_defaults(func=cmd_train)

    score = sub.add_parser("score", help="score every customer with the champion models")
    score.add_argument("--transactions", required=True, help="transactions file (CSV or Parquet)")
    score.add_argument("--customers", help="customer table (CSV or Parquet), optional")
    score.add_argument("--as-of", type=_parse_date, default=None, help="score as of (default: last purchase)")
    score.add_argument("--out", required=True, help="output file: scored.parquet or scored.csv")
    score.add_argument("--bad-rows", choices=["error", "quarantine"], default="error")
    score.set_defaults(func=cmd_score)

    aud = sub.add_parser("audience", help="export the customers with one label as a target list")
    aud.add_argument("--scheme", required=True, help="rfm, value_matrix, behaviour, lifecycle, nine_grid, nine_grid_strategy or churn_risk")
    aud.add_argument("--label", required=True, help="e.g. at_risk, gold, 2, lapsed, high")
    aud.add_argument("--from", dest="source", required=True, help="a file written by cvm score")
    aud.add_argument("--out", required=True, help="audience file (.csv or .parquet)")
    aud.set_defaults(func=cmd_audience)

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
