"""The JSONL log of an optimisation: one line per unit of work and per decision; a killed run resumes from it.

The first line is a header with the run's fingerprint (method, settings, seed, budget, initial
prompt, case ids); a log written by a different run is refused with a one-line error naming what
differs. Every later line has a ``key`` that is unique in the file:

* ``unit`` lines hold the result and cost of one unit of work (an evaluation of a prompt on some
  cases, one question to the optimiser LLM). A resumed run replays the same deterministic loop and
  takes each unit whose key is already logged from the log (its cost is booked again, so the
  figures of a resumed run equal those of an uninterrupted one) instead of asking the LLM;
* ``event`` lines record decisions (a candidate accepted or rejected, with the reason; a step's
  summary); a resumed run does not write an event twice.

Lines are flushed and fsynced one by one; a line cut short by a kill is dropped on resume.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from recarena.scenarios.prompt_opt.contract import PromptOptError


def digest(value: Any) -> str:
    """A short stable hash of a JSON-able value."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode("utf-8")).hexdigest()[:16]


class RunLog:
    """Append-only JSONL log with resume (see the module docstring). ``path=None`` keeps it in memory."""

    def __init__(self, path: Path | None, fingerprint: dict[str, Any]) -> None:
        self.path = Path(path) if path is not None else None
        self.fingerprint = fingerprint
        self.lines: dict[str, dict[str, Any]] = {}
        self.replayed = 0
        self.sequence = 0
        self._handle = None
        if self.path is not None:
            self._open()

    def _open(self) -> None:
        assert self.path is not None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        kept: list[str] = []
        if self.path.exists():
            raw = self.path.read_text(encoding="utf-8").split("\n")
            for number, text in enumerate(raw):
                if not text.strip():
                    continue
                try:
                    line = json.loads(text)
                except json.JSONDecodeError:
                    if number >= len(raw) - 2:  # the last line, cut short by a kill
                        break
                    raise PromptOptError(f"log {self.path}: line {number + 1} is not JSON; delete the file or use a new --out") from None
                kept.append(text)
                self.lines[line["key"]] = line
            header = self.lines.get("header")
            if header is not None and header["fingerprint"] != _jsonable(self.fingerprint):
                field = next((k for k in sorted(set(header["fingerprint"]) | set(self.fingerprint))
                              if header["fingerprint"].get(k) != _jsonable(self.fingerprint).get(k)), "?")  # fmt: skip
                raise PromptOptError(f"log {self.path}: written by a different run ({field} differs); use a new --out or delete the log")
            self.path.write_text("".join(t + "\n" for t in kept), encoding="utf-8")  # drop a torn last line
        self._handle = self.path.open("a", encoding="utf-8")
        self.sequence = len(self.lines)
        if "header" not in self.lines:
            self._write({"key": "header", "kind": "header", "fingerprint": self.fingerprint})

    def _write(self, line: dict[str, Any]) -> None:
        line = {"seq": self.sequence, **_jsonable(line)}
        self.sequence += 1
        self.lines[line["key"]] = line
        if self._handle is not None:
            self._handle.write(json.dumps(line, sort_keys=True) + "\n")
            self._handle.flush()
            os.fsync(self._handle.fileno())

    def unit(self, key: str) -> dict[str, Any] | None:
        """The logged unit `key` (and count it as replayed), or None."""
        line = self.lines.get(key)
        if line is not None and line["kind"] == "unit":
            self.replayed += 1
            return line
        return None

    def record_unit(self, key: str, role: str, payload: Any, cost: dict[str, Any], wall_s: float = 0.0) -> None:
        self._write({"key": key, "kind": "unit", "role": role, "payload": payload, "cost": cost, "wall_s": round(wall_s, 3)})

    def event(self, key: str, **fields: Any) -> None:
        """A decision line; written once even when a resumed run reaches it again."""
        if key not in self.lines:
            self._write({"key": key, "kind": "event", **fields})

    def events(self) -> list[dict[str, Any]]:
        return [line for line in sorted(self.lines.values(), key=lambda entry: entry["seq"]) if line["kind"] == "event"]

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, sort_keys=True, default=str))
