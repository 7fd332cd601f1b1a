"""The lint configuration in pyproject.toml stays green."""

from __future__ import annotations

import subprocess
import sys

from conftest import ROOT


def test_ruff_is_clean() -> None:
    paths = [p for p in ("sessionkit", "tests", "bench") if (ROOT / p).is_dir()]
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", *paths],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_is_clean() -> None:
    # the configuration is pyproject.toml's [tool.mypy]; its cache (.mypy_cache, git-ignored)
    # makes a run after the first take seconds
    result = subprocess.run(
        [sys.executable, "-m", "mypy"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
