"""Real chat templates, rendered the way Hugging Face `apply_chat_template` renders them, to
prove a record reaches a tokenizer intact. The template files are verbatim copies; see
`templates/SOURCES.md` for where each comes from."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

from ise_dagster.sft.records import chat_inputs, split_parallel_calls, structure_problems

TEMPLATE_DIR = Path(__file__).parent / "templates"


@dataclass(frozen=True)
class ChatTemplate:
    name: str
    file: str
    parallel_calls: bool  # False: records must be split to one call per assistant turn
    result_marker: str  # opens each tool result in the rendered text
    bos_token: str = ""
    eos_token: str = ""

    @property
    def source(self) -> str:
        return (TEMPLATE_DIR / self.file).read_text()


TEMPLATES: dict[str, ChatTemplate] = {
    t.name: t
    for t in (
        ChatTemplate("qwen2.5-instruct", "qwen2_5_instruct.jinja", True, "<tool_response>",
                     eos_token="<|im_end|>"),
        ChatTemplate("llama3.1-instruct", "llama3_1_instruct.jinja", False,
                     "<|start_header_id|>ipython<|end_header_id|>",
                     bos_token="<|begin_of_text|>", eos_token="<|eot_id|>"),
    )
}  # fmt: skip


def _tojson(x: Any, ensure_ascii: bool = False, indent: int | None = None,
            separators: tuple[str, str] | None = None, sort_keys: bool = False) -> str:  # fmt: skip
    # transformers' own filter: jinja2's escapes HTML and sorts keys, which models never saw.
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                      sort_keys=sort_keys)  # fmt: skip


def _raise(message: str) -> None:
    raise jinja2.exceptions.TemplateError(message)


@cache
def _compiled(name: str) -> jinja2.Template:
    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"]
    )
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    return env.from_string(TEMPLATES[name].source)


def render(name: str, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> str:
    """The text `tokenizer.apply_chat_template(messages, tools=tools, tokenize=False)` gives."""
    t = TEMPLATES[name]
    return _compiled(name).render(messages=messages, tools=tools, add_generation_prompt=False,
                                  bos_token=t.bos_token, eos_token=t.eos_token)  # fmt: skip


def render_problems(row: dict[str, Any]) -> list[str]:
    """Render a stored record through every shipped template (split first where a template
    wants one call per turn) and report what did not survive: a template error, a tool
    call whose arguments are not in the text as a JSON object, a missing tool result."""
    messages, tools = chat_inputs(row)
    problems = [f"structure: {p}" for p in structure_problems(messages)]
    for name, t in TEMPLATES.items():
        shaped = messages if t.parallel_calls else split_parallel_calls(messages)
        try:
            text = render(name, shaped, tools)
        except jinja2.TemplateError as e:
            problems.append(f"{name}: {e}")
            continue
        results = [m for m in shaped if m["role"] == "tool"]
        if text.count(t.result_marker) != len(results):
            problems.append(
                f"{name}: {text.count(t.result_marker)} tool results rendered, "
                f"{len(results)} in the record"
            )
        for m in shaped:
            for call in m.get("tool_calls") or []:
                if _tojson(call["function"]["arguments"]) not in text:
                    problems.append(f"{name}: call {call['id']} arguments not rendered as JSON")
        for m in results:
            if m["content"] not in text and _tojson(m["content"]) not in text:
                problems.append(f"{name}: result {m['tool_call_id']} not rendered")
    return problems
