"""The data contract of :mod:`training.data` on Spark: the same files, rules, reasons, report
and errors, for inputs too large for one pandas frame.

Inputs
    A CSV or Parquet file, a folder of them (a Spark output folder such as
    ``tx.parquet/part-*.parquet``; names starting with ``_`` or ``.`` are skipped) or a glob
    (``data/tx-*.csv``), on any file system Spark reads (``file://``, ``s3a://``, ``hdfs://``,
    plain local paths). The kind comes from the file names: ``.csv``/``.txt`` (optionally
    compressed: ``.csv.gz``, ``.csv.bz2``) or ``.parquet``/``.pq``; one kind per input. Every
    CSV file of an input must have the same header line; each file's first line is its
    header. CSV cells are read as text and then parsed exactly as :mod:`training.data` parses
    them. A quoted value spanning several lines is not supported (files are split by lines).

Rules
    One implementation: the row rules are :func:`training.data.transaction_rows` and
    :func:`training.data.customer_rows`, run on each Arrow batch of each partition
    (``mapInPandas``). The choices :mod:`training.data` makes per column over the whole file
    (decimal commas, whole floats, numeric attribute columns) are made here over all
    partitions from the facts each batch reports; when they differ from the defaults the
    rows are parsed again with them (rare: a file with decimal commas, or a float id column
    with fractions). ``duplicate`` (a row equal in every parsed column to an earlier row that
    passed the row rules, "earlier" in file order) and ``duplicate_customer_id`` (a later row
    with an id seen before) are decided over the whole input with a window ordered by the row
    position (``monotonically_increasing_id`` right after reading).

Errors and quarantine
    Errors are :class:`training.data.DataError` with the pandas loader's message, except that
    rows are not numbered (a distributed read has no line numbers): file, column, how many
    rows, the first few distinct offending values in file order. With
    ``bad_rows="quarantine"`` the rows set aside are written as Parquet -- the original
    columns as read plus ``_reason`` -- into a Spark output folder
    ``<quarantine_dir>/<input stem>_quarantine.parquet`` (``_2``, ``_3``, ... when taken; the
    default ``quarantine_dir`` is a ``quarantine/`` folder beside the input).

Cost
    The input is read and parsed once; the parsed rows and their reasons are persisted
    (memory and disk) for the counts, the examples and the quarantine; the kept rows are
    persisted on their own and the rest released before returning.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path, PurePosixPath
from typing import Any

import pandas as pd

from training import data
from training.data import DataError, LoadReport
from training.spark.session import quiet_pyspark_warnings

__all__ = ["QUARANTINE_SUFFIX", "load_customers", "load_transactions"]

QUARANTINE_SUFFIX = "_quarantine.parquet"

# Internal columns of the staged frame (original columns are c0, c1, ...; parsed ones p0, ...).
_RID, _REASON, _FACTS, _LINE, _REPEAT = "__rid", "__reason", "__facts", "__line", "__repeat"
_TOO_MANY = "__too_many_fields"
_COMPRESSED = (".gz", ".bz2", ".deflate", ".lz4", ".snappy", ".zst")
_GLOB = re.compile(r"[*?\[{]")
_PANDAS_INDEX = re.compile(r"__index_level_\d+__")
_EXAMPLES = 1000  # offending values fetched for a message (the pandas loader also looks at 1000)


# --------------------------------------------------------------------------------------------
# Loaders
# --------------------------------------------------------------------------------------------


def load_transactions(
    spark: Any,
    path: str | Path,
    *,
    as_of: str | date | datetime | pd.Timestamp | None = None,
    bad_rows: str = "error",
    quarantine_dir: str | Path | None = None,
    keep_duplicates: bool = False,
) -> tuple[Any, LoadReport]:
    """Load and validate transactions as :func:`training.data.load_transactions` does.

    Returns a Spark DataFrame -- ``customer_id`` (string), ``timestamp`` (timestamp_ntz: the
    same naive instants as the pandas loader), ``amount`` (double), then ``cost`` (double),
    ``channel`` and ``category`` (string) when given, then the other columns (string for
    CSV, their own type for Parquet) -- NOT sorted, persisted (``.unpersist()`` it when
    done), and a :class:`training.data.LoadReport` (``n_read == n_kept + n_quarantined``).
    """
    data._check_policy(bad_rows)
    cutoff = data._end_of_day(as_of)
    source = _read(spark, str(path))
    cols = data.transaction_columns(source.path, source.names)
    job = _Job(spark, source, "transactions", cols, cutoff=cutoff, keep_duplicates=keep_duplicates)
    return job.run(bad_rows, quarantine_dir)


def load_customers(
    spark: Any,
    path: str | Path,
    *,
    bad_rows: str = "error",
    quarantine_dir: str | Path | None = None,
) -> tuple[Any, LoadReport]:
    """Load and validate customers as :func:`training.data.load_customers` does.

    Returns a Spark DataFrame -- ``customer_id`` (string), then ``signup_date``
    (timestamp_ntz), ``churned`` (bigint 0/1, null when blank), ``churn_date``
    (timestamp_ntz) when given, then the attributes (CSV: bigint or double when every value
    of the column is a plain number, else string; Parquet: their own type) -- NOT sorted,
    persisted (``.unpersist()`` it when done), and a :class:`training.data.LoadReport`.
    """
    data._check_policy(bad_rows)
    source = _read(spark, str(path))
    cols = data.customer_columns(source.path, source.names)
    job = _Job(spark, source, "customers", cols)
    return job.run(bad_rows, quarantine_dir)


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


@dataclass
class _Source:
    """An input as read: Spark columns c0..c{n-1} holding the file's columns ``names``."""

    path: str
    frame: Any
    names: list[str]
    csv: bool
    delimiter: str = ","
    n_fields: int = 0  # CSV: fields on the header line (trailing blank ones included)
    types: dict[str, Any] = field(default_factory=dict)  # c_i -> Spark type


def _read(spark: Any, shown: str) -> _Source:
    files, folder = _data_files(spark, shown)
    kinds = {_kind(name) for name in files}
    if kinds == {"csv"}:
        return _read_csv(spark, shown, files)
    return _read_parquet(spark, shown, files, folder)


def _hadoop_fs(spark: Any, path: str) -> tuple[Any, Any]:
    jvm = spark._jvm
    hpath = jvm.org.apache.hadoop.fs.Path(path)
    return hpath, hpath.getFileSystem(spark._jsc.hadoopConfiguration())


def _named(shown: str, file: str) -> str:
    """A listed file as messages name it: without Hadoop's ``file:`` for a local input."""
    return file.removeprefix("file:") if not shown.startswith("file:") else file


def _hidden(relative: str) -> bool:
    return any(part.startswith(("_", ".")) for part in relative.split("/") if part)


def _data_files(spark: Any, shown: str) -> tuple[list[str], str | None]:
    """The data files of an input (sorted), and the folder when the input is one."""
    glob = bool(_GLOB.search(shown))
    try:
        hpath, fs = _hadoop_fs(spark, shown)
        matches = list(fs.globStatus(hpath) or [])
        files: list[str] = []
        folder = None
        for status in matches:
            where = status.getPath().toString()
            if status.isDirectory():
                folder = where if len(matches) == 1 else None
                root = where.rstrip("/") + "/"
                found = fs.listFiles(status.getPath(), True)
                while found.hasNext():
                    name = found.next().getPath().toString()
                    if not _hidden(name[len(root) :] if name.startswith(root) else name):
                        files.append(name)
            elif not (glob and _hidden(status.getPath().getName())):
                files.append(where)
    except DataError:
        raise
    except Exception as exc:  # a file system Spark cannot reach, a malformed URI, ...
        raise DataError(f"{shown}: cannot read: {_first_line(exc)}", path=shown) from exc
    if not matches:
        raise DataError(f"{shown}: {'no file matches' if glob else 'file not found'}", path=shown)
    if not files:
        raise DataError(f"{shown}: no data files in the folder", path=shown)
    files.sort()
    if len(files) == 1 and folder is None and not glob:
        if _kind(files[0]) is None:
            suffix = PurePosixPath(shown).suffix
            kind = f"'{suffix}'" if suffix else "(no extension)"
            raise DataError(
                f"{shown}: unsupported file type {kind}; use .csv, .txt, .parquet or .pq",
                path=shown,
            )
        return files, folder
    unknown = [f for f in files if _kind(f) is None]
    if unknown:
        raise DataError(
            f"{shown}: {_named(shown, unknown[0])} is neither CSV (.csv, .txt) nor Parquet "
            "(.parquet, .pq); a folder or pattern must hold data files of one kind only",
            path=shown,
        )
    kinds = {_kind(f): f for f in files}
    if len(kinds) > 1:
        raise DataError(
            f"{shown}: holds both CSV and Parquet files ({_named(shown, kinds['csv'])}, "
            f"{_named(shown, kinds['parquet'])}); give one kind",
            path=shown,
        )
    return files, folder


def _kind(name: str) -> str | None:
    lower = PurePosixPath(name).name.lower()
    compressed = lower.endswith(_COMPRESSED)
    if compressed:
        lower = lower[: lower.rindex(".")]
    suffix = PurePosixPath(lower).suffix
    if suffix in data.CSV_SUFFIXES:
        return "csv"
    if suffix in data.PARQUET_SUFFIXES and not compressed:
        return "parquet"
    return None


def _header_line(spark: Any, file: str, shown: str) -> str | None:
    """A CSV file's first line (None for an empty file), through Hadoop (any file system,
    compressed files too)."""
    jvm = spark._jvm
    hpath, fs = _hadoop_fs(spark, file)
    stream = fs.open(hpath)
    codec = jvm.org.apache.hadoop.io.compress.CompressionCodecFactory(
        spark._jsc.hadoopConfiguration()
    ).getCodec(hpath)
    if codec is not None:
        stream = codec.createInputStream(stream)
    reader = jvm.java.io.BufferedReader(jvm.java.io.InputStreamReader(stream, "UTF-8"))
    try:
        first = reader.readLine()
        if first is not None and not first.strip():
            line = first
            while line is not None and not line.strip():
                line = reader.readLine()
            if line is not None:
                raise DataError(
                    f"{shown}: line 1 is blank; the first line must be the column header",
                    path=shown,
                )
            return None
        return None if first is None else first.removeprefix("\ufeff")
    finally:
        reader.close()


def _read_csv(spark: Any, shown: str, files: list[str]) -> _Source:
    from pyspark.sql import types as T

    header: data.CsvHeader | None = None
    first_file = ""
    read: list[str] = []
    for file in files:
        named = shown if len(files) == 1 else _named(shown, file)
        try:
            line = _header_line(spark, file, named)
        except DataError:
            raise
        except Exception as exc:
            raise DataError(f"{named}: cannot read file: {_first_line(exc)}", path=shown) from exc
        if line is None:
            continue  # an empty file (e.g. an empty part file): no header, no rows
        this = data.csv_header(line, named)
        if header is None:
            header, first_file = this, file
        elif this != header:
            raise DataError(
                f"{shown}: {_named(shown, file)} starts with a different header line than "
                f"{_named(shown, first_file)} "
                f"({', '.join(this.names)} vs {', '.join(header.names)}); every file of an "
                "input must have the same columns in the same order",
                path=shown,
            )
        read.append(file)
    if header is None:
        raise DataError(f"{shown}: file is empty", path=shown)
    schema = T.StructType(
        [T.StructField(f"c{i}", T.StringType()) for i in range(header.n_fields)]
        + [T.StructField(_LINE, T.StringType())]
    )
    frame = spark.read.csv(
        read,
        schema=schema,
        header=True,
        sep=header.delimiter,
        quote='"',
        escape='"',
        mode="PERMISSIVE",
        columnNameOfCorruptRecord=_LINE,
        multiLine=False,
        encoding="UTF-8",
    )
    return _Source(
        path=shown,
        frame=frame,
        names=header.names,
        csv=True,
        delimiter=header.delimiter,
        n_fields=header.n_fields,
        types={f"c{i}": T.StringType() for i in range(len(header.names))},
    )


def _read_parquet(spark: Any, shown: str, files: list[str], folder: str | None) -> _Source:
    reader = spark.read
    if folder is not None:
        reader = reader.option("basePath", folder)  # partition folders (key=value) as columns
    try:
        frame = reader.parquet(*files)
    except Exception as exc:
        raise DataError(f"{shown}: cannot read file: {_first_line(exc)}", path=shown) from exc
    frame = _nanosecond_times(frame, files, shown)
    names = [n for n in frame.columns if not _PANDAS_INDEX.fullmatch(n)]  # pandas' own index
    data._check_unique_names(names, shown)
    frame = frame.select(*[frame[n].alias(f"c{i}") for i, n in enumerate(names)])
    return _Source(
        path=shown,
        frame=frame,
        names=names,
        csv=False,
        types={f.name: f.dataType for f in frame.schema.fields},
    )


def _nanosecond_times(frame: Any, files: list[str], shown: str) -> Any:
    """Timestamps that pandas wrote in nanoseconds (its default), as Spark timestamps.

    Spark reads such columns as whole numbers of nanoseconds
    (``spark.sql.legacy.parquet.nanosAsLong``, set by :mod:`training.spark.session`); the
    Parquet footer of the first file says which columns they are."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    longs = [f.name for f in frame.schema.fields if isinstance(f.dataType, T.LongType)]
    if not longs:
        return frame
    nanos = _nanosecond_columns(files[0])
    if nanos is None:
        return frame
    for name in (n for n in longs if n in nanos):
        micros = F.floor(F.col(f"`{name}`") / F.lit(1000))
        frame = frame.withColumn(name, F.timestamp_micros(micros).cast("timestamp_ntz"))
    return frame


def _nanosecond_columns(file: str) -> set[str] | None:
    """The columns of a Parquet file stored as nanosecond timestamps (None: not readable
    from here, e.g. an object store without a local file system)."""
    from urllib.parse import urlsplit

    import pyarrow as pa
    import pyarrow.parquet as pq

    parts = urlsplit(file)
    if parts.scheme not in ("", "file"):
        try:
            from pyarrow import fs

            filesystem, path = fs.FileSystem.from_uri(file)
            schema = pq.read_schema(path, filesystem=filesystem)
        except Exception:
            return None
    else:
        try:
            schema = pq.read_schema(parts.path if parts.scheme else file)
        except Exception:
            return None
    return {
        field.name
        for field in schema
        if pa.types.is_timestamp(field.type) and field.type.unit == "ns"
    }


# --------------------------------------------------------------------------------------------
# The row rules, per Arrow batch
# --------------------------------------------------------------------------------------------


class _RowRules:
    """Runs the pandas row rules on each batch (``mapInPandas``): original columns, row
    position, parsed columns, reason, and the batch's column facts (on its first row)."""

    def __init__(
        self,
        source: _Source,
        kind: str,
        cols: dict[str, str],
        cutoff: pd.Timestamp | None,
        facts: frozenset[str],
    ):
        self.kind = kind
        self.names = source.names
        self.csv = source.csv
        self.delimiter = source.delimiter
        self.n_fields = source.n_fields
        self.cols = cols
        self.cutoff = cutoff
        self.facts = facts

    def __call__(self, batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        quiet_pyspark_warnings()
        for batch in batches:
            if len(batch):
                yield self.apply(batch)

    def apply(self, batch: pd.DataFrame) -> pd.DataFrame:
        width = len(self.names)
        raw = [f"c{i}" for i in range(width)]
        frame = batch[raw].copy()
        frame.columns = self.names
        if self.csv:  # what the pandas reader sees: every cell text, "" when empty
            frame = frame.fillna("").astype("str")
        if self.kind == "transactions":
            rows = data.transaction_rows(
                frame, self.cols, cutoff=self.cutoff, csv=self.csv, facts=self.facts
            )
        else:
            rows = data.customer_rows(frame, self.cols, csv=self.csv, facts=self.facts)
        out = batch[[*raw, _RID]].copy()
        for j, name in enumerate(rows.parsed.columns):
            out[f"p{j}"] = rows.parsed[name]
        reason = rows.reason.to_numpy(dtype=object, copy=True)
        if self.csv:
            too_many = self._too_many_fields(batch, width)
            reason[too_many] = _TOO_MANY
            line = batch[_LINE].astype(object)
            for i in (too_many & line.isna()).to_numpy().nonzero()[0]:  # no line kept: rebuild
                fields = batch.iloc[int(i)][[f"c{k}" for k in range(self.n_fields)]]
                line.iat[int(i)] = self.delimiter.join("" if pd.isna(v) else str(v) for v in fields)
            out[_LINE] = line.where(too_many, None)
        out[_REASON] = reason
        facts: list[str | None] = [None] * len(batch)
        facts[0] = "\n".join(sorted(rows.facts)) or None
        out[_FACTS] = pd.Series(facts, index=batch.index, dtype=object)
        return out

    def _too_many_fields(self, batch: pd.DataFrame, width: int) -> pd.Series:
        """Rows with a non-empty field beyond the named columns (the pandas reader's
        "more fields than the header")."""
        extra = batch[[f"c{i}" for i in range(width, self.n_fields)]]
        hit = (extra.notna() & (extra != "")).any(axis=1)
        malformed = batch[_LINE].notna()  # a field count other than the header line's
        for i in malformed.to_numpy().nonzero()[0]:
            text = str(batch[_LINE].iat[int(i)])
            hit.iat[int(i)] = any(next(csv.reader([text], delimiter=self.delimiter), [])[width:])
        return hit


class _Numbers:
    """Turns the CSV attribute columns that are numbers over the whole file into numbers."""

    def __init__(self, types: dict[str, str]):
        self.types = types

    def __call__(self, batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        quiet_pyspark_warnings()
        for batch in batches:
            yield data.numeric_attributes(batch, self.types)


# --------------------------------------------------------------------------------------------
# The job: stage, count, decide, quarantine, keep
# --------------------------------------------------------------------------------------------

# Spark types of the canonical columns, as the pandas loaders' dtypes.
_CANONICAL_TYPES = {
    "transactions": {
        "customer_id": "string",
        "timestamp": "timestamp_ntz",
        "amount": "double",
        "cost": "double",
        "channel": "string",
        "category": "string",
    },
    "customers": {
        "customer_id": "string",
        "signup_date": "timestamp_ntz",
        "churned": "long",
        "churn_date": "timestamp_ntz",
    },
}


def _spark_type(name: str) -> Any:
    from pyspark.sql import types as T

    return {
        "string": T.StringType(),
        "timestamp_ntz": T.TimestampNTZType(),
        "double": T.DoubleType(),
        "long": T.LongType(),
    }[name]


_DATE_COLUMNS = ("timestamp", "signup_date", "churn_date")


class _Job:
    def __init__(
        self,
        spark: Any,
        source: _Source,
        kind: str,
        cols: dict[str, str],
        *,
        cutoff: pd.Timestamp | None = None,
        keep_duplicates: bool = False,
    ):
        self.spark = spark
        self.source = source
        self.kind = kind
        self.cols = cols
        self.cutoff = cutoff
        self.keep_duplicates = keep_duplicates
        self.where = (
            data.transaction_reasons(cols)
            if kind == "transactions"
            else data.customer_reasons(cols)
        )
        self.positions = {name: i for i, name in enumerate(source.names)}
        # The parsed columns, named by the rules themselves (run on no rows).
        empty = pd.DataFrame({name: pd.Series([], dtype="str") for name in source.names})
        rules = data.transaction_rows if kind == "transactions" else data.customer_rows
        self.parsed = list(rules(empty, cols).parsed.columns)
        self._held: list[Any] = []  # persisted frames behind the staged rows
        self._repeat_rows: tuple[Any, int] | None = None

    # ---- staging -----------------------------------------------------------------------

    def _input(self) -> Any:
        """The source frame with the row position, date columns stored with a time zone
        turned into UTC wall-clock time (as the pandas loader does)."""
        from pyspark.sql import functions as F
        from pyspark.sql import types as T

        frame = self.source.frame
        tz = self.spark.conf.get("spark.sql.session.timeZone")
        for name in _DATE_COLUMNS:
            if name in self.cols:
                column = f"c{self.positions[self.cols[name]]}"
                if isinstance(self.source.types.get(column), T.TimestampType):
                    utc = F.convert_timezone(
                        F.lit(tz), F.lit("UTC"), F.col(column).cast("timestamp_ntz")
                    )
                    frame = frame.withColumn(column, utc)
        return frame.withColumn(_RID, F.monotonically_increasing_id())

    def _schema(self, frame: Any) -> Any:
        from pyspark.sql import types as T

        width = len(self.source.names)
        fields = [frame.schema[f"c{i}"] for i in range(width)]
        fields.append(T.StructField(_RID, T.LongType(), False))
        canonical = _CANONICAL_TYPES[self.kind]
        for j, name in enumerate(self.parsed):
            if name in canonical:
                dtype = _spark_type(canonical[name])
            else:
                dtype = frame.schema[f"c{self.positions[name]}"].dataType
            fields.append(T.StructField(f"p{j}", dtype, True))
        if self.source.csv:
            fields.append(T.StructField(_LINE, T.StringType(), True))
        fields.append(T.StructField(_REASON, T.StringType(), True))
        fields.append(T.StructField(_FACTS, T.StringType(), True))
        return T.StructType(fields)

    def _stage(self, facts: frozenset[str]) -> Any:
        """Parsed rows with their reason (row rules, then the repeat rule), persisted."""
        from pyspark import StorageLevel
        from pyspark.sql import functions as F

        frame = self._input()
        rules = _RowRules(self.source, self.kind, self.cols, self.cutoff, facts)
        staged = frame.mapInPandas(rules, self._schema(frame))
        reason = F.col(_REASON)
        staged = staged.persist(StorageLevel.MEMORY_AND_DISK)
        self._held.append(staged)
        repeat = self._repeats(staged)
        if self._repeat_rows is not None:
            rows, n = self._repeat_rows
            rows = F.broadcast(rows) if n <= 2_000_000 else rows
            staged = staged.join(rows, _RID, "left")
        if self.kind == "transactions":
            if self.keep_duplicates:
                staged = staged.withColumn(_REPEAT, repeat)
            else:
                staged = staged.withColumn(
                    _REASON, F.when(repeat, F.lit("duplicate")).otherwise(reason)
                ).withColumn(_REPEAT, F.lit(False))
        else:  # customers: a later row with an id seen before, whatever its other problems
            staged = staged.withColumn(
                _REASON,
                F.when(repeat & (reason != _TOO_MANY), F.lit("duplicate_customer_id")).otherwise(
                    reason
                ),
            ).withColumn(_REPEAT, F.lit(False))
        # The original values are kept only where a row is set aside (quarantine, messages).
        bad = F.col(_REASON) != ""
        staged = staged.select(
            *[
                F.when(bad, F.col(name)).alias(name) if name.startswith("c") else F.col(name)
                for name in staged.columns
            ]
        )
        return staged  # computed from the parsed rows held above

    def _release(self) -> None:
        """Unpersist what :meth:`_stage` holds (the parsed rows, the repeats)."""
        for frame in self._held:
            frame.unpersist()
        self._held = []
        self._repeat_rows = None

    def _repeats(self, staged: Any) -> Any:
        """The repeat rule as a column. Transactions: True for a usable row equal in every
        parsed column to an earlier usable row (file order). Customers: True for a row whose
        id an earlier row has, whatever its other problems.

        Rows are first grouped by their key (transactions: two hashes of their values, a few
        bytes per row through the shuffle; no sort); only the rows of groups with more than
        one row are then ordered and compared value by value. Without such groups no row is
        a repeat."""
        from pyspark.sql import Window
        from pyspark.sql import functions as F

        if self.kind == "transactions":
            eligible = F.col(_REASON) == ""
            values = [F.col(f"p{j}") for j in range(len(self.parsed))]
            key = [F.xxhash64(*values).alias("__h1"), F.hash(F.lit(1), *values).alias("__h2")]
            names = ["__h1", "__h2"]
        else:
            eligible = F.col("p0").isNotNull()
            values = [F.col("p0")]
            key = [F.col("p0").alias("__h1")]
            names = ["__h1"]
        keys = staged.filter(eligible).select(*key, _RID)
        groups = keys.groupBy(*names).count().filter(F.col("count") > 1).drop("count")
        candidates = keys.join(groups, names, "left_semi").select(_RID)
        rows = staged.join(candidates, _RID, "left_semi")
        first = Window.partitionBy(*values).orderBy(_RID)
        repeats = (
            rows.filter(eligible)
            .select(_RID, (F.row_number().over(first) > 1).alias("__later"))
            .filter("__later")
            .select(_RID, F.lit(True).alias(_REPEAT))
            .persist()
        )
        n = repeats.count()
        if n == 0:
            repeats.unpersist()
            return F.lit(False)
        self._held.append(repeats)
        self._repeat_rows = (repeats, n)
        return F.coalesce(F.col(f"`{_REPEAT}`"), F.lit(False)) & eligible

    def _count(self, staged: Any) -> tuple[dict[str, int], frozenset[str], int]:
        """One aggregation: rows per reason, the column facts of every batch, kept repeats."""
        from pyspark.sql import functions as F

        try:
            rows = (
                staged.groupBy(_REASON)
                .agg(
                    F.count(F.lit(1)).alias("n"),
                    F.collect_set(_FACTS).alias("facts"),
                    F.sum(F.col(_REPEAT).cast("long")).alias("repeats"),
                )
                .collect()
            )
        except Exception as exc:
            staged.unpersist()
            self._release()
            if type(exc).__name__ == "PythonException":
                raise
            shown = self.source.path
            raise DataError(f"{shown}: cannot read file: {_first_line(exc)}", path=shown) from exc
        counts = {row[_REASON]: int(row["n"]) for row in rows}
        facts = frozenset(f for row in rows for text in row["facts"] for f in text.split("\n"))
        repeats = sum(int(row["repeats"] or 0) for row in rows if row[_REASON] == "")
        return counts, facts, repeats

    def _examples(self, staged: Any, reason: str, column: str) -> list[Any]:
        """The first values (file order) of ``column`` on rows with ``reason``."""
        from pyspark.sql import functions as F

        rows = (
            staged.filter(F.col(_REASON) == reason)
            .orderBy(_RID)
            .select(column)
            .limit(_EXAMPLES)
            .collect()
        )
        return [row[0] for row in rows]

    def _source_column(self, reason: str) -> str | None:
        _, source, _ = self.where[reason]
        if reason == "duplicate_customer_id":
            return "p0"  # the id as read by the rules, as the pandas loader shows it
        return None if source is None else f"c{self.positions[source]}"

    # ---- the run -----------------------------------------------------------------------

    def run(self, bad_rows: str, quarantine_dir: str | Path | None) -> tuple[Any, LoadReport]:
        shown = self.source.path
        staged = self._stage(frozenset())
        counts, facts, repeats = self._count(staged)
        if data.facts_change_rows(facts):  # the whole file decides otherwise: parse again
            staged.unpersist()
            self._release()
            staged = self._stage(facts)
            counts, _, repeats = self._count(staged)
        try:
            if counts.get(_TOO_MANY):
                raise self._too_many_error(staged, counts[_TOO_MANY])
            n_read = sum(counts.values())
            if n_read == 0:
                raise DataError(f"{shown}: file has no data rows", path=shown)
            reasons = data.ordered_counts(counts)
            n_kept = counts.get("", 0)
            fatal = data.fatal_counts(reasons)
            if bad_rows == "error" and fatal:
                reason = next(iter(fatal))
                column = self._source_column(reason)
                values = None if column is None else self._examples(staged, reason, column)
                raise data.row_error(
                    shown,
                    fatal,
                    self.where,
                    values=values,
                    hint_values=None if values is None else pd.Series(values, dtype=object),
                    any_usable=n_kept > 0,
                )
            n_quarantined = n_read - n_kept
            quarantine_path = None
            if n_quarantined:
                quarantine_path = self._quarantine(staged, quarantine_dir, n_quarantined)
            if n_kept == 0:
                first = next(iter(reasons))
                column = self._source_column(first) if self.where[first][1] else None
                hint = None if column is None else self._examples(staged, first, column)
                raise data.no_usable_rows_error(
                    shown,
                    n_read,
                    reasons,
                    quarantine_path,
                    self.where,
                    None if hint is None else pd.Series(hint, dtype=object),
                )
            kept = self._kept(staged, facts)
        except BaseException:
            staged.unpersist()
            self._release()
            raise
        staged.unpersist()
        self._release()
        report = LoadReport(
            path=shown,
            n_read=n_read,
            n_kept=n_kept,
            n_quarantined=n_quarantined,
            quarantine_path=quarantine_path,
            reasons=reasons,
            duplicates_kept=repeats if self.keep_duplicates else 0,
        )
        return kept, report

    def _kept(self, staged: Any, facts: frozenset[str]) -> Any:
        """The usable rows under their output names, persisted and counted (so that the
        staged frame can be released)."""
        from pyspark import StorageLevel
        from pyspark.sql import functions as F
        from pyspark.sql import types as T

        kept = staged.filter(F.col(_REASON) == "").select(
            *[F.col(f"p{j}").alias(name) for j, name in enumerate(self.parsed)]
        )
        types = data.attribute_types(facts) if self.kind == "customers" else {}
        if types:
            spark_types = {"int64": T.LongType(), "float64": T.DoubleType()}
            schema = T.StructType(
                [
                    T.StructField(f.name, spark_types[types[f.name]], True)
                    if f.name in types
                    else f
                    for f in kept.schema.fields
                ]
            )
            kept = kept.mapInPandas(_Numbers(types), schema)
        kept = kept.persist(StorageLevel.MEMORY_AND_DISK)
        kept.count()
        return kept

    def _quarantine(self, staged: Any, quarantine_dir: str | Path | None, n: int) -> str:
        """Write the rows set aside (original columns and ``_reason``) as Parquet; the
        folder written."""
        from pyspark.sql import functions as F

        shown = self.source.path
        base = shown.rstrip("/")
        directory = (
            str(quarantine_dir)
            if quarantine_dir is not None
            else (base.rsplit("/", 1)[0] if "/" in base else ".") + "/quarantine"
        )
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", PurePosixPath(base).stem).strip("_-.") or "input"
        rows = staged.filter(F.col(_REASON) != "").select(
            *[F.col(f"c{i}").alias(name) for i, name in enumerate(self.source.names)],
            F.col(_REASON).alias("_reason"),
        )
        rows = rows.coalesce(max(1, min(64, n // 1_000_000 + 1)))
        target = f"{directory.rstrip('/')}/{stem}{QUARANTINE_SUFFIX}"
        try:
            k = 1
            while True:  # never replace an earlier quarantine folder: the next free name
                hpath, fs = _hadoop_fs(self.spark, target)
                if not fs.exists(hpath):
                    break
                k += 1
                target = f"{directory.rstrip('/')}/{stem}_quarantine_{k}.parquet"
            rows.write.mode("errorifexists").parquet(target)
        except Exception as exc:
            if type(exc).__name__ == "PythonException":
                raise
            raise DataError(
                f"{shown}: cannot write quarantine file {target}: {_first_line(exc)}", path=shown
            ) from exc
        return target

    def _too_many_error(self, staged: Any, count: int) -> DataError:
        shown = self.source.path
        width = len(self.source.names)
        delimiter = self.source.delimiter
        shown_delim = "tab" if delimiter == "\t" else f"'{delimiter}'"
        example = self._examples(staged, _TOO_MANY, _LINE)[:1]
        return DataError(
            f"{shown}: {count} row{' has' if count == 1 else 's have'} more fields than the "
            f"header ({width}), e.g. {data._show(example[0]) if example else '?'}; quote values "
            f"that contain {shown_delim}",
            path=shown,
            n_rows=count,
        )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
