"""The OpenAI-compatible intent writer: one structured call per sampled 4D tuple."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from pydantic import BaseModel, Field

from ise_dagster.llm.client import LLMClient
from ise_dagster.llm.prompts import load_prompt
from ise_dagster.llm.structured import ask
from ise_dagster.taxonomy.models import IntentSpec, Persona

COMPLEXITY_HINTS = {
    "simple": "a short, direct request",
    "medium": "a request with a few concrete constraints",
    "complex": "a detailed request with context, constraints and a definition of done",
}


class IntentText(BaseModel):
    intent: str = Field(min_length=20, max_length=4000)


def describe_persona(p: Persona) -> str:
    return (
        f"{p.name}, {p.role} in {p.industry} ({p.experience_level}; expertise: "
        f"{p.expertise}; works {p.work_context}; style: {p.communication_style})"
    )


class OpenAIIntentWriter:
    name = "openai-writer"

    def __init__(self, client: LLMClient) -> None:
        self.client = client
        self.role = client.settings.writer
        self.prompt = load_prompt("intent_writer")
        self.version = f"{self.role.model}/{self.prompt.id}"
        self.failures: list[str] = []  # why each unwritten spec failed, for metadata

    def write(self, specs: Sequence[IntentSpec]) -> list[str | None]:
        """One intent per spec; None where the model never produced a valid one."""
        with ThreadPoolExecutor(max_workers=self.client.settings.max_concurrency) as pool:
            return list(pool.map(self._write_one, specs))

    def _write_one(self, spec: IntentSpec) -> str | None:
        tasks = "\n".join(f"- {t.title}: {t.goal}" for t in spec.tasks)
        text = self.prompt.render(
            persona=describe_persona(spec.persona),
            domains=", ".join(spec.domains),
            complexity=spec.complexity,
            complexity_hint=COMPLEXITY_HINTS.get(spec.complexity, ""),
            tasks=tasks,
        )
        got = ask(self.client, self.role, [{"role": "system", "content": text},
                                           {"role": "user", "content": "Write the request."}],
                  IntentText, prompt_version=self.prompt.id)  # fmt: skip
        if got.value is None:
            self.failures.append(got.error or "invalid answer")
            return None
        return got.value.intent.strip()
