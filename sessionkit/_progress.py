"""Progress bars that work in a terminal and in a notebook, and stay quiet everywhere else."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

#: What a ``progress=`` option takes: None (a bar when someone is watching), True, False, or
#: a callable ``progress(done, total)``.
Progress = bool | Callable[[int, int], None] | None


def running_in_notebook() -> bool:
    """True inside a Jupyter kernel (where stderr is not a terminal but a bar still shows)."""
    shell = sys.modules.get("IPython")
    if shell is None:
        return False
    try:
        ip = shell.get_ipython()
    except AttributeError:
        return False
    return ip is not None and type(ip).__name__ == "ZMQInteractiveShell"


class Bar:
    """``bar(done, total)`` updates a tqdm bar created on first use; ``close()`` ends it."""

    def __init__(self, label: str, unit: str) -> None:
        self.label, self.unit = label, unit
        self.bar: Any = None

    def __call__(self, done: int, total: int | None = None) -> None:
        if self.bar is None:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc=self.label, unit=self.unit, leave=False, file=sys.stderr)
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def resolve(
    progress: Progress, label: str, *, unit: str = "file", total: int | None = None
) -> tuple[Callable[[int, int], None] | None, Callable[[], None]]:
    """The callback to call as work advances, and the one to call when it ends.

    ``None`` shows a bar in a notebook or on a terminal (and only for long work when
    ``total`` is known); ``True`` always; ``False`` never; a callable is used as it is.
    """
    if callable(progress):
        return progress, lambda: None
    if progress is None:
        watching = running_in_notebook() or sys.stderr.isatty()
        progress = watching and (total is None or total >= 1000)
    if not progress:
        return None, lambda: None
    bar = Bar(label, unit)
    return bar, bar.close
