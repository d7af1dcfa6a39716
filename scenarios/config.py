"""Typed configuration: a dataclass per command, turned into command-line flags.

Every field carries its help text in ``field(metadata={"help": ...})``; a field
without help is a bug that `add_arguments` refuses, so ``--help`` documents
every option. Lists take several values (``--k 10 20``), booleans are
``--flag/--no-flag``, and ``Literal`` fields accept only their choices.
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


def option(default: Any, help: str, **kwargs: Any) -> Any:
    """A dataclass field with help text (and a default)."""
    if isinstance(default, (list, dict, set)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata={"help": help, **kwargs})
    return dataclasses.field(default=default, metadata={"help": help, **kwargs})


def add_arguments(parser: argparse.ArgumentParser, config_type: type) -> None:
    """Add one flag per field of the dataclass `config_type`."""
    hints = typing.get_type_hints(config_type)
    for field in dataclasses.fields(config_type):
        if "help" not in field.metadata:
            raise TypeError(f"{config_type.__name__}.{field.name} has no help text")
        flag = "--" + field.name.replace("_", "-")
        kind = hints[field.name]
        default = field.default if field.default is not dataclasses.MISSING else field.default_factory()
        help_text = f"{field.metadata['help']} (default: {default})"
        origin, args = typing.get_origin(kind), typing.get_args(kind)
        if kind is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=default, help=help_text)
        elif origin is typing.Literal:
            parser.add_argument(flag, choices=list(args), default=default, help=help_text)
        elif origin is list:
            parser.add_argument(flag, nargs="+", type=args[0], default=default, help=help_text)
        elif origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
            inner = next(a for a in args if a is not type(None))
            parser.add_argument(flag, type=inner, default=default, help=help_text)
        else:
            parser.add_argument(flag, type=kind if kind is not Path else Path, default=default, help=help_text)


def from_namespace(config_type: type[T], namespace: argparse.Namespace) -> T:
    """Build `config_type` from parsed flags."""
    values = {f.name: getattr(namespace, f.name) for f in dataclasses.fields(config_type)}
    return config_type(**values)
