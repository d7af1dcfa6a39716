"""Typed configuration: a dataclass per command, turned into command-line flags.

Every field carries its help text in ``field(metadata={"help": ...})``; a field
without help is a bug that `add_arguments` refuses, so ``--help`` documents
every option. Lists take several values (``--k 10 20``), booleans are
``--flag/--no-flag``, and ``Literal`` fields accept only their choices.
`option_kind` is the one table of field types: the command line (`add_arguments`) and YAML
files (`recarena.scenarios.experiment`) both read a field through it.

The options every scenario shares are declared once, in `CommonOptions` (dataset, seed, out,
progress) and its extensions for a report (`ReportOptions`: html), an LLM (`LLMOptions`: llm,
llm_cache, max_llm_failure_rate) and simulated users (`SimulatedUserOptions`, `UserKindOptions`). A scenario's config
inherits the one that fits and may override a default by declaring the field again (``out``)::

    @dataclass
    class CoinConfig(ReportOptions):
        flips: int = option(10, "coin flips")
        out: Path = option(Path("runs/coin"), "output folder: results.json, report.html")
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

from recarena.agents.kit import UserModel
from recarena.agents.user_kinds import BUILTIN_USER_KINDS, UserKindError, user_kind_maker, user_kind_names
from recarena.agents.llm.health import DEFAULT_MAX_FAILURE_RATE
from recarena.recommenders import RecommenderError, parse_assignments, recommender_class

from recarena.scenarios.contract import ScenarioError

T = TypeVar("T")

# The registered user kinds (built-ins, then plugins), read from the registry; a Literal so --help lists them. Broken
# plugins' names are accepted here so that asking for one reports its distribution in one line (`check_user_kind`).
UserKindName = Literal[tuple(user_kind_names(with_broken=True))]  # type: ignore[valid-type]
_PLUGIN_KINDS = "".join(f"; from plugins: {', '.join(user_kind_names()[len(BUILTIN_USER_KINDS):])}" for _ in user_kind_names()[len(BUILTIN_USER_KINDS):][:1])


def option(default: Any, help: str, **kwargs: Any) -> Any:
    """A dataclass field with help text (and a default)."""
    if isinstance(default, (list, dict, set)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata={"help": help, **kwargs})
    return dataclasses.field(default=default, metadata={"help": help, **kwargs})


@dataclass(frozen=True)
class OptionKind:
    """How one config field is read, from a command line and from a YAML file alike (see `option_kind`)."""

    shape: Literal["flag", "choice", "list", "value"]
    """flag: a bool (``--x/--no-x``); choice: one of `choices`; list: several values; value: one value."""
    convert: Callable[[Any], Any]
    """Turns one given value (a flag's text, a YAML scalar) into the field's type."""
    choices: tuple[Any, ...] = ()
    optional: bool = False
    """None is a valid value (``Path | None``)."""


def option_kind(hint: Any) -> OptionKind:
    """The one table of field types: what a config field annotated `hint` takes."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is bool:
        return OptionKind("flag", bool)
    if origin is typing.Literal:
        return OptionKind("choice", str, tuple(args))
    if origin is list:
        return OptionKind("list", args[0])
    if origin in (typing.Union, types.UnionType):
        inner = next(a for a in args if a is not type(None))
        return dataclasses.replace(option_kind(inner), optional=type(None) in args)
    return OptionKind("value", hint)


def config_fields(config_type: type) -> list[tuple[dataclasses.Field, OptionKind]]:
    """Each field of the dataclass `config_type` with its `OptionKind`, in declaration order (inherited fields first)."""
    hints = typing.get_type_hints(config_type)
    return [(field, option_kind(hints[field.name])) for field in dataclasses.fields(config_type)]


def add_arguments(parser: argparse.ArgumentParser, config_type: type) -> None:
    """Add one flag per field of the dataclass `config_type`."""
    for field, kind in config_fields(config_type):
        if "help" not in field.metadata:
            raise TypeError(f"{config_type.__name__}.{field.name} has no help text")
        flag = "--" + field.name.replace("_", "-")
        default = field.default if field.default is not dataclasses.MISSING else field.default_factory()
        help_text = f"{field.metadata['help']} (default: {default})"
        if kind.shape == "flag":
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=default, help=help_text)
        elif kind.shape == "choice":
            parser.add_argument(flag, choices=list(kind.choices), default=default, help=help_text)
        elif kind.shape == "list":
            parser.add_argument(flag, nargs="+", type=kind.convert, default=default, help=help_text)
        else:
            parser.add_argument(flag, type=kind.convert, default=default, help=help_text)


def parse_model_params(texts: list[str], models: list[str]) -> dict[str, dict[str, str]]:
    """``["bpr.dim=32", ...]`` as ``{"bpr": {"dim": "32"}}``; ScenarioError naming ``model_params`` on a bad entry.

    The values are checked against each model's parameters here (``bpr.dim=-5`` fails now, not after
    a run directory was made and other models were fitted)."""
    out: dict[str, dict[str, str]] = {}
    for text in texts:
        model, dot, rest = text.partition(".")
        if not dot or model not in models:
            raise ScenarioError(f"model_params: {text!r} must be MODEL.name=value with MODEL one of {models}")
        try:
            out.setdefault(model, {}).update(parse_assignments([rest]))
        except RecommenderError as error:
            raise ScenarioError(f"model_params: {error}") from None
    for model, values in out.items():
        try:
            recommender_class(model).Params.build(model, None, values)
        except RecommenderError as error:
            raise ScenarioError(f"model_params: {error}") from None
    return out


def from_namespace(config_type: type[T], namespace: argparse.Namespace) -> T:
    """Build `config_type` from parsed flags."""
    values = {f.name: getattr(namespace, f.name) for f in dataclasses.fields(config_type)}
    return config_type(**values)


@dataclass
class CommonOptions:
    """The options of every scenario: what data, which seed, where the files go, whether bars show."""

    dataset: str = option("ml-100k", "built-in dataset name (ml-100k, ml-1m) or a folder of data files")
    seed: int = option(0, "seed of everything random (the same seed gives the same results)")
    out: Path = option(Path("runs/out"), "output folder: results.json (and report.html)")
    progress: bool = option(True, "show progress bars")


@dataclass
class ReportOptions(CommonOptions):
    """The common options of a scenario that writes ``report.html`` beside ``results.json``."""

    html: bool = option(True, "write report.html")


@dataclass
class LLMOptions(ReportOptions):
    """The options of a scenario that runs an LLM (built with `recarena.agents.llm.build_llm`)."""

    llm: str = option("embedded", "the LLM: 'embedded' (SmolLM2 in-process; 'embedded:tuned' with the shipped adapter tuned on ml-100k's leave-one-out training part; 'embedded:adapter=FOLDER' with a tune-llm adapter) or 'openai:MODEL@BASE_URL' (vLLM, Ollama, OpenAI)")
    llm_cache: Path | None = option(Path("runs/llm-cache.sqlite"), "SQLite cache of LLM answers (a warm rerun makes no calls)")
    max_llm_failure_rate: float = option(DEFAULT_MAX_FAILURE_RATE, "stop the run (exit 1) when more than this share of LLM requests end "
                                                                   "in a fallback, over the first 20 or the last 100 (1: never stop)")


@dataclass
class SimulatedUserOptions(LLMOptions):
    """The options of a scenario whose simulated users may be LLM or hybrid users."""

    calibration_users: int = option(20, "users whose held-out validation items calibrate the hybrid users' blend")
    user_model: UserModel = option("dynamic", "the users' interest: dynamic (taste moved by recent items and popularity, fitted on the validation part, "
                                              "the variant with the best held-out validation likelihood) or static (taste alone)")
    threads: int = option(8, "threads for LLM users' pages (their calls go out together)")


@dataclass
class UserKindOptions(SimulatedUserOptions):
    """The options of a scenario whose simulated users are all of one kind."""

    user_kind: UserKindName = option("statistical", "simulated users: statistical (fast, no LLM), llm, or hybrid (LLM pooled with the data)"
                                                    + _PLUGIN_KINDS)

    def check_user_kind(self) -> None:
        """ScenarioError naming ``user_kind`` when it is unknown or a broken plugin."""
        try:
            user_kind_maker(self.user_kind)
        except UserKindError as error:
            raise ScenarioError(f"user_kind: {error}") from None


@dataclass
class ServiceArmOptions(UserKindOptions):
    """The options of a scenario whose arms may be recommender services (``--arms http://HOST:PORT/PATH``; docs/service.md).

    They say how the arena calls a service, never what it shows, so a run's recorded settings leave them out."""

    service_timeout: float = option(10.0, "seconds one request to a recommender service may take before it counts as failed")
    service_retries: int = option(2, "retries of a request to a recommender service after a transport error, a timeout or a 5xx answer")
    service_concurrency: int = option(8, "requests in flight together to a recommender service (one per user of a batch)")
    max_service_failure_rate: float = option(DEFAULT_MAX_FAILURE_RATE, "stop the run (exit 1) when more than this share of a service's "
                                                                       "calls fail after their retries, over the first 20 or the last 100 "
                                                                       "(1: never stop); a service that stops answering stops it at once")

    SERVICE_FIELDS = ("service_timeout", "service_retries", "service_concurrency", "max_service_failure_rate")

    def service_params(self) -> dict[str, float | int]:
        """The parameters of each served arm's `HttpRecommender` (url aside); ScenarioError naming the option when one is impossible."""
        if not self.service_timeout > 0:
            raise ScenarioError(f"service_timeout: must be above 0, got {self.service_timeout}")
        if not 0 <= self.service_retries <= 10:
            raise ScenarioError(f"service_retries: must be in 0..10, got {self.service_retries}")
        if not 1 <= self.service_concurrency <= 256:
            raise ScenarioError(f"service_concurrency: must be in 1..256, got {self.service_concurrency}")
        if not 0.0 <= self.max_service_failure_rate <= 1.0:
            raise ScenarioError(f"max_service_failure_rate: must be in [0, 1], got {self.max_service_failure_rate}")
        return {"timeout_s": self.service_timeout, "retries": self.service_retries, "concurrency": self.service_concurrency,
                "max_failure_rate": self.max_service_failure_rate}  # fmt: skip
