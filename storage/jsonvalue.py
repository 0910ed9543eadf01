"""JSON objects in TEXT columns (a job's `request` and `outcome`): checked, encoded, decoded.

Storage does not interpret these objects; it only makes sure that what it writes is JSON
that SQLite's `json_valid` accepts and that comes back equal, and says which part is wrong
when it is not (a ValueError naming the key), before anything reaches the database.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import cast

from storage.types import JSON

# Deeper nesting than this is a mistake, not a request (SQLite's own limit is 1000).
MAX_DEPTH = 32


def encode_object(value: object, what: str) -> str:
    """`value`, a mapping with text keys, as compact JSON text (non-ASCII kept as is).

    Raises ValueError naming the part of `what` that JSON cannot hold: a key that is not
    text, a float that is not finite, text with a lone surrogate (not encodable as UTF-8),
    another type, or nesting deeper than MAX_DEPTH.
    """
    if not isinstance(value, Mapping):
        raise ValueError(f"{what} must be a JSON object (a mapping), not {type(value).__name__}")
    plain = _plain(cast(Mapping[object, object], value), what, 0)
    return json.dumps(plain, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def decode_object(text: str) -> dict[str, JSON]:
    """JSON text that the schema's CHECK accepted as an object → a fresh dict."""
    value = json.loads(text)
    if not isinstance(value, dict):  # pragma: no cover - the column's CHECK prevents it
        raise ValueError(f"expected a JSON object, found {type(value).__name__}")
    return cast(dict[str, JSON], value)


def _plain(value: object, path: str, depth: int) -> JSON:
    """A copy of `value` made of dict, list, str, int, float, bool and None only."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{path} must be a finite number, not {value!r}")
        return float(value)
    if isinstance(value, str):
        check_text(value, path)
        return str(value)
    if depth >= MAX_DEPTH:
        raise ValueError(f"{path} nests deeper than {MAX_DEPTH} levels")
    if isinstance(value, Mapping):
        out: dict[str, JSON] = {}
        for key, item in cast(Mapping[object, object], value).items():
            if not isinstance(key, str):
                raise ValueError(f"{path} has a key that is not text: {key!r}")
            check_text(key, f"the key {key!r} of {path}")
            out[key] = _plain(item, f"{path}[{key!r}]", depth + 1)
        return out
    if isinstance(value, list | tuple):
        items = cast(list[object] | tuple[object, ...], value)
        return [_plain(item, f"{path}[{i}]", depth + 1) for i, item in enumerate(items)]
    raise ValueError(f"{path} is a {type(value).__name__}, which JSON cannot hold")


def check_text(text: str, what: str) -> None:
    """ValueError (not sqlite's UnicodeEncodeError) for text that UTF-8 cannot encode."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(
            f"{what} is not valid text: it has a lone surrogate "
            f"({text[exc.start]!r}) at position {exc.start}"
        ) from None
