"""Clustering order: the order a dataset's files keep their rows in (see ``Clustering``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

from sessionkit.exceptions import DatasetError
from sessionkit.tables._schemas import CLUSTERING

if TYPE_CHECKING:
    import numpy as np


def cluster_order(tables: Mapping[str, pa.Table]) -> dict[str, tuple[pa.Array, np.ndarray]]:
    """For each table, the positions of its rows in clustering order and, in that order, the
    time (integer nanoseconds) of the owner of each row.

    Owners are ordered by their time, then their key; a child table's rows by their owner's
    place in that order, then by the columns of ``Clustering.within``. Each owner key must occur
    once in its table, and every child row must have its owner among ``tables``.

    Example:
        >>> import sessionkit as sk
        >>> s = sk.Session.with_id("user-1", "s-1")
        >>> s.add_user_message("hi")
        >>> order = cluster_order(dict(sk.to_tables([s]).items()))
        >>> order["messages"][0].to_pylist()
        [0]
    """

    result: dict[str, tuple[pa.Array, np.ndarray]] = {}
    owners: dict[str, tuple[pa.Array, pa.Array]] = {}  # owner table -> its keys and times, in order
    for name in sorted(tables, key=lambda n: not CLUSTERING[n].is_owner(n)):
        table, how = tables[name], CLUSTERING[name]
        if how.is_owner(name):
            times = _ns(table[how.time])
            keys = _flat(table[how.key])
            order = pc.sort_indices(
                pa.table({"t": times, "k": keys}), sort_keys=[("t", "ascending"), ("k", "ascending")]
            )
            keys, times = keys.take(order), times.take(order)
            if pc.count_distinct(keys).as_py() != len(keys):
                msg = f"the {name} table holds a {how.key} more than once. Hint: a dataset holds each {how.key} once; re-export it"
                raise DatasetError(msg)
            owners[name] = (keys, times)
            result[name] = (order, times.to_numpy(zero_copy_only=False))
            continue
        if how.owner not in owners:
            msg = f"the {name} table needs its owner table {how.owner!r} to be put in order"
            raise DatasetError(msg)
        keys, times = owners[how.owner]
        rank = pc.index_in(_flat(table[how.key]), value_set=keys)
        if rank.null_count:
            missing = _flat(table[how.key]).filter(pc.is_null(rank))[0].as_py()
            msg = f"the {name} table has rows of {how.key} {missing!r}, which the {how.owner} table lacks. Hint: the dataset is damaged; re-export it"
            raise DatasetError(msg)
        columns = {"rank": rank, **{column: table[column] for column in how.within}}
        order = pc.sort_indices(pa.table(columns), sort_keys=[(column, "ascending") for column in columns])
        result[name] = (order, times.take(rank.take(order)).to_numpy(zero_copy_only=False))
    return result


def _flat(column: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(column, pa.ChunkedArray):
        return column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    return column


def _ns(column: pa.Array | pa.ChunkedArray) -> pa.Array:
    """A timestamp column as int64 nanoseconds."""
    return _flat(column).cast(pa.int64())
