"""Checks of the keyword options that the helpers and the charts share."""

from __future__ import annotations

from collections.abc import Sequence


def check_option(function: str, name: str, value: object, allowed: Sequence[object]) -> None:
    """Raise a ValueError naming the function, the option and the values it takes."""
    if any(value == a and type(value) is type(a) for a in allowed):
        return
    shown = ", ".join("None" if a is None else repr(a) for a in allowed)
    msg = f"{function}: {name} must be one of {shown}, not {value!r}"
    raise ValueError(msg)
