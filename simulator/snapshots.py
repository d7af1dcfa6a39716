"""Users' snapshots as data: JSON with tags for what JSON lacks, so that opening a run directory never runs its contents.

A snapshot (`SimulatedUser.get_state`) is stored in the event store and read back on resume. Pickle
would run whatever a planted ``events.sqlite`` holds; this codec reads only data:

* JSON's own values; dicts whose keys are not all plain strings as ``{"__dict__": [[key, value], ...]}``;
* ``{"__tuple__": [...]}``, ``{"__set__": [...]}``;
* numpy arrays and scalars as ``{"__ndarray__": {"dtype", "shape", "data" (base64)}}`` (no object dtype);
* the dataclasses of `SNAPSHOT_TYPES` (the session bookkeeping of `recarena.agents.contract`) as
  ``{"__dataclass__": NAME, "fields": {...}}``; a user with a dataclass of its own registers it with
  `register_snapshot_type`.

Anything else is a `TypeError` when the snapshot is taken, never a silent pickle. A stored blob
that is not this JSON (an older run's pickle, a planted file) is an `UnsafeSnapshotError`, unread.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from typing import Any

import numpy as np

from recarena.agents.contract import SessionContext, SessionState

SNAPSHOT_TYPES: dict[str, type] = {cls.__name__: cls for cls in (SessionContext, SessionState)}
_TAGS = ("__dict__", "__tuple__", "__set__", "__ndarray__", "__dataclass__")


class UnsafeSnapshotError(ValueError):
    """A stored snapshot is not the JSON this codec writes (one line; it was not read)."""


def register_snapshot_type(cls: type) -> type:
    """Allow the dataclass `cls` in snapshots (usable as a decorator)."""
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls.__name__} is not a dataclass")
    SNAPSHOT_TYPES[cls.__name__] = cls
    return cls


def _encode(value: Any) -> Any:
    if isinstance(value, (np.ndarray, np.generic)):  # first: np.float64 is a float, and must come back as itself
        array = np.asarray(value)
        if array.dtype.hasobject:
            raise TypeError("a snapshot cannot hold a numpy array of Python objects")
        data = base64.b64encode(np.ascontiguousarray(array).tobytes()).decode("ascii")
        encoded = {"dtype": array.dtype.str, "shape": list(array.shape), "data": data, "scalar": isinstance(value, np.generic)}
        return {"__ndarray__": encoded}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, list):
        return [_encode(v) for v in value]
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v) for v in value]}
    if isinstance(value, (set, frozenset)):
        return {"__set__": [_encode(v) for v in sorted(value, key=repr)]}
    if isinstance(value, dict):
        if all(isinstance(k, str) and k not in _TAGS for k in value):
            return {k: _encode(v) for k, v in value.items()}
        return {"__dict__": [[_encode(k), _encode(v)] for k, v in value.items()]}
    if dataclasses.is_dataclass(value) and SNAPSHOT_TYPES.get(type(value).__name__) is type(value):
        fields = {f.name: _encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return {"__dataclass__": type(value).__name__, "fields": fields}
    raise TypeError(f"a user snapshot cannot hold {type(value).__name__} (allowed: JSON values, tuples, sets, numpy arrays "
                    f"and the dataclasses of recarena.simulator.snapshots.SNAPSHOT_TYPES)")  # fmt: skip


def _hashable(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _decode(value: Any) -> Any:
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1 and "__tuple__" in value:
        return tuple(_decode(v) for v in value["__tuple__"])
    if len(value) == 1 and "__set__" in value:
        return {_hashable(_decode(v)) for v in value["__set__"]}
    if len(value) == 1 and "__dict__" in value:
        return {_hashable(_decode(k)): _decode(v) for k, v in value["__dict__"]}
    if len(value) == 1 and "__ndarray__" in value:
        spec = value["__ndarray__"]
        dtype = np.dtype(spec["dtype"])
        if dtype.hasobject:
            raise UnsafeSnapshotError("a stored snapshot asks for a numpy array of Python objects; refused")
        array = np.frombuffer(base64.b64decode(spec["data"]), dtype=dtype).reshape(spec["shape"]).copy()
        return array[()] if spec.get("scalar") else array
    if set(value) == {"__dataclass__", "fields"}:
        cls = SNAPSHOT_TYPES.get(value["__dataclass__"])
        if cls is None:
            raise UnsafeSnapshotError(f"a stored snapshot names the unknown type {value['__dataclass__']!r}; refused")
        return cls(**{k: _decode(v) for k, v in value["fields"].items()})
    return {k: _decode(v) for k, v in value.items()}


def encode_snapshot(state: Any) -> bytes:
    """`state` as UTF-8 JSON (TypeError naming what it cannot hold)."""
    return json.dumps(_encode(state), separators=(",", ":")).encode("utf-8")


def decode_snapshot(blob: bytes) -> Any:
    """The snapshot `encode_snapshot` wrote; UnsafeSnapshotError for anything else (nothing in it runs)."""
    try:
        document = json.loads(bytes(blob).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        kind = "a pickle (an older recarena's, or planted)" if bytes(blob[:1]) == b"\x80" else "not JSON"
        raise UnsafeSnapshotError(f"a stored user snapshot is {kind}; it is not read: start a new run directory") from None
    return _decode(document)
