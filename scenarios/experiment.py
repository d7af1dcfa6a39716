"""`recarena run experiment.yaml`: an A/B test described in a YAML file.

The keys are the options of `recarena ab` (underscores or dashes), plus an optional
``kind: ab``. Lists may be YAML lists or comma-separated strings (``arms``)::

    kind: ab
    dataset: ml-100k
    arms: [pop, bpr, sasrec]
    model_params: [sasrec.epochs=10]
    users: 200
    user_kind: statistical
    out: runs/my-test
"""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path

import yaml

from .ab_test import ABConfig, ABConfigError

KINDS = ("ab",)


def load_experiment(path: str | Path) -> ABConfig:
    """Parse and check `path`; ABConfigError (one line naming the file and key) on any problem."""
    path = Path(path)
    if not path.is_file():
        raise ABConfigError(f"{path}: no such file")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ABConfigError(f"{path}:{where} not valid YAML ({getattr(error, 'problem', error)})") from None
    if not isinstance(data, dict):
        raise ABConfigError(f"{path}: expected a mapping of options, got {type(data).__name__}")
    kind = data.pop("kind", "ab")
    if kind not in KINDS:
        raise ABConfigError(f"{path}: kind: unknown experiment kind {kind!r}; known: {', '.join(KINDS)}")
    hints = typing.get_type_hints(ABConfig)
    fields = {f.name for f in dataclasses.fields(ABConfig)}
    values = {}
    for key, value in data.items():
        name = str(key).replace("-", "_")
        if name not in fields:
            raise ABConfigError(f"{path}: {key}: unknown option; valid: {', '.join(sorted(fields))}")
        values[name] = _coerce(path, name, value, hints[name])
    config = ABConfig(**values)
    try:
        config.validate()
    except ABConfigError as error:
        raise ABConfigError(f"{path}: {error}") from None
    return config


def _coerce(path: Path, name: str, value: object, kind: object) -> object:
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if name == "arms" and isinstance(value, list):
        return ",".join(str(v) for v in value)
    if origin is list:
        return [str(v) for v in (value if isinstance(value, list) else [value])]
    if value is None:
        return None
    if origin is typing.Literal:
        if value not in args:
            raise ABConfigError(f"{path}: {name}: {value!r} is not one of {', '.join(map(str, args))}")
        return value
    target = next((a for a in args if a is not type(None)), kind) if origin is typing.Union or args else kind
    if target is Path:
        return Path(str(value))
    if target is bool:
        if not isinstance(value, bool):
            raise ABConfigError(f"{path}: {name}: expected true or false, got {value!r}")
        return value
    try:
        return target(value)  # type: ignore[operator]
    except (TypeError, ValueError):
        raise ABConfigError(f"{path}: {name}: expected {getattr(target, '__name__', target)}, got {value!r}") from None
