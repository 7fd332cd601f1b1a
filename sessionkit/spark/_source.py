"""A dataset folder as temp views on a SparkSession, and the source the helpers run on there."""

from __future__ import annotations

import functools
import hashlib
import os
import re
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from sessionkit._store import open_store
from sessionkit.analytics import run_sql
from sessionkit.exceptions import DatasetError, MissingDependencyError, SparkResultError
from sessionkit.query import EXCHANGES_SQL, connect
from sessionkit.spark._transpile import NS_SUFFIX, to_spark_sql
from sessionkit.tables import AGENT_TABLE_NAMES, SCHEMAS, TABLE_NAMES, to_tables

if TYPE_CHECKING:
    import duckdb
    import polars as pl
    import pyarrow as pa
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import DataType, StructType

__all__ = ["VIEWS", "SparkSource", "register"]

#: The temp views ``register`` creates, in order.
VIEWS = (*TABLE_NAMES, *AGENT_TABLE_NAMES, "exchanges")

_GLOB = re.compile(r"[\\{}\[\]*?]")
_INSTALL_HINT = "pip install 'sessionkit[spark]' (pyspark and sqlglot; Spark needs Java 17 or newer)"
_REMOTE_HINT = (
    "give Spark the hadoop-aws jars matching its Hadoop (e.g. spark.jars.packages="
    "org.apache.hadoop:hadoop-aws:<version>) and read the tables as s3a://bucket/prefix/<table>/, "
    "or copy the dataset to a folder every executor can read and register that"
)


def require() -> None:
    """Raise ``MissingDependencyError`` (an ``ImportError``) with the ``pip install`` as its hint
    when pyspark (4 or newer) or sqlglot is missing."""
    for module in ("pyspark", "sqlglot"):
        try:
            __import__(module)
        except ModuleNotFoundError as err:
            msg = f"sessionkit.spark needs {module}, which is not installed"
            raise MissingDependencyError(msg, name=module, hint=_INSTALL_HINT) from err
    import pyspark

    if int(pyspark.__version__.split(".")[0]) < 4:  # DataFrame.toArrow is new in Spark 4.0
        msg = f"sessionkit.spark needs pyspark 4.0 or newer, not {pyspark.__version__}"
        raise MissingDependencyError(msg, name="pyspark", hint="pip install 'pyspark>=4'")


class SparkSource:
    """A sessionkit dataset registered on a ``SparkSession``: pass it to any helper as ``data``.

    Made by ``register``. The helpers run their DuckDB SQL on it transpiled to Spark SQL and
    return polars frames with DuckDB's rows, column names, dtypes and values, to the bit. It
    reads views of its own (``sessionkit_<digest>_<view>``), so it keeps reading its dataset
    after another ``register`` replaces the plain ``sessions`` ... ``exchanges`` views.

    Attributes:
        spark: the session the views are on.
        dataset: the folder the tables were read from (for a versioned dataset, its version).
        views: the Spark name of each of the five views.

    Example:
        >>> import sessionkit as sk
        >>> from sessionkit.spark import register
        >>> source = register(spark, "build/sample-dataset")  # doctest: +SKIP
        >>> sk.seed_usage(source, by="month")  # doctest: +SKIP
    """

    def __init__(self, spark: SparkSession, dataset: Path, views: Mapping[str, str]) -> None:
        self.spark = spark
        self.dataset = dataset
        self.views = dict(views)

    def __repr__(self) -> str:
        return f"SparkSource({str(self.dataset)!r})"

    def table(self, name: str) -> DataFrame:
        """One of the five views as a Spark ``DataFrame``.

        Timestamp columns are Spark TIMESTAMPs (microseconds, the nanoseconds cut off towards
        the past); each also has a BIGINT ``<column>_ns`` of the exact nanoseconds since 1970.
        """
        if name not in self.views:
            msg = f"no view {name!r}; the views are {', '.join(VIEWS)}"
            raise KeyError(msg)
        return self.spark.table(f"`{self.views[name]}`")

    def spark_sql(self, sql: str) -> str:
        """``sql`` (DuckDB's dialect, over the five views) as the Spark SQL ``sql_frame`` runs."""
        return to_spark_sql(sql, timestamps=_timestamp_columns(), views=self.views)

    def sql_frame(self, sql: str) -> pl.DataFrame:
        """Run one query written for DuckDB on Spark; its result as DuckDB would give it.

        The result is cast to the schema DuckDB gives the same query (learnt by running it over
        empty tables): the same column names and dtypes, nanosecond timestamps included.

        Example:
            >>> source.sql_frame("SELECT count(*) AS n FROM exchanges")  # doctest: +SKIP
        """
        import polars as pl

        schema = _schema_of_record(sql)
        result = pl.from_arrow(self.spark.sql(self.spark_sql(sql)).toArrow())
        assert isinstance(result, pl.DataFrame)
        return conform(result, schema, sql)


def conform(result: pl.DataFrame, schema: pl.Schema, sql: str) -> pl.DataFrame:
    """Spark's result with DuckDB's column names and dtypes; nanosecond BIGINTs become timestamps.

    Only lossless changes are made (a type Spark has no other spelling for); anything else is
    an error, so a rewrite that went wrong cannot pass silently.
    """
    import polars as pl

    if result.width != len(schema):
        msg = f"Spark returned {result.width} columns where DuckDB gives {len(schema)} for:\n{sql}"
        raise SparkResultError(msg)
    columns = []
    for (name, want), got in zip(schema.items(), result.columns, strict=True):
        have = result.schema[got]
        column = pl.col(got)
        if have == want:
            pass
        elif isinstance(want, pl.Datetime) and have == pl.Int64 and want.time_unit == "ns":
            column = column.cast(pl.Datetime("ns")).dt.replace_time_zone(want.time_zone)
        elif (have.is_integer() and want.is_integer()) or have == pl.Null:
            column = column.cast(want, strict=True)
        else:
            msg = f"Spark returned {have} for column {name!r} where DuckDB gives {want}, for:\n{sql}"
            raise SparkResultError(msg)
        columns.append(column.alias(name))
    return result.select(columns)


@functools.lru_cache(maxsize=256)
def _schema_of_record(sql: str) -> pl.Schema:
    """The columns and dtypes DuckDB gives ``sql``: run over empty tables, so it costs little."""
    with _EMPTY_LOCK:
        return run_sql(_empty_connection(), sql).schema


_EMPTY_LOCK = threading.Lock()  # a DuckDB connection is not for two threads at once


@functools.cache
def _empty_connection() -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the five views over empty tables, kept for the process."""
    return connect(to_tables([]), read_only=True)


@functools.cache
def _timestamp_columns() -> frozenset[str]:
    """The names of the views' timestamp columns, as DuckDB types them."""
    import polars as pl

    names: set[str] = set()
    for view in VIEWS:
        schema = _schema_of_record(f"SELECT * FROM {view}")
        names.update(name for name, kind in schema.items() if isinstance(kind, pl.Datetime))
    return frozenset(names)


def register(spark: SparkSession, dataset: str | os.PathLike[str]) -> SparkSource:
    """Temp views ``sessions``, ``messages``, ``responses``, ``metadata``, ``agents``,
    ``agent_tool_calls`` and ``exchanges`` on ``spark``.

    The views read the dataset's Parquet files in place, with its declared schemas (nothing is
    inferred), and replace any temp views of the same names. Spark's timestamps hold
    microseconds and sessionkit's nanoseconds, so each timestamp column (``created_at``,
    ``timestamp``, ...) is a Spark TIMESTAMP cut to the microsecond (towards the past) and comes
    with a BIGINT ``<column>_ns`` of its exact nanoseconds since 1970, which the helpers use. No
    Spark setting is changed: the nanoseconds are read as the BIGINTs Parquet stores, by
    schema, without ``spark.sql.legacy.parquet.nanosAsLong``.

    A local folder must be readable at the same path by every executor (true of ``local[*]``;
    on a cluster, a shared file system).

    Args:
        spark: the session to register the views on.
        dataset: a dataset folder written by ``sessionkit export`` or ``write_parquet``.

    Returns:
        A ``SparkSource`` to pass to the helpers: ``sk.seed_usage(source)``.

    Raises:
        SourceNotFoundError: there is no such folder.
        DatasetError: the folder holds no sessionkit dataset, or it is on object storage.
        ImportError: pyspark 4 or newer, or sqlglot, is not installed.

    Example:
        >>> import sessionkit as sk
        >>> from sessionkit.spark import register
        >>> source = register(spark, "build/sample-dataset")  # doctest: +SKIP
        >>> spark.sql("SELECT count(*) FROM exchanges").show()  # doctest: +SKIP
        >>> sk.turn_latency(source, by="day")  # doctest: +SKIP
    """
    require()
    text = os.fspath(dataset)
    if "://" in text:
        msg = f"{text}: sessionkit.spark registers local dataset folders only"
        raise DatasetError(msg, hint=_REMOTE_HINT)
    snapshot = open_store(dataset).open()  # one version: every view reads its files
    folder = snapshot.folder
    assert folder is not None  # a local dataset
    files = {name: snapshot.paths(name) for name in (*TABLE_NAMES, *AGENT_TABLE_NAMES)}
    digest = hashlib.sha256(repr((str(folder), sorted(files.items()))).encode()).hexdigest()[:16]
    views = {name: f"sessionkit_{digest}_{name}" for name in VIEWS}
    source = SparkSource(spark, folder, views)
    for name in (*TABLE_NAMES, *AGENT_TABLE_NAMES):
        raw = _read(spark, files[name], SCHEMAS[name])
        _create(_exposed(raw), views[name], name)
    raw = spark.sql(source.spark_sql(_exchanges_select()))
    _create(_exposed(raw), views["exchanges"], "exchanges")
    return source


@functools.cache
def _exchanges_select() -> str:
    """The SELECT of ``query.EXCHANGES_SQL`` (a CREATE VIEW), in DuckDB's dialect."""
    import sqlglot

    return sqlglot.parse_one(EXCHANGES_SQL, read="duckdb").expression.sql(dialect="duckdb")


def _read(spark: SparkSession, files: list[str], schema: pa.Schema) -> DataFrame:
    """A table's files as a DataFrame with the declared schema, timestamps as BIGINT nanoseconds."""
    raw = _spark_schema(schema)
    if not files:
        return spark.createDataFrame([], raw)
    _check_nanoseconds(files[0], schema)
    # the given files only: no partition discovery from created_date=... folders; Hadoop takes
    # the path as it is (not percent-encoded) and expands glob characters unless escaped
    uris = ["file://" + _GLOB.sub(r"\\\g<0>", str(Path(f).absolute())) for f in files]
    # Spark lists more than 32 paths with a job of one task per path, seconds for a few hundred
    # small local files: list them on the driver, restoring the session's setting after
    key = "spark.sql.sources.parallelPartitionDiscovery.threshold"
    before = spark.conf.get(key, None)
    spark.conf.set(key, str(max(len(uris) + 1, int(before or 32))))
    try:
        return spark.read.schema(raw).option("recursiveFileLookup", "true").parquet(*uris)
    finally:
        if before is None:
            spark.conf.unset(key)
        else:
            spark.conf.set(key, before)


def _check_nanoseconds(path: str, schema: pa.Schema) -> None:
    """Refuse a table whose (first) file stores timestamps in another unit than nanoseconds.

    Spark reads any INT64 column as the BIGINT it stores, so microseconds would pass for
    nanoseconds, a thousand times too small, without a word.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    stored = pq.read_schema(path)
    for field in schema:
        if not pa.types.is_timestamp(field.type) or field.name not in stored.names:
            continue
        kind = stored.field(field.name).type
        if not (pa.types.is_timestamp(kind) and kind.unit == "ns"):
            msg = f"{path}: column {field.name} holds {kind}, not timestamp[ns]; sessionkit.spark reads timestamps as their nanoseconds. Hint: export the dataset again with this version of sessionkit"
            raise DatasetError(msg)


def _spark_schema(schema: pa.Schema) -> StructType:
    """The Spark schema that reads a table's Parquet files; timestamps as their INT64 nanoseconds."""
    import pyarrow as pa
    from pyspark.sql import types as T

    kinds = {
        pa.string(): T.StringType(),
        pa.int32(): T.IntegerType(),
        pa.int64(): T.LongType(),
        pa.bool_(): T.BooleanType(),
        pa.float64(): T.DoubleType(),
    }

    def kind(arrow: pa.DataType) -> DataType:
        if pa.types.is_timestamp(arrow) and arrow.unit == "ns":
            return T.LongType()
        if pa.types.is_list(arrow):
            return T.ArrayType(kind(arrow.value_type), containsNull=True)
        if pa.types.is_struct(arrow):
            return T.StructType([T.StructField(f.name, kind(f.type), nullable=True) for f in arrow])
        return kinds[arrow]

    return T.StructType([T.StructField(field.name, kind(field.type), nullable=True) for field in schema])


def _exposed(raw: DataFrame) -> DataFrame:
    """The view's columns: each nanosecond column ``c`` becomes a TIMESTAMP ``c`` and a BIGINT ``c_ns``."""
    stamps = [name for name in raw.columns if name in _timestamp_columns()]
    columns = [f"{_micros(name)} AS `{name}`" if name in stamps else f"`{name}`" for name in raw.columns]
    return raw.selectExpr(*columns, *[f"`{name}` AS `{name}{NS_SUFFIX}`" for name in stamps])


def _micros(column: str) -> str:
    """Spark SQL: a BIGINT of nanoseconds as a TIMESTAMP, floored to the microsecond."""
    return f"timestamp_micros((`{column}` - pmod(`{column}`, 1000)) DIV 1000)"


def _create(frame: DataFrame, private: str, public: str) -> None:
    frame.createOrReplaceTempView(private)
    frame.createOrReplaceTempView(public)
