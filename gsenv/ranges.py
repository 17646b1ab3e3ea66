"""Randomisation settings as users give them: None (off), the one preset by name, an instance, or a dict of
(low, high) ranges by key, checked where they enter (the visual kind, gsenv.scene.randomization, and the
physics kind, gsenv.physics.randomization, both take them this way)."""
from __future__ import annotations

import difflib
import math
from collections.abc import Mapping, Sequence
from dataclasses import fields
from typing import Any

import numpy as np

__all__ = ["DEFAULT_PRESET", "checked_range", "is_number", "settings_from_any"]

DEFAULT_PRESET = "default"
"""The name of the one preset each kind of randomisation has."""


def settings_from_any(cls: type, value: Any, what: str) -> Any:
    """None (off), DEFAULT_PRESET (``cls.default()``), a ``cls`` instance, or a dict of its fields -> a checked
    ``cls`` (or None). ValueError, naming ``what`` (the keyword, e.g. "domain_randomization"), for True / False
    (which ranges "on" would mean is not for gsenv to guess), another string, another type, or an unknown key
    (with the nearest known one)."""
    if value is None or isinstance(value, cls):
        return value
    if isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{what}={value!r} is not accepted: pass {what}={DEFAULT_PRESET!r} for the documented "
                         f"default ranges, a dict of ranges, or None (off)")
    if isinstance(value, str):
        if value != DEFAULT_PRESET:
            raise ValueError(f"unknown {what} preset {value!r}: the one preset is {DEFAULT_PRESET!r} (or pass a "
                             f"dict of ranges)")
        return cls.default()
    if not isinstance(value, Mapping):
        raise ValueError(f"{what} must be None, a dict, a gsenv {cls.__name__} or {DEFAULT_PRESET!r}, got "
                         f"{type(value).__name__}")
    known = [f.name for f in fields(cls)]
    for key in value:
        if key not in known:
            near = difflib.get_close_matches(str(key), known, n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else f"; known keys: {', '.join(known)}"
            raise ValueError(f"unknown {what} key {key!r}{hint}")
    return cls(**dict(value))


def is_number(v: Any) -> bool:
    """A real number (Python or numpy), not a bool."""
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))


def checked_range(what: str, name: str, value: Any, bounds: tuple, integer: bool = False) -> tuple:
    """The range ``name`` of ``what`` (e.g. "domain_randomization") as (low, high): floats, or ints where
    ``integer`` (whole numbers only). bounds: (lowest, highest, whether lowest itself is allowed). ValueError
    naming what is wrong: not a pair of finite numbers, low above high, outside the bounds."""
    lo_b, hi_b, lo_ok = bounds
    if (isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) != 2
            or not all(is_number(v) and math.isfinite(v) for v in value)):
        raise ValueError(f"{what} {name!r} must be a (low, high) pair of {'integers' if integer else 'numbers'}, "
                         f"got {value!r}")
    if integer and not all(float(v).is_integer() for v in value):
        raise ValueError(f"{what} {name!r} counts control steps: give whole numbers, got {value!r}")
    lo, hi = (int(value[0]), int(value[1])) if integer else (float(value[0]), float(value[1]))
    if lo > hi:
        raise ValueError(f"{what} {name!r}: low {lo} is above high {hi}; give (low, high)")
    if lo < lo_b or (lo == lo_b and not lo_ok) or hi > hi_b:
        interval = f"{'[' if lo_ok else '('}{lo_b}, {hi_b}]"
        raise ValueError(f"{what} {name!r} must lie in {interval}, got ({lo}, {hi})")
    return lo, hi
