"""sessionkit.spark: every helper, with every option value, on a local Spark equals DuckDB.

One local Spark (``local[2]``, no UI, bound to 127.0.0.1) per test process, in the time zone
UTC+14 so that nothing can lean on the session's zone. The dataset is the three shared
fixture folders and the crafted sessions (phases in every case, 1969, the last nanosecond of
a day, negative latencies, responses without messages) exported together, Hive partitions
and all.

Equal means ``assert_frame_equal`` with exact values, names and dtypes: every float to the
last bit, turn_latency's statistics included.
"""

from __future__ import annotations

import ast
import inspect
import re
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import FIXTURE_NAMES, FIXTURES, fixture_files
from crafted import phase_case_session, quality_sessions
from polars.testing import assert_frame_equal

import sessionkit.spark
from sessionkit import analytics
from sessionkit.exceptions import DatasetError, SourceNotFoundError
from sessionkit.model import encode_session
from sessionkit.query import connect
from sessionkit.spark import SparkSource, register
from sessionkit.spark._source import VIEWS
from sessionkit.spark._transpile import to_spark_sql
from sessionkit.storage import check_dataset, table_files, table_glob, write_parquet
from sessionkit.tables import TABLE_NAMES, to_tables

pytestmark = pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas:FutureWarning")

#: The helpers that return frames (get_session returns a Session, and run_sql runs the SQL it is
#: given: each is tested on its own).
HELPERS = [name for name in analytics.__all__ if name.islower() and name not in ("get_session", "run_sql")]

_LOG4J = """\
rootLogger.level = error
rootLogger.appenderRef.stderr.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{HH:mm:ss} %p %c{1}: %m%n
"""


def option_values(helper: Callable[..., object]) -> list[dict[str, object]]:
    """Every value of every keyword option of a helper, read from its own refusal message."""
    combos: list[dict[str, object]] = [{}]
    for parameter in inspect.signature(helper).parameters.values():
        if parameter.kind is not inspect.Parameter.KEYWORD_ONLY:
            continue
        if type(parameter.default) is int and parameter.name == "top":  # a count, not a choice: its default
            continue
        with pytest.raises(ValueError, match="must be one of") as refused:
            helper(to_tables([]), **{parameter.name: "<no such value>"})
        choices = re.search(r"must be one of (.*), not '<no such value>'", str(refused.value)).group(1)
        values = ast.literal_eval(f"[{choices}]")
        combos = [{**combo, parameter.name: value} for combo in combos for value in values]
    return combos


def assert_same(got: pl.DataFrame, want: pl.DataFrame, helper: str, options: dict[str, object]) -> None:
    """Spark's frame equals DuckDB's: rows, order, names, dtypes and values, exactly."""
    try:
        assert got.schema == want.schema
        assert_frame_equal(got, want, check_exact=True)
    except AssertionError as err:
        msg = f"{helper}(**{options}) on Spark differs from DuckDB: {err}"
        raise AssertionError(msg) from None


@pytest.fixture(scope="module")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    from pyspark.sql import SparkSession

    log4j = tmp_path_factory.mktemp("spark") / "log4j2.properties"
    log4j.write_text(_LOG4J)
    session = (
        SparkSession.builder.master("local[2]")
        .appName("sessionkit-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.sql.session.timeZone", "Pacific/Kiritimati")  # UTC+14: every local day differs
        .config("spark.sql.codegen.wholeStage", "false")  # tiny data: compiling each query costs more
        .config("spark.driver.extraJavaOptions", f"-Dlog4j2.configurationFile={log4j}")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The three fixture folders (with oxios-v2's agent records) and the quality sessions, exported into one dataset."""
    from sessionkit.archive import export

    source = tmp_path_factory.mktemp("spark-source")
    (source / "sessions").mkdir()
    for path in fixture_files():
        shutil.copyfile(path, source / "sessions" / path.name)
    for session in [*quality_sessions(), phase_case_session()]:
        (source / "sessions" / f"{session.id}.json").write_bytes(encode_session(session))
    shutil.copytree(FIXTURES / "oxios-v2" / "agents", source / "agents")  # the agent runs, linked to v2's exchanges
    out = tmp_path_factory.mktemp("spark-dataset") / "out"
    export(source, out, jobs=1)
    return out


@pytest.fixture(scope="module")
def source(spark: object, dataset: Path) -> SparkSource:
    """The dataset on Spark; its tables are read from Parquet once, then kept in memory for speed."""
    registered = register(spark, dataset)
    for name in TABLE_NAMES:
        spark.catalog.cacheTable(f"`{registered.views[name]}`")
    return registered


@pytest.mark.parametrize("name", HELPERS)
def test_every_helper_and_option_equals_duckdb(source: SparkSource, dataset: Path, name: str) -> None:
    helper = getattr(analytics, name)
    for options in option_values(helper):
        assert_same(helper(source, **options), helper(dataset, **options), name, options)


def test_the_fixtures_are_all_in_the_dataset(dataset: Path) -> None:
    sessions = connect(dataset).sql("SELECT count(*) FROM sessions").fetchall()[0][0]
    assert sessions == len(fixture_files()) + len(quality_sessions()) + 1 and len(FIXTURE_NAMES) == 3


def test_get_session_equals_duckdb(source: SparkSource, dataset: Path) -> None:
    ids = [fixture_files(name)[0].stem for name in FIXTURE_NAMES] + ["q"]
    for session_id in ids:
        assert (
            analytics.get_session(source, session_id).to_json() == analytics.get_session(dataset, session_id).to_json()
        )
    with pytest.raises(KeyError, match="no session with id 'nope'"):
        analytics.get_session(source, "nope")


def test_views_hold_duckdbs_rows_and_exact_nanoseconds(spark: object, source: SparkSource, dataset: Path) -> None:
    register(spark, dataset)  # the plain views, whatever other tests registered since
    con = connect(dataset)
    for view in VIEWS:
        want = con.sql(f"SELECT * FROM {view}")
        stamps = [c for c, t in zip(want.columns, want.types, strict=True) if "TIMESTAMP" in str(t)]
        got = spark.table(view)
        assert got.columns == [*want.columns, *[f"{c}_ns" for c in stamps]], view
        assert got.count() == source.table(view).count() == want.count("*").fetchall()[0][0], view
        assert {c: got.schema[c].dataType.simpleString() for c in stamps} == dict.fromkeys(stamps, "timestamp"), view
    # the TIMESTAMP is the nanoseconds floored to the microsecond, 1969 included
    got = spark.sql("SELECT session_id, seq, timestamp_ns, unix_micros(timestamp) AS us FROM messages").toArrow()
    want = con.sql("SELECT session_id, seq, epoch_ns(timestamp) AS timestamp_ns FROM messages").pl()
    got = pl.from_arrow(got).sort("session_id", "seq")
    assert got["timestamp_ns"].to_list() == want.sort("session_id", "seq")["timestamp_ns"].to_list()
    assert (got["us"] == got["timestamp_ns"] // 1000).all()
    assert spark.sql("SELECT timestamp_ns FROM messages WHERE session_id = 'q' AND seq = 0").first()[0] % 10 == 9
    # and the exchanges' latencies are DuckDB's to the bit, computed from the nanoseconds
    got = pl.from_arrow(spark.sql("SELECT session_id, seq, latency_s FROM exchanges").toArrow())
    want = con.sql("SELECT session_id, seq, latency_s FROM exchanges").pl()
    assert_frame_equal(got.sort("session_id", "seq"), want.sort("session_id", "seq"), check_exact=True)


def test_todays_oxios_views_hold_duckdbs_values(spark: object, source: SparkSource, dataset: Path) -> None:
    """tool_calls and reasoning (segments, a list of structs, included) and the tool columns of
    exchanges: the same values on Spark as in DuckDB, exactly."""
    con = connect(dataset)
    queries = {
        "exchanges": "SELECT session_id, seq, n_tool_calls, tool_errors, tool_ms, project_id FROM exchanges",
        "tool_calls": "SELECT * EXCLUDE (timestamp), epoch_ns(timestamp) AS timestamp_ns FROM tool_calls",
        "reasoning": "SELECT * EXCLUDE (timestamp), epoch_ns(timestamp) AS timestamp_ns FROM reasoning",
        "sessions": "SELECT session_id, project_id, parent_session_id FROM sessions",
    }
    for view, query in queries.items():
        want = con.sql(query).pl()
        got = pl.from_arrow(source.table(view).select(*want.columns).toArrow())
        key = ["session_id", *[c for c in ("seq", "step", "ord") if c in want.columns]]
        assert want.height > 0, view
        assert_frame_equal(got.sort(key), want.sort(key), check_exact=True)
    totals = con.sql("SELECT sum(n_tool_calls), sum(tool_errors), sum(tool_ms) FROM exchanges").fetchall()[0]
    assert source.sql_frame("SELECT sum(n_tool_calls), sum(tool_errors), sum(tool_ms) FROM exchanges").row(0) == totals
    assert totals[0] > 0 and totals[1] > 0


@pytest.mark.parametrize("partition_by", ["none", "day"])
def test_sparks_own_reader_takes_the_documented_layout(
    spark: object, tmp_path_factory: pytest.TempPathFactory, partition_by: str
) -> None:
    """Without sessionkit, as the README says: nanoseconds as BIGINT, and a partition column
    from the paths when the dataset is partitioned."""
    from sessionkit.archive import export

    dataset = tmp_path_factory.mktemp("spark-layout") / "out"
    export(FIXTURES / "oxios-v1", dataset, jobs=1, partition_by=partition_by)
    partition = [] if partition_by == "none" else ["created_date"]
    want = (
        duckdb.connect()
        .sql(
            f"SELECT session_id, seq, epoch_ns(timestamp) AS timestamp{''.join(', ' + c for c in partition)} "
            f"FROM read_parquet('{table_glob(dataset, 'messages')}', hive_partitioning = {bool(partition)}) ORDER BY 1, 2"
        )
        .fetchall()
    )
    key = "spark.sql.legacy.parquet.nanosAsLong"  # Spark refuses Parquet's nanosecond timestamps without it
    spark.conf.set(key, "true")
    try:
        frames = [spark.read.parquet(str(dataset / "messages"))]  # the table's folder: any layout
        if partition:  # Hadoop's ** is one level of folders, not any number
            glob = table_glob(dataset, "messages")
            frames.append(spark.read.option("basePath", str(dataset / "messages")).parquet(glob))
        for frame in frames:
            rows = frame.select("session_id", "seq", "timestamp", *partition).orderBy("session_id", "seq")
            assert [tuple(row) for row in rows.collect()] == want
    finally:
        spark.conf.unset(key)


def test_empty_datasets(spark: object, tmp_path: Path) -> None:
    files = tmp_path / "no-files"  # every table a folder without files: Spark knows the views are
    for name in TABLE_NAMES:  # empty and may optimise the queries away
        (files / name).mkdir(parents=True)
    rows = tmp_path / "no-rows"  # every table a Parquet file without rows: the files are read
    write_parquet(to_tables([]), rows)
    for data, helpers in ((files, HELPERS), (rows, ["stats", "phase_funnel", "turn_latency"])):
        empty = register(spark, data)
        for view in VIEWS:
            assert spark.table(view).count() == 0
        for name in helpers:  # default options: aggregates over nothing, one row or none
            helper = getattr(analytics, name)
            assert_same(helper(empty), helper(data), name, {})


def test_a_source_keeps_its_dataset_when_another_is_registered(
    spark: object, source: SparkSource, dataset: Path, tmp_path: Path
) -> None:
    write_parquet(to_tables(quality_sessions()[:1]), tmp_path / "one")
    register(spark, tmp_path / "one")
    assert spark.table("sessions").count() == 1  # the plain views show the latest dataset
    assert_frame_equal(analytics.stats(source), analytics.stats(dataset))


def test_module_functions_register_and_run(spark: object, dataset: Path) -> None:
    for name in [*HELPERS, "get_session"]:
        wrapper = getattr(sessionkit.spark, name)
        parameters = list(inspect.signature(wrapper).parameters)
        assert parameters[:2] == ["spark", "dataset"], name
        assert parameters[2:] == list(inspect.signature(getattr(analytics, name)).parameters)[1:], name
        assert wrapper.__doc__.startswith(f"``sessionkit.{name}`` on Spark"), name
    assert_same(
        sessionkit.spark.seed_usage(spark, dataset, by="month"),
        analytics.seed_usage(dataset, by="month"),
        "seed_usage",
        {},
    )
    assert sessionkit.spark.get_session(spark, dataset, "q").user_id == "bob"


def test_run_sql_on_spark_gives_what_duckdb_gives(source: SparkSource, dataset: Path) -> None:
    sql = "SELECT seed_id, count(*) AS responses, sum(length(content)) AS characters FROM responses GROUP BY seed_id ORDER BY seed_id NULLS FIRST"
    on_spark = analytics.run_sql(source, sql)
    assert_same(on_spark, analytics.run_sql(dataset, sql), "run_sql", {})
    assert on_spark.schema["characters"] == pl.Int64  # a sum of integers is an integer, on either engine


def test_register_refuses_what_is_not_a_local_dataset(spark: object, tmp_path: Path) -> None:
    with pytest.raises(SourceNotFoundError, match="no such dataset folder"):
        register(spark, tmp_path / "nope")
    with pytest.raises(DatasetError, match="not a sessionkit dataset"):
        register(spark, tmp_path)
    with pytest.raises(DatasetError, match=r"local dataset folders only.*hadoop-aws.*s3a://"):
        register(spark, "s3://bucket/prefix")
    # microseconds where the schema says nanoseconds: Spark would take them for nanoseconds
    folder = write_parquet(to_tables(quality_sessions()), tmp_path / "micros")
    for path in table_files(check_dataset(folder), "messages"):
        table = pq.read_table(path)
        column = table.schema.get_field_index("timestamp")
        pq.write_table(
            table.set_column(column, "timestamp", table["timestamp"].cast(pa.timestamp("us", "UTC"), safe=False)), path
        )
    with pytest.raises(DatasetError, match=r"column timestamp holds timestamp\[us, tz=UTC\], not timestamp\[ns\]"):
        register(spark, folder)


def test_to_spark_sql_rewrites_what_sqlglot_cannot_know() -> None:
    spark_sql = to_spark_sql(
        "SELECT epoch_ns(m.timestamp) // 2 AS t, quantile_cont(x, [0.5, 0.9]) AS q,"
        " date_trunc('month', d)::DATE AS month, min(created_at) AS first FROM messages AS m, t",
        timestamps={"timestamp", "created_at"},
        views={"messages": "private_messages"},
    )
    assert spark_sql == (
        "SELECT m.timestamp_ns DIV 2 AS t, PERCENTILE(x, ARRAY(CAST(0.5 AS DOUBLE), CAST(0.9 AS DOUBLE))) AS q,"
        " CAST(TRUNC(d, 'MM') AS DATE) AS month, MIN(created_at_ns) AS first FROM `private_messages` AS m, t"
    )


def test_register_without_pyspark_says_what_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "pyspark", None)
    with pytest.raises(ModuleNotFoundError, match=r"needs pyspark.*pip install 'sessionkit\[spark\]'"):
        register(object(), tmp_path)


def test_register_refuses_pyspark_3(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import pyspark

    monkeypatch.setattr(pyspark, "__version__", "3.5.3")
    with pytest.raises(ImportError, match=r"needs pyspark 4.0 or newer, not 3.5.3"):
        register(object(), tmp_path)
