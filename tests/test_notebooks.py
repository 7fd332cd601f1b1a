"""Every notebook is stored with its outputs, and running it on the bundled sample (no network)
gives those outputs again: a notebook left behind by a change to sessionkit, the sample or its
own cells fails here until ``make notebooks`` stores it afresh."""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import pytest
from conftest import ROOT

sys.path.insert(0, str(ROOT / "scripts"))
import build_notebooks

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
HINT = "Hint: run `make notebooks` and commit the notebooks it stores"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_a_fresh_run_gives_the_stored_outputs(path: Path) -> None:
    stored = build_notebooks.normalise(nbformat.read(path, as_version=4))
    started = time.perf_counter()
    fresh = build_notebooks.execute(path)
    assert time.perf_counter() - started < 60
    errors = [o for c in fresh.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, errors[0]
    found = build_notebooks.differences(stored, fresh)
    assert not found, "\n".join([f"{path.name} is not what running it gives:", *found, HINT])


def test_differences_are_found() -> None:
    stored = build_notebooks.normalise(nbformat.read(ROOT / "notebooks" / "02-seeds-and-personas.ipynb", as_version=4))
    assert build_notebooks.differences(stored, stored) == []
    changed = nbformat.from_dict(json.loads(json.dumps(stored)))
    cell = next(c for c in changed.cells if c.get("outputs") and "text/plain" in c.outputs[-1].get("data", {}))
    cell.outputs[-1]["data"]["text/plain"] = cell.outputs[-1]["data"]["text/plain"].replace("1", "2")
    chart = next(o for c in changed.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {}))
    other = next(o for c in reversed(stored.cells) for o in c.get("outputs", []) if "image/png" in o.get("data", {}))
    chart["data"]["image/png"] = other["data"]["image/png"]
    found = build_notebooks.differences(stored, changed)
    assert len(found) == 2 and "the output differs" in found[0] and "the chart differs" in found[1]
    assert build_notebooks._scrub(f"in {tempfile.gettempdir()}/sessionkit-x-ab12_c3d/dataset at 0x7f3a2b1c0d10") == (
        "in <tmp>/dataset at 0x<address>"
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebooks_are_stored_executed_and_small_enough_to_review(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    notebook = nbformat.reads(text, as_version=4)
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert all(c.execution_count is not None for c in code), "stored without running it"
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1))
    outputs = [o for c in code for o in c.outputs]
    assert outputs and not [o for o in outputs if o.output_type == "error"]
    assert len(text.encode()) < 320_000
    for output in outputs:
        assert len(json.dumps(output)) < 80_000  # a chart or a transcript, no data dump
        plain = output.get("text", "") or output.get("data", {}).get("text/plain", "")
        assert len(plain.splitlines()) <= 40
    assert tempfile.gettempdir() + "/" not in text  # volatile paths were replaced by a mark


def test_charts_are_stored_as_png() -> None:
    charts = {
        p.name: sum(
            "image/png" in o.get("data", {}) for c in nbformat.read(p, as_version=4).cells for o in c.get("outputs", [])
        )
        for p in NOTEBOOKS
    }
    assert charts["01-quickstart.ipynb"] >= 1 and charts["02-seeds-and-personas.ipynb"] >= 3
    assert charts["03-quality-and-latency.ipynb"] >= 4


def test_the_gallery_is_what_the_build_script_writes() -> None:
    for name, cells in build_notebooks.NOTEBOOK_CELLS.items():
        stored = nbformat.read(ROOT / "notebooks" / name, as_version=4)
        assert [c.source for c in stored.cells] == [c.source for c in cells], f"{name}: {HINT}"


def test_there_are_notebooks() -> None:
    assert any(p.name == "01-quickstart.ipynb" for p in NOTEBOOKS)


def test_make_lab_installs_jupyterlab_on_demand_only() -> None:
    """`make lab` installs JupyterLab (the "lab" extra) into .venv the first time and opens the
    notebooks; neither the runtime nor the test set needs it, so no test installs it."""
    import subprocess
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extras = project["optional-dependencies"]
    assert any(r.startswith("jupyterlab") for r in extras["lab"])
    assert not any(r.startswith("jupyterlab") for r in [*project["dependencies"], *extras["test"]])
    plan = subprocess.run(["make", "-n", "-B", "lab"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert "pip install --quiet -e '.[lab]'" in plan and "jupyter lab notebooks/" in plan
    tested = subprocess.run(["make", "-n", "-B", "test"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert "[lab]" not in tested and "jupyter lab" not in tested
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "`make lab`" in readme
