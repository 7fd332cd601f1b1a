"""The benchmark's polars-lazy counterparts answer what their helpers answer.

Issue 11 compares each helper on DuckDB with a polars-lazy counterpart; the ratio only means
something if the two compute the same frame, so they are compared here on real oxios data and
on the benchmark's own synthetic data.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import FIXTURE_NAMES

BENCH = Path(__file__).resolve().parent.parent / "bench"
sys.path.insert(0, str(BENCH))

from polars_counterparts import check  # noqa: E402


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_counterparts_give_the_helpers_frames_on_the_fixtures(exported: dict[str, Path], name: str) -> None:
    assert check(str(exported[name])) == []


def test_counterparts_give_the_helpers_frames_on_the_synthetic_data(tmp_path: Path) -> None:
    out = tmp_path / "synth"
    subprocess.run([sys.executable, str(BENCH / "synth.py"), str(out), "3000"], check=True, capture_output=True)
    assert check(str(out)) == []


def test_a_wrong_counterpart_is_caught(exported: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    import polars as pl
    import polars_counterparts

    right = polars_counterparts.exchange_counts
    wrong = lambda lf: right(lf).with_columns(pl.col("exchange_count") + 1)  # noqa: E731
    monkeypatch.setitem(polars_counterparts.COUNTERPARTS, "exchange_counts", (wrong, "exchange_counts", {}))
    problems = check(str(exported["oxios-v1"]))
    assert len(problems) == 1 and problems[0].startswith("exchange_counts:")
