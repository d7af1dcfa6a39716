"""One parser for every LLM ranking answer: `parse_ranking`.

Whatever the method or prompt, an answer is read the same way:

* **ids**: ``C7``, ``[7]``, ``Candidate 7``, and on a line that holds nothing but numbers,
  ``7.``, ``7)``, ``3, 1, 2`` or ``3 > 1 > 2`` (numbers are the candidates' label numbers);
* **titles** on lines without ids: exact (case-insensitive, with or without the year,
  ``Usual Suspects, The`` = ``The Usual Suspects``), then fuzzy (difflib ratio at least
  `fuzzy_threshold`) for the pieces no exact title covered.

The first mention of a candidate ranks it; later mentions count as ``duplicates``; ids outside
the list and list lines that match no candidate count as ``unknown``. Candidates never named are
appended after the named ones in a random order drawn from the caller's generator (``missing``).
An answer that names no candidate at all has ``parsed_any = False``: the caller counts a miss
(its ranking is then wholly random), never a success.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .llm_prompt import Candidate

_EXPLICIT_ID = re.compile(r"(?<![A-Za-z0-9])(?:c|candidate\s*#?\s*)(\d{1,4})(?!\d)|\[(\d{1,4})\]", re.IGNORECASE)
_NUMBERS_ONLY = re.compile(r"^[\s\d.,;:>)(\]\[#\-]*$")
_PREFIX = re.compile(r"^\s*(?:final\s+)?(?:answer|ranking|ranked|order|output|ids?|candidates?)\s*[:=-]\s*", re.IGNORECASE)
_LIST_MARKER = re.compile(r"^\s*(?:\d{1,3}\s*[.)]|[-*\u2022])\s+")
_YEAR = re.compile(r"\(\s*\d{4}\s*\)")
_ARTICLES = ("the", "a", "an", "il", "la", "le", "les", "l'", "el", "das", "der", "die")
_SPLIT = re.compile(r"\s*(?:[,;|>]|\s-\s|\band\b)\s*")


@dataclass(frozen=True)
class ParsedRanking:
    """A full ranking of the candidates read from one answer, and what went wrong reading it.

    ``order`` indexes the ``candidates`` passed to `parse_ranking` (best first, each once);
    ``items`` are the same as item ids. ``parsed`` candidates came from the answer, ``missing``
    were appended at random, ``duplicates`` and ``unknown`` count mentions that were dropped.
    """

    order: tuple[int, ...]
    items: tuple[int, ...]
    parsed: int
    missing: int
    duplicates: int
    unknown: int

    @property
    def parsed_any(self) -> bool:
        """False when the answer named no candidate at all (a miss)."""
        return self.parsed > 0

    @property
    def complete(self) -> bool:
        """Every candidate named, nothing dropped."""
        return self.missing == 0 and self.duplicates == 0 and self.unknown == 0

    def as_dict(self) -> dict[str, int]:
        return {"parsed": self.parsed, "missing": self.missing, "duplicates": self.duplicates, "unknown": self.unknown}


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text.replace("\u2019", "'").replace("\u2018", "'")).strip().lower()


def _aliases(candidate: Candidate) -> list[str]:
    """Ways an answer may write the title, most specific first."""
    title = _norm(candidate.title)
    names = [title]
    head, comma, article = title.rpartition(", ")
    if comma and article in _ARTICLES:
        names.append(f"{article}{'' if article.endswith(chr(39)) else ' '}{head}")
    with_year = [f"{n} ({candidate.year})" for n in names] if candidate.year is not None else []
    short_ok = [n for n in names if len(n) >= 4 or not n.isalnum()]  # "M", "Go": only with their year
    return with_year + short_ok


def _title_spans(line: str, aliases: list[tuple[str, int]]) -> list[tuple[int, int, int]]:
    """Non-overlapping (start, end, candidate index) exact title matches, longest alias first."""
    taken: list[tuple[int, int, int]] = []
    for alias, index in aliases:
        for match in re.finditer(r"(?<![\w'])" + re.escape(alias) + r"(?![\w'])", line):
            start, end = match.span()
            if all(end <= s or start >= e for s, e, _ in taken):
                taken.append((start, end, index))
    return sorted(taken)


def _fuzzy(piece: str, aliases: list[tuple[str, int]], threshold: float) -> int | None:
    piece = _YEAR.sub("", piece).strip(" .:-*\"'")
    if len(re.sub(r"[^a-z]", "", piece)) < 4 or "genre" in piece:
        return None
    best, best_score = None, threshold
    for alias, index in aliases:
        score = difflib.SequenceMatcher(None, piece, _YEAR.sub("", alias).strip()).ratio()
        if score >= best_score:
            best, best_score = index, score
    return best


def _mentions(answer: str, candidates: Sequence[Candidate], threshold: float) -> tuple[list[int | None], int]:
    """Candidate indices in order of mention (None: an unknown entry), and the unknown list lines."""
    by_number = {c.number: i for i, c in enumerate(candidates)}
    aliases = sorted(((a, i) for i, c in enumerate(candidates) for a in _aliases(c)), key=lambda p: -len(p[0]))
    mentions: list[int | None] = []
    unknown_lines = 0
    for raw_line in answer.splitlines():
        line = _norm(raw_line)
        if not line:
            continue
        ids = [int(a or b) for a, b in _EXPLICIT_ID.findall(line)]
        if ids:
            mentions += [by_number.get(n) for n in ids]
            continue
        bare = _PREFIX.sub("", line)
        if _NUMBERS_ONLY.match(bare) and re.search(r"\d", bare):
            mentions += [by_number.get(int(n)) for n in re.findall(r"\d+", _YEAR.sub(" ", bare))]
            continue
        is_list_item = bool(_LIST_MARKER.match(line))
        body = _LIST_MARKER.sub("", line)
        spans = _title_spans(body, aliases)
        found: list[tuple[int, int]] = [(s, i) for s, _, i in spans]
        cuts = [0] + [p for s, e, _ in spans for p in (s, e)] + [len(body)]
        for start, end in zip(cuts[::2], cuts[1::2]):
            offset = start
            for piece in _SPLIT.split(body[start:end]):
                index = _fuzzy(piece, aliases, threshold)
                if index is not None:
                    found.append((offset, index))
                offset += len(piece) + 1
        if found:
            mentions += [i for _, i in sorted(found)]
        elif is_list_item:
            unknown_lines += 1
    return mentions, unknown_lines


def parse_ranking(answer: str, candidates: Sequence[Candidate], rng: np.random.Generator,
                  fuzzy_threshold: float = 0.8) -> ParsedRanking:
    """Read a ranking of `candidates` from an LLM `answer` (see the module docstring)."""
    if not candidates:
        return ParsedRanking((), (), 0, 0, 0, 0)
    mentions, unknown = _mentions(answer if isinstance(answer, str) else "", candidates, fuzzy_threshold)
    order: list[int] = []
    seen: set[int] = set()
    duplicates = 0
    for index in mentions:
        if index is None:
            unknown += 1
        elif index in seen:
            duplicates += 1
        else:
            seen.add(index)
            order.append(index)
    rest = [i for i in range(len(candidates)) if i not in seen]
    parsed = len(order)
    order += [rest[j] for j in rng.permutation(len(rest))]
    return ParsedRanking(tuple(order), tuple(candidates[i].item for i in order), parsed, len(rest), duplicates, unknown)
