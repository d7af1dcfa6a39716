"""`recarena run experiment.yaml`: any scenario described in a YAML file.

``kind:`` names the scenario (default ``ab``; see registry.py); the other keys are that
scenario's options (underscores or dashes). Lists may be YAML lists or comma-separated
strings where the option is one string (``arms``)::

    kind: ab
    dataset: ml-100k
    arms: [pop, bpr, sasrec]
    model_params: [sasrec.epochs=10]
    users: 200
    user_kind: statistical
    out: runs/my-test
"""

from __future__ import annotations

from pathlib import Path

import yaml

from recarena.scenarios.config import OptionKind, config_fields
from recarena.scenarios.contract import ScenarioError


def load_experiment(path: str | Path) -> tuple[str, object]:
    """Parse and check `path`: ``(scenario name, its validated config)``; ScenarioError naming the file and key otherwise."""
    from recarena.scenarios.registry import SCENARIOS

    path = Path(path)
    if not path.is_file():
        raise ScenarioError(f"{path}: no such file")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ScenarioError(f"{path}:{where} not valid YAML ({getattr(error, 'problem', error)})") from None
    if not isinstance(data, dict):
        raise ScenarioError(f"{path}: expected a mapping of options, got {type(data).__name__}")
    kind = data.pop("kind", "ab")
    if kind not in SCENARIOS:
        raise ScenarioError(f"{path}: kind: unknown experiment kind {kind!r}; known: {', '.join(SCENARIOS)}")
    config_type = SCENARIOS[kind].config_type
    kinds = {field.name: option for field, option in config_fields(config_type)}
    values = {}
    for key, value in data.items():
        name = str(key).replace("-", "_")
        if name not in kinds:
            raise ScenarioError(f"{path}: {key}: unknown option; valid: {', '.join(sorted(kinds))}")
        values[name] = _coerce(path, name, value, kinds[name])
    config = config_type(**values)
    try:
        config.validate()
    except ScenarioError as error:
        raise ScenarioError(f"{path}: {error}") from None
    return kind, config


def _coerce(path: Path, name: str, value: object, kind: OptionKind) -> object:
    """`value` from the YAML file as the field's type (`kind`, from the table the command line reads too)."""
    if kind.shape == "list":
        items = value if isinstance(value, list) else [value]
        try:
            return [kind.convert(v) for v in items]
        except (TypeError, ValueError):
            raise ScenarioError(f"{path}: {name}: expected a list of {kind.convert.__name__}, got {value!r}") from None
    if kind.shape == "value" and kind.convert is str and isinstance(value, list):
        return ",".join(str(v) for v in value)
    if value is None:
        return None
    if kind.shape == "choice":
        if value not in kind.choices:
            raise ScenarioError(f"{path}: {name}: {value!r} is not one of {', '.join(map(str, kind.choices))}")
        return value
    if kind.shape == "flag":
        if not isinstance(value, bool):
            raise ScenarioError(f"{path}: {name}: expected true or false, got {value!r}")
        return value
    try:
        return kind.convert(value if kind.convert is not Path else str(value))
    except (TypeError, ValueError):
        raise ScenarioError(f"{path}: {name}: expected {getattr(kind.convert, '__name__', kind.convert)}, got {value!r}") from None
