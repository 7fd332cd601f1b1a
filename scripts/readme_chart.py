"""Draw the README's chart by running the README's Python quickstart on the bundled sample.

Run from the project root (``make notebooks`` does): ``.venv/bin/python scripts/readme_chart.py``.
The quickstart runs in a temporary folder holding a link to ``data/``; the chart it saves,
``build/seed-usage.png``, is copied to ``docs/images/seed-usage.png``. tests/test_docs.py runs
the same code and fails when the committed chart no longer matches.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

import matplotlib

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "docs" / "images" / "seed-usage.png"


def readme_python() -> str:
    """The README's Python quickstart: its one ```python block."""
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(encoding="utf-8"), re.S)
    if len(blocks) != 1:
        sys.exit(f"README.md: expected one python block, found {len(blocks)}")
    return blocks[0]


def run_quickstart(workdir: Path) -> Path:
    """Run the quickstart in ``workdir`` (with ``data/`` linked in); returns the chart it saved."""
    matplotlib.use("Agg")
    (workdir / "data").symlink_to(ROOT / "data")
    (workdir / "build").mkdir()
    here = Path.cwd()
    os.chdir(workdir)
    try:
        exec(compile(readme_python(), "README.md", "exec"), {"__name__": "readme"})
    finally:
        os.chdir(here)
    return workdir / "build" / "seed-usage.png"


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="sessionkit-readme-") as tmp:
        chart = run_quickstart(Path(tmp))
        CHART.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(chart, CHART)
    print(f"wrote {CHART.relative_to(ROOT)} ({CHART.stat().st_size / 1e3:.0f} kB)")


if __name__ == "__main__":
    main()
