"""Training benchmark: wall time and peak memory of each stage of ``cvm train`` and
``cvm retrain``, on a CDNOW-sized data set and on a million customers.

    make bench-train                                 # both sizes (generates the data once)
    python -m tests.benchmarks.bench_train --sizes 25000

Data: synthetic (``cvm generate``), cached under ``BENCH_DATA`` (default
``/tmp/cvm-bench-data``). Each run is a fresh process with its own MLflow store, so its peak
RSS is its own. Machine speed drifts, so each table also shows every stage as a multiple of
one reference pass over the same data measured in the same process (reading and validating
the files and summarising them): the multiples are what to compare between runs.

Targets (issue "Training at the speed of the data"): 25 k customers train end to end in
<= 20 s and retrain in <= 40 s; 1 M customers train in <= 5 min with peak RSS <= 4 GB.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
TARGETS = {  # (customers, job): (seconds, peak bytes or None)
    (25_000, "train"): (20.0, None),
    (25_000, "retrain"): (40.0, None),
    (1_000_000, "train"): (300.0, 4 * 1024**3),
}


def data_for(customers: int, folder: Path) -> Path:
    """Synthetic data for ``customers`` customers (generated once, then reused)."""
    out = folder / f"customers-{customers}"
    if (out / "transactions.parquet").exists():
        return out
    print(f"generating {customers:,} customers into {out} ...", flush=True)
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "training", "generate", "--customers", str(customers)]
        + ["--out", str(out), "--format", "parquet"],
        check=True,
        cwd=ROOT,
    )
    print(f"  generated in {time.perf_counter() - start:.0f} s", flush=True)
    return out


def child(job: str, data: Path) -> dict:
    """Run one job in this process and return its stage timings (called in a fresh process)."""
    from training.inputs import load_inputs
    from training.pipeline import TrainConfig
    from training.progress import Progress, peak_rss
    from training.retrain import current_champions, retrain, train_and_register

    progress = Progress(mode="quiet")
    start = time.perf_counter()
    with progress.stage("read and validate"):
        inputs = load_inputs(
            data / "transactions.parquet",
            data / "customers.parquet",
            progress=lambda m: None,
        )
    with progress.stage("reference: summarise"):
        from models.features import summarize

        summarize(inputs.transactions, inputs.as_of)
    config = TrainConfig(as_of=inputs.as_of)
    with progress.stage("load champions"):
        if job == "retrain":  # as cvm retrain: the champions first, to compare with
            from training import tracking

            champions: Any = tracking.load_champions()
        else:  # as cvm train: in the background, while the models are fitted
            champions = current_champions()
    if job == "train":
        train_and_register(inputs, config, champions, progress=progress)
    else:
        retrain(inputs, config, champions, progress=progress)
    return {
        "job": job,
        "customers": int(inputs.transactions["customer_id"].nunique()),
        "transactions": len(inputs.transactions),
        "stages": progress.finished,
        "total": time.perf_counter() - start,
        "peak": peak_rss(),
    }


def run_child(job: str, data: Path, home: Path) -> dict:
    env = {
        **os.environ,
        "CVM_HOME": str(home),
        "MLFLOW_TRACKING_URI": f"sqlite:///{home}/mlflow.db",
        "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS", "1"),
    }
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "tests.benchmarks.bench_train", "--child", job, str(data)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise SystemExit(f"{job} on {data} failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["wall"] = time.perf_counter() - started  # with the interpreter's start-up
    return result


def table(result: dict) -> str:
    stages = result["stages"]
    reference = next(s for name, s, _ in stages if name.startswith("reference"))
    width = max(len(name) for name, _, _ in stages)
    lines = [
        f"{'stage':<{width}}  {'seconds':>8}  {'x ref':>6}  {'peak RSS':>9}",
        f"{'-' * width}  {'-' * 8}  {'-' * 6}  {'-' * 9}",
    ]
    for name, seconds, peak in stages:
        ratio = seconds / reference if reference > 0 else float("nan")
        lines.append(f"{name:<{width}}  {seconds:8.1f}  {ratio:6.1f}  {peak / 2**20:6.0f} MB")
    lines.append(
        f"{'total (process wall)':<{width}}  {result['wall']:8.1f}  "
        f"{result['wall'] / reference:6.1f}  {result['peak'] / 2**20:6.0f} MB"
    )
    return "\n".join(lines)


def verdict(customers: int, result: dict) -> str:
    target = TARGETS.get((customers, result["job"]))
    if target is None:
        return ""
    seconds, peak = target
    ok = result["wall"] <= seconds and (peak is None or result["peak"] <= peak)
    limit = f"<= {seconds:.0f} s" + (f", <= {peak / 2**30:.0f} GB" if peak else "")
    return f"target {limit}: {'PASS' if ok else 'FAIL'}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="25000,1000000", help="customers, comma-separated")
    parser.add_argument("--child", nargs=2, metavar=("JOB", "DATA"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        job, data = args.child
        print(json.dumps(child(job, Path(data))))
        return 0
    folder = Path(os.environ.get("BENCH_DATA", "/tmp/cvm-bench-data"))
    failed = False
    for customers in (int(s) for s in args.sizes.split(",")):
        data = data_for(customers, folder)
        with tempfile.TemporaryDirectory(prefix="cvm-bench-") as home:
            jobs = ["train", "retrain"] if customers <= 100_000 else ["train"]
            for job in jobs:
                result = run_child(job, data, Path(home))
                head = (
                    f"cvm {job}: {result['customers']:,} customers, "
                    f"{result['transactions']:,} transactions"
                )
                print(f"\n{head}\n{table(result)}")
                line = verdict(customers, result)
                if line:
                    print(line)
                    failed |= line.endswith("FAIL")
                sys.stdout.flush()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
