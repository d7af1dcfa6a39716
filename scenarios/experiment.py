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

Nothing is guessed: an empty file, a key given twice, a fraction or a boolean where a whole number
goes (``users: 10.7``, ``users: true``) are refused with the file, the line and the key.
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
    data, lines = _read_mapping(path)
    kind = data.pop("kind", "ab")
    if kind not in SCENARIOS:
        raise ScenarioError(f"{path}:{lines.get('kind', 1)}: kind: unknown experiment kind {kind!r}; known: {', '.join(SCENARIOS)}")
    config_type = SCENARIOS[kind].config_type
    kinds = {field.name: option for field, option in config_fields(config_type)}
    values, line_of = {}, {}
    for key, value in data.items():
        name = str(key).replace("-", "_")
        where = f"{path}:{lines[key]}"
        if name not in kinds:
            raise ScenarioError(f"{where}: {key}: unknown option; valid: {', '.join(sorted(kinds))}")
        if name in values:  # `slate_size` and `slate-size` are one option
            raise ScenarioError(f"{where}: {key}: the option {name} is given twice (also on line {line_of[name]})")
        values[name], line_of[name] = _coerce(where, name, value, kinds[name]), lines[key]
    config = config_type(**values)
    try:
        config.validate()
    except ScenarioError as error:
        field = str(error).partition(":")[0]
        raise ScenarioError(f"{path}:{line_of[field]}: {error}" if field in line_of else f"{path}: {error}") from None
    return kind, config


class _DuplicateKey(yaml.MarkedYAMLError):
    """A mapping names one key twice."""


class _KeyLineLoader(yaml.SafeLoader):
    """A safe loader that refuses a key given twice (YAML would silently keep the last) and records each top-level key's line."""

    root: yaml.Node | None = None
    key_lines: dict = {}

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        lines: dict = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                if key in lines:
                    raise _DuplicateKey(problem=f"{key}: given twice (first on line {lines[key]})", problem_mark=key_node.start_mark)
            except TypeError:  # an unhashable key: the base loader says so
                continue
            lines[key] = line
        if node is self.root:
            self.key_lines = lines
        return super().construct_mapping(node, deep)


def _read_mapping(path: Path) -> tuple[dict, dict]:
    """The file's top-level mapping and the line of each key; ScenarioError when it is empty, not a mapping or repeats a key."""
    loader = _KeyLineLoader(path.read_text())
    try:
        loader.root = loader.get_single_node()
        data = loader.construct_document(loader.root) if loader.root is not None else None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        if isinstance(error, _DuplicateKey):
            raise ScenarioError(f"{where}: {error.problem}") from None
        raise ScenarioError(f"{where}: not valid YAML ({getattr(error, 'problem', None) or error})") from None
    finally:
        loader.dispose()
    if loader.root is None:
        raise ScenarioError(f"{path}: the file is empty; give at least 'kind:' and the options to change")
    if not isinstance(data, dict):
        raise ScenarioError(f"{path}:{loader.root.start_mark.line + 1}: expected a mapping of options (key: value), got {type(data).__name__}")
    return data, loader.key_lines


def _coerce(where: str, name: str, value: object, kind: OptionKind) -> object:
    """`value` from the YAML file as the field's type (`kind`, from the table the command line reads too)."""
    if kind.shape == "list":
        items = value if isinstance(value, list) else [value]
        return [_scalar(where, name, v, kind.convert, "a list of ") for v in items]
    if kind.shape == "value" and kind.convert is str and isinstance(value, list):
        return ",".join(str(v) for v in value)
    if value is None:
        if kind.optional:
            return None
        raise ScenarioError(f"{where}: {name}: needs a value (an empty value is null, which this option does not take)")
    if kind.shape == "choice":
        if value not in kind.choices:
            raise ScenarioError(f"{where}: {name}: {value!r} is not one of {', '.join(map(str, kind.choices))}")
        return value
    if kind.shape == "flag":
        if not isinstance(value, bool):
            raise ScenarioError(f"{where}: {name}: expected true or false, got {value!r}")
        return value
    return _scalar(where, name, value, kind.convert)


def _scalar(where: str, name: str, value: object, convert: type, what: str = "") -> object:
    """One YAML scalar as `convert`; a number is never made from a boolean, a whole number never from a fraction."""
    expected = getattr(convert, "__name__", str(convert)) + (" (a whole number)" if convert is int else "")
    refuse = ScenarioError(f"{where}: {name}: expected {what}{expected}, got {value!r}")
    if convert in (int, float) and isinstance(value, bool):
        raise refuse
    if convert is int and isinstance(value, float):
        raise refuse  # int(10.7) would run 10 users and say nothing
    if isinstance(value, (list, dict)):
        raise refuse
    try:
        return convert(value if convert is not Path else str(value))
    except (TypeError, ValueError):
        raise refuse from None
