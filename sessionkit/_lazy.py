"""Attributes of a package imported on first use (PEP 562), so importing it stays light."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any


def attribute(namespace: dict[str, Any], modules: Mapping[str, str], name: str) -> Any:
    """``name`` from the module ``modules`` says defines it, kept in ``namespace`` (the package's
    globals) for the next use; an AttributeError naming the package for any other name."""
    module = modules.get(name)
    if module is None:
        msg = f"module {namespace['__name__']!r} has no attribute {name!r}"
        raise AttributeError(msg)
    value = getattr(importlib.import_module(module), name)
    namespace[name] = value
    return value
