"""Spark benchmark: ``cvm train`` and ``cvm score`` with ``--engine spark`` against the pandas
engine, at 1 M, 5 M and 10 M customers.

    make bench-spark                                   # 1 M, 5 M, 10 M (pandas up to 1 M)
    BENCH_SIZES=20000 BENCH_PANDAS_MAX=20000 make bench-spark
    python -m tests.benchmarks.bench_spark --data-only # only generate the data

Each job runs as its own process (``python -m training ...``, the ``cvm`` command) with a
fresh MLflow store and ``CVM_HOME`` in a temporary folder. While it runs, its resident memory
is polled every 0.2 s: the driver (the cvm Python process) and the whole process tree (the
driver plus every descendant: Spark's JVM and its Python workers). The table shows wall times
(interpreter and JVM start-up included), the peaks over train and score, and the ratios:
Spark's driver peak at the largest size over the smallest (the driver should not grow with
the data) and Spark's time over pandas' at each size both ran.

Data: synthetic (:mod:`training.synthetic`), cached under ``BENCH_DATA`` (default
``/tmp/cvm-bench-data``) and generated once. A data set of N customers is made of chunks of
at most 1 M customers, each generated with its own seed and its own customer ids (``C`` and
nine digits, numbered across chunks), and written as one Parquet part per chunk::

    spark-N/transactions/part-0000.parquet ...   # the Spark runs read the folders
    spark-N/customers/part-0000.parquet ...
    spark-N/transactions.parquet                 # one file each for the pandas runs
    spark-N/customers.parquet                    # (only sizes up to BENCH_PANDAS_MAX)
    spark-N/meta.json                            # row counts

Chunks are shared between sizes (the 5 M set is the first five chunks of the 10 M one) as
hard links to ``spark-chunks/``. Job logs go to ``BENCH_DATA/bench-spark-logs/``, the table
also to ``BENCH_DATA/bench_spark.md``.

Environment: ``BENCH_SIZES`` (customers, comma-separated; default 1000000,5000000,10000000),
``BENCH_PANDAS_MAX`` (largest size the pandas engine runs, default 1000000), ``BENCH_DATA``,
``BENCH_SPARK_MASTER`` (default ``local[2]``), ``BENCH_TIMEOUT`` (seconds per job, default
7200). Command-line options override them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import psutil

ROOT = Path(__file__).resolve().parents[2]
AS_OF = "2025-12-31"  # training.synthetic.generate's default
CHUNK = 1_000_000  # customers per generated chunk (and per Parquet part)
ID_DIGITS = 9  # customer ids C000000001 ...: unique across chunks, sorted as numbers
BASE_SEED = 1000  # chunk k is generated with seed BASE_SEED + k
POLL_SECONDS = 0.2
GB = 1024**3
DEFAULT_SIZES = "1000000,5000000,10000000"
DEFAULT_PANDAS_MAX = 1_000_000


# --- data ---------------------------------------------------------------------------------


def chunk_sizes(customers: int) -> list[int]:
    """Customers per chunk: full chunks of CHUNK and the rest last."""
    if customers <= 0:
        raise SystemExit(f"BENCH_SIZES: sizes must be positive, got {customers}")
    if customers >= 10**ID_DIGITS:
        raise SystemExit(f"BENCH_SIZES: at most {10**ID_DIGITS - 1:,} customers, got {customers:,}")
    full, rest = divmod(customers, CHUNK)
    return [CHUNK] * full + ([rest] if rest else [])


def _ids(first: int, n: int) -> pd.Index:
    """Customer ids ``C`` + ID_DIGITS digits, numbered ``first .. first + n - 1``."""
    numbers = np.arange(first, first + n).astype(np.dtypes.StringDType())
    ids = np.strings.add("C", np.strings.zfill(numbers, ID_DIGITS))
    return pd.Index(ids.astype(object), dtype="str")


def _write_parquet(frame: pd.DataFrame, path: Path) -> None:
    """Write atomically: a hidden temporary name (Spark and pyarrow skip it), then rename.

    Timestamps are stored in microseconds: Spark does not read Parquet's nanosecond
    timestamps (pandas' default), and the generator's are whole seconds, so nothing is lost
    (pyarrow raises rather than truncate)."""
    tmp = path.with_name(f".{path.name}.tmp")
    frame.to_parquet(tmp, index=False, coerce_timestamps="us", allow_truncated_timestamps=False)
    tmp.replace(path)


def make_chunk(folder: Path, index: int, customers: int) -> dict:
    """Chunk ``index`` (``customers`` customers) under ``folder/spark-chunks`` (generated once):
    ``transactions.parquet``, ``customers.parquet`` and ``meta.json`` with its row counts."""
    from training.synthetic import generate

    out = folder / "spark-chunks" / f"chunk-{index:04d}-n{customers}"
    meta_path = out / "meta.json"
    if meta_path.exists():
        return {**json.loads(meta_path.read_text()), "reused": True}
    out.mkdir(parents=True, exist_ok=True)
    seed = BASE_SEED + index
    start = time.perf_counter()
    transactions, customers_table, _truth = generate(customers, seed=seed, as_of=AS_OF)
    del _truth
    # The generator numbers every data set from C1: renumber this chunk's customers after
    # the chunks before it so that ids never repeat across chunks.
    ids = _ids(index * CHUNK + 1, customers)
    codes = pd.Index(customers_table["customer_id"]).get_indexer(transactions["customer_id"])
    if (codes < 0).any():
        raise SystemExit(f"chunk {index}: transactions of customers missing from the table")
    transactions["customer_id"] = ids.take(codes)
    customers_table["customer_id"] = ids
    with_purchases = int(np.unique(codes).size)
    _write_parquet(transactions, out / "transactions.parquet")
    _write_parquet(customers_table, out / "customers.parquet")
    meta = {
        "chunk": index,
        "seed": seed,
        "as_of": AS_OF,
        "customers": customers,
        "customers_with_purchases": with_purchases,
        "transactions": len(transactions),
        "first_id": str(ids[0]),
        "last_id": str(ids[-1]),
        "seconds": round(time.perf_counter() - start, 1),
    }
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    return meta


def _link(source: Path, target: Path) -> None:
    """Hard link (no extra disk), a copy where the file system cannot link."""
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(source, tmp)
    except OSError:
        shutil.copyfile(source, tmp)
    tmp.replace(target)


def _combine(parts: list[Path], target: Path) -> None:
    """One Parquet file from the parts, a row group at a time (memory of one row group)."""
    import pyarrow.parquet as pq

    if len(parts) == 1:
        _link(parts[0], target)
        return
    tmp = target.with_name(f".{target.name}.tmp")
    schema = pq.read_schema(parts[0])
    with pq.ParquetWriter(tmp, schema) as writer:
        for part in parts:
            reader = pq.ParquetFile(part)
            for group in range(reader.num_row_groups):
                writer.write_table(reader.read_row_group(group).cast(schema))
    tmp.replace(target)


def data_for(customers: int, folder: Path, *, single_file: bool) -> dict:
    """The data set of ``customers`` customers under ``folder/spark-<customers>`` (generated
    once, then reused), with the single files for the pandas engine if ``single_file``.
    Returns its meta: paths, row counts and generation seconds."""
    out = folder / f"spark-{customers}"
    meta_path = out / "meta.json"
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
    else:
        sizes = chunk_sizes(customers)
        print(f"data: {customers:,} customers in {len(sizes)} chunk(s) -> {out}", flush=True)
        start = time.perf_counter()
        chunks = []
        for index, n in enumerate(sizes):
            chunk = make_chunk(folder, index, n)
            chunks.append(chunk)
            print(
                f"  chunk {index + 1}/{len(sizes)}: {n:,} customers, "
                f"{chunk['transactions']:,} transactions "
                + ("(already generated)" if chunk.get("reused") else f"in {chunk['seconds']} s"),
                flush=True,
            )
        for table in ("transactions", "customers"):
            (out / table).mkdir(parents=True, exist_ok=True)
            for index, n in enumerate(sizes):
                source = folder / "spark-chunks" / f"chunk-{index:04d}-n{n}" / f"{table}.parquet"
                _link(source, out / table / f"part-{index:04d}.parquet")
        meta = {
            "customers": customers,
            "customers_with_purchases": sum(c["customers_with_purchases"] for c in chunks),
            "transactions": sum(c["transactions"] for c in chunks),
            "chunks": len(sizes),
            "as_of": AS_OF,
            "generation_seconds": round(sum(c["seconds"] for c in chunks), 1),
            "assembly_seconds": round(time.perf_counter() - start, 1),
        }
        verify(out, meta)
        meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    if single_file:
        for table in ("transactions", "customers"):
            target = out / f"{table}.parquet"
            if not target.exists():
                print(f"  one file for the pandas engine: {target}", flush=True)
                _combine(sorted((out / table).glob("part-*.parquet")), target)
    return {**meta, "dir": str(out)}


def count_rows(path: Path) -> int:
    """Rows of a Parquet file or of a folder of Parquet parts (Spark's output)."""
    import pyarrow.dataset as ds

    return int(ds.dataset(path, format="parquet").count_rows())


def verify(out: Path, meta: dict) -> None:
    """The part folders hold the rows the chunks were generated with, ids unique per table."""
    import pyarrow.dataset as ds

    tx_rows = count_rows(out / "transactions")
    customers = ds.dataset(out / "customers", format="parquet").to_table(columns=["customer_id"])
    ids = customers.column("customer_id").combine_chunks()
    unique = len(ids.unique())
    if (tx_rows, len(ids), unique) != (meta["transactions"], meta["customers"], meta["customers"]):
        raise SystemExit(
            f"{out}: {tx_rows:,} transactions, {len(ids):,} customer rows with {unique:,} "
            f"distinct ids; expected {meta['transactions']:,} and {meta['customers']:,}"
        )


# --- jobs ---------------------------------------------------------------------------------


@dataclass
class Job:
    """One monitored ``cvm`` process."""

    seconds: float = float("nan")
    driver_peak: int = 0  # bytes, the cvm Python process
    tree_peak: int = 0  # bytes, the process and all its descendants at one moment
    error: str | None = None


def _tree_rss(process: psutil.Process) -> tuple[int, int]:
    """(driver RSS, RSS of the driver and all its descendants), in bytes."""
    gone = (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied)
    try:
        driver = process.memory_info().rss
        children = process.children(recursive=True)
    except gone:
        return 0, 0
    total = driver
    for child in children:
        with contextlib.suppress(*gone):
            total += child.memory_info().rss
    return driver, total


def _kill_tree(process: psutil.Process) -> None:
    try:
        victims = [*process.children(recursive=True), process]
    except psutil.NoSuchProcess:
        return
    for victim in victims:
        with contextlib.suppress(psutil.NoSuchProcess):
            victim.kill()


def _last_error_line(text: str) -> str:
    """The line that says what went wrong: the last ``error: ...`` line, else the last line."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return "no output"
    errors = [line for line in lines if line.lower().startswith("error")]
    return (errors or lines)[-1][:200]


def run_job(args: list[str], env: dict[str, str], log: Path, timeout: float) -> Job:
    """Run ``python -m training ARGS`` and poll its memory every POLL_SECONDS until it ends."""
    log.parent.mkdir(parents=True, exist_ok=True)
    err_path = log.with_suffix(".stderr.log")
    cmd = [sys.executable, "-m", "training", *args]
    job = Job()
    with log.open("w") as out, err_path.open("w") as err:
        out.write(" ".join(cmd) + "\n")
        out.flush()
        start = time.perf_counter()
        popen = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=err)
        process = psutil.Process(popen.pid)
        timed_out = False
        while True:
            driver, tree = _tree_rss(process)
            job.driver_peak = max(job.driver_peak, driver)
            job.tree_peak = max(job.tree_peak, tree)
            try:
                popen.wait(timeout=POLL_SECONDS)
                break
            except subprocess.TimeoutExpired:
                if time.perf_counter() - start > timeout:
                    timed_out = True
                    _kill_tree(process)
                    popen.wait()
                    break
        job.seconds = time.perf_counter() - start
    if timed_out:
        job.error = f"timed out after {timeout:.0f} s"
    elif popen.returncode != 0:
        job.error = _last_error_line(err_path.read_text(errors="replace"))
    return job


@dataclass
class Run:
    """Train then score with one engine on one data set."""

    customers: int
    engine: str
    train: Job = field(default_factory=Job)
    score: Job = field(default_factory=Job)
    scored_rows: int | None = None
    expected_rows: int = 0
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def completed(self) -> bool:
        """Train and score ran (their times count even if the scored rows are wrong)."""
        return (
            self.train.error is None and self.score.error is None and self.scored_rows is not None
        )

    @property
    def total(self) -> float:
        return self.train.seconds + self.score.seconds

    @property
    def driver_peak(self) -> int:
        return max(self.train.driver_peak, self.score.driver_peak)

    @property
    def tree_peak(self) -> int:
        return max(self.train.tree_peak, self.score.tree_peak)


def _engine_args(engine: str, master: str) -> list[str]:
    return [] if engine == "pandas" else ["--engine", "spark", "--spark-master", master]


def run_engine(data: dict, engine: str, master: str, logs: Path, timeout: float) -> Run:
    """``cvm train`` then ``cvm score`` with ``engine`` in a fresh CVM_HOME and MLflow store;
    the scored rows are counted and checked against the customers with purchases."""
    folder = Path(data["dir"])
    run = Run(data["customers"], engine, expected_rows=data["customers_with_purchases"])
    if engine == "pandas":
        inputs = ["--transactions", str(folder / "transactions.parquet")]
        inputs += ["--customers", str(folder / "customers.parquet")]
    else:
        inputs = ["--transactions", str(folder / "transactions")]
        inputs += ["--customers", str(folder / "customers")]
    inputs += ["--as-of", data["as_of"]]
    with tempfile.TemporaryDirectory(prefix="cvm-bench-spark-") as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        env = {
            **os.environ,
            "CVM_HOME": str(home),
            "MLFLOW_TRACKING_URI": f"sqlite:///{tmp}/mlflow.db",
            "PYSPARK_PYTHON": sys.executable,
        }
        stem = logs / f"{run.customers}-{engine}"
        extra = _engine_args(engine, master)
        print(f"  {engine}: cvm train ...", flush=True)
        run.train = run_job(
            ["train", *extra, *inputs, "-q"], env, Path(f"{stem}-train.log"), timeout
        )
        if run.train.error:
            run.error = f"train failed: {run.train.error}"
            return run
        print(f"  {engine}: trained in {run.train.seconds:.1f} s; cvm score ...", flush=True)
        out = Path(tmp) / ("scored.parquet" if engine == "pandas" else "scored_dir")
        run.score = run_job(
            ["score", *extra, *inputs, "--out", str(out)], env, Path(f"{stem}-score.log"), timeout
        )
        if run.score.error:
            run.error = f"score failed: {run.score.error}"
            return run
        print(f"  {engine}: scored in {run.score.seconds:.1f} s", flush=True)
        try:
            run.scored_rows = count_rows(out)
        except (OSError, ValueError) as exc:
            run.error = f"scored output {out.name} unreadable: {exc}"
            return run
    if run.scored_rows != run.expected_rows:
        run.error = (
            f"scored {run.scored_rows:,} rows, expected {run.expected_rows:,} "
            "(customers with purchases)"
        )
    return run


# --- report -------------------------------------------------------------------------------


def _seconds(job: Job) -> str:
    return f"{job.seconds:.1f}" if job.seconds == job.seconds else "-"


def _gb(value: int) -> str:
    return f"{value / GB:.2f}" if value else "-"


def table_rows(runs: list[Run]) -> list[list[str]]:
    rows = []
    for run in runs:
        trained = run.train.error is None
        rows.append(
            [
                f"{run.customers:,}",
                run.engine,
                _seconds(run.train),
                _seconds(run.score) if trained else "-",
                f"{run.total:.1f}" if run.completed else "-",
                _gb(run.driver_peak),
                _gb(run.tree_peak),
                f"{run.scored_rows:,}" if run.scored_rows is not None else "-",
                "ok" if run.ok else f"failed: {run.error}",
            ]
        )
    return rows


HEADER = [
    "customers",
    "engine",
    "train s",
    "score s",
    "total s",
    "driver peak GB",
    "tree peak GB",
    "scored rows",
    "status",
]


def ratios(runs: list[Run]) -> list[str]:
    """Spark's driver peak at the largest size over the smallest; Spark over pandas time."""
    lines = []
    spark = sorted(
        (r for r in runs if r.engine == "spark" and r.completed), key=lambda r: r.customers
    )
    if len(spark) >= 2 and spark[0].driver_peak:
        small, large = spark[0], spark[-1]
        lines.append(
            f"spark driver peak {large.customers:,} / {small.customers:,} customers: "
            f"{large.driver_peak / small.driver_peak:.2f}x "
            f"({_gb(large.driver_peak)} / {_gb(small.driver_peak)} GB)"
        )
    else:
        lines.append("spark driver peak ratio: n/a (needs two sizes where spark ran)")
    pandas = {r.customers: r for r in runs if r.engine == "pandas" and r.completed}
    for run in spark:
        base = pandas.get(run.customers)
        if base is not None:
            lines.append(
                f"spark / pandas time at {run.customers:,} customers: "
                f"{run.total / base.total:.2f}x (train {run.train.seconds / base.train.seconds:.2f}x, "
                f"score {run.score.seconds / base.score.seconds:.2f}x)"
            )
    for customers in sorted(pandas):
        if not any(r.customers == customers for r in spark):
            lines.append(f"spark / pandas time at {customers:,} customers: n/a (spark failed)")
    return lines


def format_text(runs: list[Run]) -> str:
    rows = [HEADER, *table_rows(runs)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADER) - 1)]
    lines = []
    for row in rows:
        cells = [
            c.rjust(w) if i != 1 else c.ljust(w)
            for i, (c, w) in enumerate(zip(row[:-1], widths, strict=True))
        ]
        lines.append("  ".join([*cells, row[-1]]))
        if row is HEADER:
            lines.append("  ".join("-" * w for w in [*widths, len(HEADER[-1])]))
    return "\n".join(lines + [""] + ratios(runs))


def format_markdown(runs: list[Run], datasets: dict[int, dict], master: str) -> str:
    rows = [HEADER, ["---"] * len(HEADER), *table_rows(runs)]
    lines = [
        "# cvm train + score: spark vs pandas",
        "",
        f"{time.strftime('%Y-%m-%d %H:%M')}, spark master {master}, as of {AS_OF}; "
        "wall times include start-up; peaks are the largest of train and score "
        f"(RSS polled every {POLL_SECONDS} s).",
        "",
        *("| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows),
        "",
        *(f"- {line}" for line in ratios(runs)),
        "",
        "| data set | customers | transactions | chunks | generated in s |",
        "| --- | --- | --- | --- | --- |",
    ]
    for customers, meta in sorted(datasets.items()):
        lines.append(
            f"| {meta['dir']} | {customers:,} | {meta['transactions']:,} | {meta['chunks']} "
            f"| {meta['generation_seconds']} |"
        )
    return "\n".join(lines) + "\n"


# --- main ---------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    env = os.environ
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes", default=env.get("BENCH_SIZES", DEFAULT_SIZES), help="customers, comma-separated"
    )
    parser.add_argument(
        "--pandas-max",
        type=int,
        default=int(env.get("BENCH_PANDAS_MAX", DEFAULT_PANDAS_MAX)),
        help="largest size the pandas engine runs",
    )
    parser.add_argument("--data", default=env.get("BENCH_DATA", "/tmp/cvm-bench-data"))
    parser.add_argument("--master", default=env.get("BENCH_SPARK_MASTER", "local[2]"))
    parser.add_argument(
        "--timeout",
        type=float,
        default=float(env.get("BENCH_TIMEOUT", 7200)),
        help="seconds per job before it is killed",
    )
    parser.add_argument("--data-only", action="store_true", help="only generate the data")
    args = parser.parse_args(argv)
    try:
        sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    except ValueError:
        raise SystemExit(
            f"BENCH_SIZES: comma-separated numbers of customers, got {args.sizes!r}"
        ) from None
    folder = Path(args.data)
    folder.mkdir(parents=True, exist_ok=True)

    datasets: dict[int, dict] = {}
    for customers in sizes:
        start = time.perf_counter()
        meta = data_for(customers, folder, single_file=customers <= args.pandas_max)
        datasets[customers] = meta
        print(
            f"data {customers:,}: {meta['customers']:,} customers "
            f"({meta['customers_with_purchases']:,} with purchases), "
            f"{meta['transactions']:,} transactions in {meta['chunks']} part(s) at {meta['dir']} "
            f"[generation {meta['generation_seconds']} s; this call "
            f"{time.perf_counter() - start:.0f} s]",
            flush=True,
        )
    if args.data_only:
        return 0

    logs = folder / "bench-spark-logs"
    runs: list[Run] = []
    for customers in sizes:
        engines = ["pandas", "spark"] if customers <= args.pandas_max else ["spark"]
        for engine in engines:
            print(f"\n{customers:,} customers, {engine}:", flush=True)
            run = run_engine(datasets[customers], engine, args.master, logs, args.timeout)
            if run.error:
                print(f"  failed: {run.error} (logs: {logs})", flush=True)
            runs.append(run)

    text = format_text(runs)
    print("\n" + text)
    report = folder / "bench_spark.md"
    report.write_text(format_markdown(runs, datasets, args.master))
    print(f"\nwrote {report}")
    return 0 if all(run.ok for run in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
