"""The arms of an A/B test as ``--arms`` names them: registry models, and recommender services by their URL.

    pop,bpr                                      two models of the registry (labels pop, bpr)
    pop,http://127.0.0.1:8000/recommend          a service, labelled by its URL
    pop,served=http://127.0.0.1:8000/recommend   a service labelled "served" (YAML: arms: [pop, served=http://...])
    pop,pop                                      one model twice: labels pop and pop#2

A served arm is a `recarena.recommenders.service.HttpRecommender` (docs/service.md): the world builds it like a
model, it trains nothing, and its calls (latency, failures, retries) are reported per arm in results.json.
"""

from __future__ import annotations

from dataclasses import dataclass

from recarena.recommenders import RecommenderError, recommender_class, recommender_names
from recarena.recommenders.service import check_service_url, is_service_url

from recarena.scenarios.contract import ScenarioError


@dataclass(frozen=True)
class ArmSpec:
    """One entry of ``--arms``."""

    model: str
    """A registry name, or a service's URL (the key of the world's recommenders either way)."""
    name: str | None = None
    """The label asked for with ``NAME=URL``; None labels the arm by `model`."""

    @property
    def served(self) -> bool:
        """Whether the arm is a recommender service rather than a model in this process."""
        return is_service_url(self.model)


def parse_arm(text: str) -> ArmSpec:
    """``NAME=URL`` (a named service), a URL, or a registry name; nothing is checked here (`check_arms` does)."""
    text = text.strip()
    name, sep, rest = text.partition("=")
    if sep and not is_service_url(name) and is_service_url(rest):  # a URL's own query ("?a=b") never splits it
        return ArmSpec(rest.strip(), name.strip())
    return ArmSpec(text)


def parse_arms(arms: str) -> list[ArmSpec]:
    """Every entry of a comma-separated ``--arms``, in order."""
    return [parse_arm(a) for a in arms.split(",") if a.strip()]


def arm_labels(specs: list[ArmSpec]) -> list[str]:
    """Unique labels: the name asked for, else the model or URL; a label given again becomes ``pop#2``, ``pop#3``."""
    labels, seen = [], {}
    for spec in specs:
        base = spec.name or spec.model
        seen[base] = seen.get(base, 0) + 1
        labels.append(base if seen[base] == 1 else f"{base}#{seen[base]}")
    return labels


def check_arms(specs: list[ArmSpec]) -> None:
    """One-line errors naming ``arms``: an unknown model (RecommenderError listing the valid names, or a broken
    plugin's distribution), a malformed service URL, a service name that is empty, a model's name or given twice."""
    names: set[str] = set()
    for spec in specs:
        if not spec.served:
            recommender_class(spec.model)
            continue
        try:
            check_service_url(spec.model)
        except RecommenderError as error:
            raise ScenarioError(f"arms: {error}") from None
        if spec.name is None:
            continue
        if not spec.name or "#" in spec.name:
            raise ScenarioError(f"arms: {spec.name + '=' + spec.model!r}: a service's name must be non-empty and hold no '#'")
        if spec.name in recommender_names():
            raise ScenarioError(f"arms: the service name {spec.name!r} is a model's name; name the served arm otherwise (served-{spec.name}, say)")
        if spec.name in names:
            raise ScenarioError(f"arms: two services are named {spec.name!r}")
        names.add(spec.name)
