"""Prompt templates, one versioned text file each, rendered with named fields.

Each file starts with ``# version: N`` and comment lines saying which fields it
takes; the rest is the template (``str.format`` fields). Changing a template's
words means bumping its version, which changes every cache key that uses it.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from functools import cache
from pathlib import Path

FOLDER = Path(__file__).parent
NAMES = ("system", "watch", "rate", "next_page", "reason", "feeling", "satisfaction", "interview_liked", "interview_missed", "reflection")


@dataclass(frozen=True)
class Template:
    name: str
    version: int
    text: str
    fields: frozenset[str]

    def render(self, **values: object) -> str:
        missing = self.fields - values.keys()
        extra = values.keys() - self.fields
        if missing or extra:
            raise KeyError(f"prompt {self.name!r} v{self.version}: missing fields {sorted(missing)}, unknown fields {sorted(extra)}")
        return self.text.format(**values).strip()


@cache
def template(name: str) -> Template:
    """The template `name` (one of `NAMES`)."""
    if name not in NAMES:
        raise KeyError(f"unknown prompt {name!r}; prompts are: {', '.join(NAMES)}")
    lines = (FOLDER / f"{name}.txt").read_text().splitlines()
    header = lines[0]
    if not header.startswith("# version:"):
        raise ValueError(f"{FOLDER / (name + '.txt')}:1: the first line must be '# version: N'")
    body = "\n".join(line for line in lines[1:] if not line.startswith("#"))
    fields = frozenset(f for _, f, _, _ in string.Formatter().parse(body) if f)
    return Template(name, int(header.split(":", 1)[1]), body, fields)
