"""Structured answers: one pydantic model, three ways to ask for it, one way to check it.

Servers differ: OpenAI and vLLM take `json_schema`; the llama.cpp server rejects that but
grammar-constrains `json_object` with a `schema`; anything else gets the schema in the prompt
("plain"). Whatever the mode, the answer is validated with pydantic, and an invalid one is
re-asked with the error fed back, a bounded number of times, then reported as a failure.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from ise_dagster.llm.client import ContextLengthError, LLMClient
from ise_dagster.llm.settings import ModelSettings, StructuredMode
from ise_dagster.llm.usage import Usage

M = TypeVar("M", bound=BaseModel)
_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$", re.I)


def schema_of(model: type[BaseModel], min_lengths: bool = False) -> dict[str, Any]:
    """A strict-mode-friendly JSON schema: every property required, no extras. Lengths are
    left to pydantic: OpenAI's strict mode rejects them and llama.cpp turns a maxLength into
    a grammar too big to parse; a small minLength is kept for grammar-constrained servers."""
    schema = model.model_json_schema()
    schema.pop("title", None)
    schema.pop("description", None)  # a docstring, not an instruction
    schema["additionalProperties"] = False
    schema["required"] = list(schema.get("properties", {}))
    for prop in schema.get("properties", {}).values():
        prop.pop("title", None)
        prop.pop("maxLength", None)
        if not min_lengths:
            prop.pop("minLength", None)
    return schema


def response_format(mode: StructuredMode, model: type[BaseModel]) -> dict[str, Any] | None:
    if mode == "json_schema":
        return {
            "type": "json_schema",
            "json_schema": {"name": model.__name__, "schema": schema_of(model), "strict": True},
        }
    if mode == "json_object":
        return {"type": "json_object", "schema": schema_of(model, min_lengths=True)}
    return None


def parse(text: str | None, model: type[M]) -> M:
    """Validate a model answer; plain-mode answers may wrap the JSON in prose or fences."""
    if not text or not text.strip():
        raise ValueError("the answer was empty; reply with the JSON object")
    raw = _FENCE.sub("", text.strip())
    try:
        return model.model_validate_json(raw)
    except ValidationError as first:
        start, end = raw.find("{"), raw.rfind("}")
        if start < 0 or end <= start or (start, end) == (0, len(raw) - 1):
            raise first
        return model.model_validate_json(raw[start : end + 1])


@dataclass
class Structured(Generic[M]):
    value: M | None
    error: str | None  # why the last attempt failed, when value is None
    attempts: int


def ask(
    client: LLMClient,
    role: ModelSettings,
    messages: list[dict[str, Any]],
    model: type[M],
    *,
    prompt_version: str,
    usage: Usage | None = None,
) -> Structured[M]:
    """Ask until the answer validates, feeding each error back; never raises on bad output
    (server and config errors still raise)."""
    mode = client.settings.structured_output
    fmt = response_format(mode, model)
    convo = list(messages)
    if mode != "json_schema":  # the schema must reach the model some other way too
        schema = json.dumps(schema_of(model))
        hint = f"Reply with only a JSON object matching this JSON schema: {schema}"
        convo[0] = {**convo[0], "content": f"{convo[0]['content']}\n\n{hint}"}
    error = ""
    for attempt in range(1, client.settings.max_repairs + 2):
        try:
            done = client.chat(role, convo, prompt_version=prompt_version, response_format=fmt,
                               usage=usage)  # fmt: skip
        except ContextLengthError as e:
            if attempt == 1:  # the prompt itself does not fit: the caller decides
                raise
            # The repairs so far (bad answers + errors) filled the context: give up on it.
            error = f"{error}; then the repair conversation overflowed the context ({e})"
            break
        if done.refusal:
            error = f"the model refused: {done.refusal}"
        else:
            try:
                return Structured(parse(done.content, model), None, attempt)
            except (ValidationError, ValueError) as e:
                error = _short(e)
        for u in client.meters(usage):
            u.bump("invalid_outputs")
        convo = [
            *convo,
            {"role": "assistant", "content": done.content or ""},
            {"role": "user", "content": f"That answer was invalid: {error}. Reply again with "
                                        "only the corrected JSON object."},
        ]  # fmt: skip
    for u in client.meters(usage):
        u.bump("failed_outputs")
    return Structured(None, error, attempt)


def _short(error: Exception) -> str:
    if isinstance(error, ValidationError):
        return "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'answer'}: {e['msg']}" for e in error.errors()
        )[:500]
    return str(error)[:500]
