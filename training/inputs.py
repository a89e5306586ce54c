"""The validated inputs of a training or scoring job: files (or generated demo data) loaded
through the data contract, with one progress line per file (read / kept / quarantined)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from models.exceptions import CVMError
from training import config, data, synthetic

DEMO_AS_OF = "2025-12-31"


@dataclass
class Inputs:
    """Validated inputs and where they came from."""

    transactions: pd.DataFrame
    customers: pd.DataFrame | None
    as_of: pd.Timestamp
    tx_path: Path
    cust_path: Path | None
    quarantined: list[Path] = field(default_factory=list)
    # Campaign history (training.campaigns.load_campaigns): the uplift family is trained
    # when it is given
    campaigns: pd.DataFrame | None = None
    campaigns_path: Path | None = None

    def train(
        self,
        config: Any,
        progress: Callable[[str], None] = print,
        previous: Any = None,
    ) -> Any:
        """Every family trained on these inputs (:func:`training.pipeline.train_all`): the
        uplift family too when campaign history was given."""
        from training.pipeline import train_all

        return train_all(
            self.transactions,
            self.customers,
            config,
            progress=progress,
            previous=previous,
            campaigns=self.campaigns,
        )

    def fingerprint(self) -> str:
        """The transactions' digest logged with the run."""
        return data.fingerprint(self.transactions)

    def holdout_data(self) -> tuple[pd.DataFrame, pd.DataFrame | None]:
        """The (transactions, customers) the retrain comparison measures on: all of them."""
        return self.transactions, self.customers


def report_line(report: Any) -> str:
    """One line per loaded file: counts read, kept and quarantined (and why, and where)."""
    line = (
        f"{report.path}: read {report.n_read:,}, kept {report.n_kept:,}, "
        f"quarantined {report.n_quarantined:,}"
    )
    if getattr(report, "duplicates_kept", 0):
        line += f"; {report.duplicates_kept:,} identical repeats kept (--keep-duplicates)"
    if report.n_quarantined:
        reasons = ", ".join(f"{k} {v:,}" for k, v in sorted(report.reasons.items()))
        line += f" ({reasons}) -> {report.quarantine_path}"
    if report.reasons.get("duplicate"):
        line += (
            "; duplicate: a row identical to an earlier one, kept once (--keep-duplicates "
            "keeps every repeat, for data where equal purchases on one day can be real)"
        )
    return line


def say_reports(
    reports: list[Any],
    progress: Callable[[str], None],
    warn: Callable[[str], None] | None = None,
) -> None:
    """One line per loaded file (:func:`report_line`); rows set aside are said even to a
    quiet caller (``warn``): nothing is lost silently."""
    for report in reports:
        quarantined = report.n_quarantined or getattr(report, "duplicates_kept", 0)
        (warn if quarantined and warn is not None else progress)(report_line(report))


def demo_files(
    n_customers: int, seed: int, as_of: pd.Timestamp | None, progress: Callable[[str], None]
) -> tuple[Path, Path, str, Path]:
    """Generate the demo data set under ``$CVM_HOME/demo``; (transactions, customers, as_of,
    campaigns). The set has randomised campaigns (``campaigns.csv``, ``campaign_truth.csv``:
    see :func:`training.synthetic.generate_campaigns`), which the demo trains the uplift
    family on."""
    out = config.cvm_home() / "demo"
    as_of_text = str(as_of.date()) if as_of is not None else DEMO_AS_OF
    progress(f"generating demo data ({n_customers:,} customers) into {out} ...")
    transactions, customers, truth = synthetic.generate(n_customers, seed=seed, as_of=as_of_text)
    transactions, campaigns, truth = synthetic.generate_campaigns(
        transactions, customers, truth, seed=seed
    )
    paths = synthetic.write(out, transactions, customers, truth, fmt="csv", campaigns=campaigns)
    return (
        Path(paths["transactions"]),
        Path(paths["customers"]),
        as_of_text,
        Path(paths["campaigns"]),
    )


def run_quarantine_dir(command: str, now: datetime | None = None) -> Path:
    """This run's quarantine folder, ``$CVM_HOME/quarantine/<UTC time>-<command>`` (e.g.
    ``20260105T101500Z-score``), one per run, so that no run replaces another's files
    (a folder already taken gets ``-2``, ``-3``, ...). Created only when a row is set aside."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    name = f"{stamp}-{re.sub(r'[^A-Za-z0-9_.-]+', '_', command) or 'run'}"
    root = config.cvm_home() / "quarantine"
    folder, n = root / name, 1
    while folder.exists():
        n += 1
        folder = root / f"{name}-{n}"
    return folder


def load_inputs(
    transactions: str | Path | None,
    customers: str | Path | None = None,
    as_of: pd.Timestamp | None = None,
    *,
    bad_rows: str = "error",
    keep_duplicates: bool = False,
    demo_customers: int | None = None,
    seed: int = 0,
    progress: Callable[[str], None] = print,
    warn: Callable[[str], None] | None = None,
    command: str = "load",
    campaigns: str | Path | None = None,
) -> Inputs:
    """Load and validate the named files, or generate demo data when ``demo_customers`` is
    given (with its campaigns file unless ``campaigns`` names another). ``campaigns``: a
    campaigns file (:func:`training.campaigns.load_campaigns`), for the uplift family.
    ``as_of`` defaults to the last purchase date (said in a progress line).
    ``warn``: where a file's line goes when rows were quarantined or repeats kept (default:
    ``progress``). Rows set aside go to this run's folder (:func:`run_quarantine_dir`, named
    after ``command``)."""
    cust_path: Path | None
    if demo_customers is not None:
        tx_path, cust_path, as_of_text, demo_campaigns = demo_files(
            demo_customers, seed, as_of, progress
        )
        as_of = pd.Timestamp(as_of or as_of_text)
        campaigns = campaigns or demo_campaigns
    else:
        if not transactions:
            raise CVMError("give --transactions FILE (and optionally --customers FILE), or --demo")
        tx_path = Path(transactions)
        cust_path = Path(customers) if customers else None
    quarantine_dir = run_quarantine_dir(command)
    tx_frame, tx_report = data.load_transactions(
        tx_path,
        as_of=as_of,
        bad_rows=bad_rows,
        quarantine_dir=quarantine_dir,
        keep_duplicates=keep_duplicates,
    )
    reports = [tx_report]
    cust_frame = None
    if cust_path is not None:
        cust_frame, cust_report = data.load_customers(
            cust_path, bad_rows=bad_rows, quarantine_dir=quarantine_dir
        )
        reports.append(cust_report)
    camp_frame, camp_path = None, Path(campaigns) if campaigns else None
    if camp_path is not None:
        from training.campaigns import load_campaigns

        camp_frame, camp_report = load_campaigns(
            camp_path, bad_rows=bad_rows, quarantine_dir=quarantine_dir
        )
        reports.append(camp_report)
    say_reports(reports, progress, warn)
    if as_of is None:
        as_of = tx_frame["timestamp"].max().normalize()
        progress(f"--as-of not given: using the last purchase date, {as_of.date()}")
    quarantined = [Path(r.quarantine_path) for r in reports if r.quarantine_path]
    return Inputs(
        tx_frame,
        cust_frame,
        pd.Timestamp(as_of),
        tx_path,
        cust_path,
        quarantined,
        campaigns=camp_frame,
        campaigns_path=camp_path,
    )


__all__ = [
    "DEMO_AS_OF",
    "Inputs",
    "demo_files",
    "load_inputs",
    "report_line",
    "run_quarantine_dir",
    "say_reports",
]
