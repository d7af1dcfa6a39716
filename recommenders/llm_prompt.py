"""Prompts of the LLM reranker: versioned templates with named placeholders, and candidates.

    template = PromptTemplate(LISTWISE_TEXT, name="listwise", version=1)
    template.placeholders                    # ('history', 'candidates')
    text = template.render(history="...", candidates="...")
    better = template.with_text(new_text)    # what a prompt optimiser proposes: validated, version + 1

A placeholder is ``{name}`` with ``name`` one of `KNOWN_PLACEHOLDERS`; ``{{`` and ``}}`` are
literal braces, and any other brace (a JSON example) is plain text. Every template needs
``{history}`` and ``{candidates}``; ``{user_profile}`` is optional. `render` fills every
placeholder the text has, refuses a missing one and a value nobody asked for (optional ones
excepted: a caller may always offer ``user_profile``), and inserts values verbatim (a brace in a
movie title is never read as a placeholder).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from .errors import RecommenderError

REQUIRED_PLACEHOLDERS = ("history", "candidates")
OPTIONAL_PLACEHOLDERS = ("user_profile",)
KNOWN_PLACEHOLDERS = REQUIRED_PLACEHOLDERS + OPTIONAL_PLACEHOLDERS

# {{ and }} are escapes; {identifier} is a placeholder; anything else in braces is literal text.
_TOKEN = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}")


class TemplateError(RecommenderError):
    """A template that lacks a required placeholder, names an unknown one, or was rendered wrongly."""


def template_problems(text: str) -> list[str]:
    """Why `text` is not a valid template (empty when it is); for optimisers that filter proposals."""
    if not isinstance(text, str) or not text.strip():
        return ["the template text is empty"]
    names = [m.group(1) for m in _TOKEN.finditer(text) if m.group(1)]
    problems = [f"unknown placeholder {{{n}}} (known: {', '.join('{' + k + '}' for k in KNOWN_PLACEHOLDERS)})"
                for n in dict.fromkeys(names) if n not in KNOWN_PLACEHOLDERS]
    problems += [f"required placeholder {{{n}}} is missing" for n in REQUIRED_PLACEHOLDERS if n not in names]
    return problems


@dataclass(frozen=True)
class PromptTemplate:
    """A prompt text with named placeholders, a name and a version (both go into reports and cache keys)."""

    text: str
    name: str = "custom"
    version: int = 1
    parent: str | None = field(default=None, compare=False)
    """Digest of the template this one was derived from (`with_text`), for an optimiser's lineage."""

    def __post_init__(self) -> None:
        problems = template_problems(self.text)
        if problems:
            raise TemplateError(f"template {self.name!r} v{self.version}: {problems[0]}")

    @property
    def placeholders(self) -> tuple[str, ...]:
        """The placeholder names in the text, in order of first appearance."""
        return tuple(dict.fromkeys(m.group(1) for m in _TOKEN.finditer(self.text) if m.group(1)))

    @property
    def digest(self) -> str:
        """A short hash of the text: two templates with the same digest prompt identically."""
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()[:12]

    @property
    def label(self) -> str:
        """``name@vN#digest`` for tables and logs."""
        return f"{self.name}@v{self.version}#{self.digest}"

    def render(self, **values: Any) -> str:
        """The text with every placeholder filled; TemplateError naming a missing or unexpected value."""
        wanted = self.placeholders
        missing = [n for n in wanted if values.get(n) is None]
        if missing:
            raise TemplateError(f"template {self.label}: no value for placeholder {{{missing[0]}}}")
        extra = [n for n in values if n not in wanted and n not in OPTIONAL_PLACEHOLDERS]
        if extra:
            raise TemplateError(f"template {self.label}: value {extra[0]!r} fills no placeholder (has: {', '.join(wanted)})")

        def fill(match: re.Match[str]) -> str:
            token = match.group(0)
            if token in ("{{", "}}"):
                return token[0]
            return str(values[match.group(1)])

        return _TOKEN.sub(fill, self.text)

    def with_text(self, text: str, name: str | None = None) -> PromptTemplate:
        """A new version with `text` (validated), remembering this one as its parent."""
        return PromptTemplate(text, name or self.name, self.version + 1, parent=self.digest)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "digest": self.digest, "parent": self.parent, "text": self.text}


LISTWISE_TEXT = """A user watched these movies, oldest first:
{history}

Rank ALL of the following candidate movies by how likely the user is to watch them next:
{candidates}

Answer with the candidate ids only, best first, separated by commas, e.g. C3, C1, C2."""

POINTWISE_TEXT = """A user watched these movies, oldest first:
{history}

Candidate movie:
{candidates}

Will the user enjoy the candidate movie? Answer Yes or No."""

LISTWISE = PromptTemplate(LISTWISE_TEXT, name="listwise", version=1)
POINTWISE = PromptTemplate(POINTWISE_TEXT, name="pointwise", version=1)
DEFAULT_TEMPLATES = {"listwise": LISTWISE, "pointwise": POINTWISE}

FORMAT_REMINDER = (
    "Your answer could not be read. Reply with nothing but the candidate ids from the list, each exactly once, "
    "best first, separated by commas, for example: {example}"
)


@dataclass(frozen=True)
class Candidate:
    """One item offered to the LLM: its id, the label the prompt shows (``C7``) and its title."""

    item: int
    label: str
    title: str
    year: int | None = None
    genres: tuple[str, ...] = ()

    @property
    def number(self) -> int:
        """The label's number (``C7`` -> 7)."""
        return int(self.label.lstrip("Cc"))

    @property
    def text(self) -> str:
        """``Title (1995); genres: A, B``."""
        head = self.title if self.year is None else f"{self.title} ({self.year})"
        return f"{head}; genres: {', '.join(self.genres)}" if self.genres else head

    @property
    def line(self) -> str:
        """The candidate's line in a prompt: ``C7: Title (1995); genres: A, B``."""
        return f"{self.label}: {self.text}"


def item_facts(items: pd.DataFrame, item: int) -> tuple[str, int | None, tuple[str, ...]]:
    """(title, year or None, genres) of one row of `Dataset.items`."""
    row = items.iloc[int(item)]
    year = row["year"]
    return str(row["title"]), (None if pd.isna(year) else int(year)), tuple(row["genres"])


def make_candidates(items: pd.DataFrame, item_ids: Sequence[int]) -> list[Candidate]:
    """Candidates labelled C1..Cn in the given (presented) order."""
    out = []
    for position, item in enumerate(item_ids, start=1):
        title, year, genres = item_facts(items, item)
        out.append(Candidate(int(item), f"C{position}", title, year, genres))
    return out


def history_text(items: pd.DataFrame, history: Sequence[int]) -> str:
    """One line per watched item, oldest first: ``- Title (1995); genres: A, B``."""
    lines = []
    for item in history:
        title, year, genres = item_facts(items, item)
        lines.append("- " + Candidate(int(item), "C0", title, year, genres).text)
    return "\n".join(lines) if lines else "- (nothing yet)"


def profile_text(users: pd.DataFrame, user: int) -> str:
    """A one-line description of the user from the dataset's demographics (empty fields skipped)."""
    if users is None or int(user) >= len(users):
        return "unknown user"
    row = users.iloc[int(user)]
    parts = []
    if "age" in row and not pd.isna(row["age"]):
        parts.append(f"{int(row['age'])} years old")
    gender = row.get("gender")
    if isinstance(gender, str) and gender:
        parts.append({"M": "male", "F": "female"}.get(gender, gender))
    occupation = row.get("occupation")
    if isinstance(occupation, str) and occupation:
        parts.append(occupation)
    return ", ".join(parts) if parts else "unknown user"


def candidates_text(candidates: Sequence[Candidate]) -> str:
    """The candidates block of a prompt, one line each."""
    return "\n".join(c.line for c in candidates)
