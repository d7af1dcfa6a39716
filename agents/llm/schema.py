"""Structured output: one place that turns a caller's schema into JSON schema, extracts JSON from a
model's text and validates it, shared by every backend.

A schema is either a pydantic model class (answers become instances of it) or a JSON-schema dict
(answers become plain dicts, checked against the common subset of JSON Schema that grammar-based
decoders and OpenAI's strict mode support: type, properties, required, additionalProperties,
enum, const, items, minimum/maximum, minLength/maxLength, minItems/maxItems, anyOf).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

_SUPPORTED = {
    "type", "properties", "required", "additionalProperties", "enum", "const", "items", "minimum",
    "maximum", "minLength", "maxLength", "minItems", "maxItems", "anyOf", "title", "description",
    "default", "$defs", "$ref", "exclusiveMinimum", "exclusiveMaximum",
}
_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)


class AnswerInvalid(ValueError):
    """The model's text is not JSON, or not JSON that satisfies the schema."""


@dataclass(frozen=True)
class Schema:
    """A caller's schema, normalised: the JSON schema sent to models and a validator."""

    json_schema: dict[str, Any]
    name: str
    model_class: type[BaseModel] | None = None

    @classmethod
    def of(cls, schema: Any) -> "Schema":
        """Accept a pydantic model class or a JSON-schema dict; reject anything else clearly."""
        if isinstance(schema, Schema):
            return schema
        if isinstance(schema, type) and issubclass(schema, BaseModel):
            return cls(schema.model_json_schema(), schema.__name__, schema)
        if isinstance(schema, dict):
            _check_keywords(schema, "schema")
            return cls(schema, str(schema.get("title", "answer")))
        raise TypeError(f"schema must be a pydantic model class or a JSON-schema dict, got {type(schema).__name__}")

    def validate_text(self, text: str) -> Any:
        """Parse and validate; raise AnswerInvalid with a one-line reason."""
        data = extract_json(text)
        if self.model_class is not None:
            try:
                return self.model_class.model_validate(data)
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(p) for p in first["loc"]) or "answer"
                raise AnswerInvalid(f"{where}: {first['msg']}") from None
        problem = _violation(data, self.json_schema, self.json_schema, "answer")
        if problem:
            raise AnswerInvalid(problem)
        return data

    def repair_message(self, error: str) -> dict[str, str]:
        """The follow-up user turn of the single repair attempt."""
        return {
            "role": "user",
            "content": (
                f"Your answer was invalid ({error}). Reply again with only a JSON object that matches this "
                f"JSON schema, and nothing else:\n{json.dumps(self.json_schema)}"
            ),
        }

    def instruction(self) -> str:
        """Schema-in-prompt text for backends without native structured output."""
        return schema_instruction(self.json_schema)


def schema_instruction(json_schema: dict[str, Any]) -> str:
    """The text that asks for JSON matching ``json_schema`` when a server cannot enforce it."""
    return (
        "Answer with only a JSON object, no prose and no code fence, that matches this JSON schema:\n"
        + json.dumps(json_schema)
    )


def with_schema_instruction(messages: tuple[dict[str, str], ...], json_schema: dict[str, Any]) -> list[dict[str, str]]:
    """The conversation with the schema instruction appended to the last user turn."""
    out = [dict(m) for m in messages]
    for message in reversed(out):
        if message["role"] == "user":
            message["content"] = message["content"].rstrip() + "\n\n" + schema_instruction(json_schema)
            return out
    return out + [{"role": "user", "content": schema_instruction(json_schema)}]


def extract_json(text: str) -> Any:
    """The JSON value in a model's text: whole text, a fenced block, or the outermost {...}."""
    candidates = [text.strip()]
    candidates += [m.strip() for m in _FENCE.findall(text)]
    start, end = text.find("{"), text.rfind("}")
    if 0 <= start < end:
        candidates.append(text[start : end + 1])
    for candidate in candidates:
        try:
            return json.loads(candidate)
        except (json.JSONDecodeError, ValueError):
            continue
    snippet = text.strip().replace("\n", " ")[:80]
    raise AnswerInvalid(f"not valid JSON: {snippet!r}")


def _check_keywords(node: Any, where: str) -> None:
    if isinstance(node, dict):
        unknown = set(node) - _SUPPORTED
        if unknown and not where.endswith(".properties") and not where.endswith(".$defs"):
            raise ValueError(f"{where}: unsupported JSON-schema keyword(s) {sorted(unknown)}")
        for key, value in node.items():
            if key in ("properties", "$defs") and isinstance(value, dict):
                for name, sub in value.items():
                    _check_keywords(sub, f"{where}.{key}.{name}")
            elif key in ("items", "additionalProperties") and isinstance(value, dict):
                _check_keywords(value, f"{where}.{key}")
            elif key == "anyOf":
                for i, sub in enumerate(value):
                    _check_keywords(sub, f"{where}.anyOf[{i}]")


_TYPES = {
    "object": dict, "array": list, "string": str, "boolean": bool, "null": type(None),
    "integer": int, "number": (int, float),
}


def _type_ok(value: Any, name: str) -> bool:
    if name in ("integer", "number") and isinstance(value, bool):
        return False
    if name == "integer" and isinstance(value, float):
        return value.is_integer()
    return isinstance(value, _TYPES[name])


def _violation(value: Any, node: dict[str, Any], root: dict[str, Any], where: str) -> str | None:
    """First violation of ``node`` by ``value`` as a one-line message, or None."""
    if "$ref" in node:
        ref = node["$ref"].rsplit("/", 1)[-1]
        node = root.get("$defs", {}).get(ref, {})
    if "anyOf" in node:
        if all(_violation(value, sub, root, where) for sub in node["anyOf"]):
            return f"{where}: matches none of anyOf"
    kind = node.get("type")
    if kind is not None:
        kinds = kind if isinstance(kind, list) else [kind]
        if not any(_type_ok(value, k) for k in kinds):
            return f"{where}: expected {kind}, got {type(value).__name__}"
    if "enum" in node and value not in node["enum"]:
        return f"{where}: {value!r} not one of {node['enum']}"
    if "const" in node and value != node["const"]:
        return f"{where}: must be {node['const']!r}"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in node and value < node["minimum"]:
            return f"{where}: {value} < minimum {node['minimum']}"
        if "maximum" in node and value > node["maximum"]:
            return f"{where}: {value} > maximum {node['maximum']}"
        if "exclusiveMinimum" in node and value <= node["exclusiveMinimum"]:
            return f"{where}: {value} <= exclusiveMinimum {node['exclusiveMinimum']}"
        if "exclusiveMaximum" in node and value >= node["exclusiveMaximum"]:
            return f"{where}: {value} >= exclusiveMaximum {node['exclusiveMaximum']}"
    if isinstance(value, str):
        if len(value) < node.get("minLength", 0):
            return f"{where}: shorter than {node['minLength']}"
        if "maxLength" in node and len(value) > node["maxLength"]:
            return f"{where}: longer than {node['maxLength']}"
    if isinstance(value, list):
        if len(value) < node.get("minItems", 0):
            return f"{where}: fewer than {node['minItems']} items"
        if "maxItems" in node and len(value) > node["maxItems"]:
            return f"{where}: more than {node['maxItems']} items"
        if isinstance(node.get("items"), dict):
            for i, item in enumerate(value):
                problem = _violation(item, node["items"], root, f"{where}[{i}]")
                if problem:
                    return problem
    if isinstance(value, dict):
        for name in node.get("required", []):
            if name not in value:
                return f"{where}.{name}: missing"
        properties = node.get("properties", {})
        for name, item in value.items():
            if name in properties:
                problem = _violation(item, properties[name], root, f"{where}.{name}")
                if problem:
                    return problem
            elif node.get("additionalProperties") is False:
                return f"{where}.{name}: not allowed"
    return None
