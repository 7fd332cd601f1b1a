"""The helpers' DuckDB SQL in Spark's dialect: SQLGlot's transpiler plus a few rewrites of our own.

SQLGlot (``read="duckdb", write="spark"``) already turns ``IS NOT DISTINCT FROM``, ``FILTER
(cond)``, ``QUALIFY``, ``//``, ``::`` casts, 1-based list indexes and DuckDB's default
``NULLS LAST`` into Spark's spelling. What it cannot know is rewritten here, on the tree:

- timestamps: Spark's are microseconds, sessionkit's nanoseconds. On Spark every timestamp
  column ``c`` of the views is read as ``c_ns``, its exact nanoseconds since 1970 as BIGINT, so
  ``epoch_ns(c)`` becomes ``c_ns`` and ``min(c)`` is ``min(c_ns)``; the caller turns such a
  result column back into a ``Datetime("ns", "UTC")`` by the schema DuckDB gives the same SQL.
- ``quantile_cont(x, [p, ...])`` becomes ``percentile(x, array(p, ...))``, Spark's exact
  percentile with the same linear interpolation between ranks (written another way, so the
  last bit may differ; the helpers pick ranks themselves instead).
- ``date_trunc('month', d)`` of a DATE becomes ``trunc(d, 'MM')``: a date function, so the
  session time zone plays no part.
- the five views are renamed to the names a ``SparkSource`` registered them under, so a source
  keeps reading its own dataset whatever is registered later under the plain names.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlglot import exp

__all__ = ["NS_SUFFIX", "to_spark_sql"]

#: The suffix of the BIGINT column that holds a timestamp column's exact nanoseconds on Spark.
NS_SUFFIX = "_ns"


def to_spark_sql(sql: str, *, timestamps: Set[str], views: Mapping[str, str]) -> str:
    """One DuckDB query (a single SELECT) as Spark SQL.

    Args:
        sql: the query, in DuckDB's dialect, over the views ``sessions``, ``messages``,
            ``responses``, ``metadata`` and ``exchanges``.
        timestamps: the names of the views' timestamp columns; each is read as ``<name>_ns``.
        views: the Spark name of each view (view name → registered name).

    Example:
        >>> to_spark_sql("SELECT epoch_ns(created_at) AS t FROM sessions", timestamps={"created_at"}, views={"sessions": "v"})
        'SELECT created_at_ns AS t FROM `v` AS sessions'
    """
    import sqlglot
    from sqlglot import exp

    tree = sqlglot.parse_one(sql, read="duckdb")
    ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}

    def rewrite(node: exp.Expression) -> exp.Expression:
        # a node returned in place of another is not visited again: rewrite its parts here
        if isinstance(node, exp.Column) and node.name in timestamps:
            return exp.column(node.name + NS_SUFFIX, table=node.table or None)
        if isinstance(node, exp.Anonymous) and node.name.lower() == "epoch_ns":
            (value,) = node.expressions
            return value.transform(rewrite)
        if isinstance(node, exp.PercentileCont):
            fractions = node.expression
            if isinstance(fractions, exp.Array):
                fractions = exp.Array(expressions=[_double(f) for f in fractions.expressions])
            else:
                fractions = _double(fractions)
            return exp.Anonymous(this="percentile", expressions=[node.this.transform(rewrite), fractions])
        if isinstance(node, exp.TimestampTrunc) and node.text("unit").upper() == "MONTH":
            return exp.Anonymous(this="trunc", expressions=[node.this.transform(rewrite), exp.Literal.string("MM")])
        if isinstance(node, exp.Table) and not node.args.get("db") and node.name in views and node.name not in ctes:
            return exp.Table(
                this=exp.to_identifier(views[node.name], quoted=True),
                alias=exp.TableAlias(this=exp.to_identifier(node.alias or node.name)),
            )
        return node

    return tree.transform(rewrite).sql(dialect="spark")


def _double(value: exp.Expression) -> exp.Expression:
    """A fraction as a DOUBLE: Spark reads ``0.9`` as a DECIMAL."""
    from sqlglot import exp

    return exp.cast(value, "double")
