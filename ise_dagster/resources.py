"""Dagster resources: the edges where taxonomy files, models and embedders come in."""

import hashlib
from pathlib import Path
from typing import Literal

from dagster import ConfigurableResource, InitResourceContext, MetadataValue
from pydantic import Field, PrivateAttr

from ise_dagster import schemas
from ise_dagster.diversity.embed import DEFAULT_EMBEDDER, Embedder, get_embedder
from ise_dagster.io.parquet import data_dir
from ise_dagster.llm.cache import DialogueCheckpoint
from ise_dagster.llm.client import LLMClient
from ise_dagster.llm.offline_user import OfflineUserSimulator
from ise_dagster.llm.offline_writer import OfflineIntentWriter
from ise_dagster.llm.openai_agent import OpenAIAgent
from ise_dagster.llm.openai_user import OpenAIUserSimulator
from ise_dagster.llm.openai_writer import OpenAIIntentWriter
from ise_dagster.llm.playbook_agent import PlaybookAgent
from ise_dagster.llm.prompts import load_prompt
from ise_dagster.llm.settings import LLMSettings, env_choice
from ise_dagster.llm.tools import TOOL_SCHEMAS
from ise_dagster.llm.writer import IntentWriter
from ise_dagster.partitions import DOMAINS
from ise_dagster.stages import dialogues as dialogue_stage
from ise_dagster.stages import guards
from ise_dagster.stages.dialogues import AgentFactory, Checkpoint, UserFactory
from ise_dagster.tasklib.registry import library_digest
from ise_dagster.taxonomy import Taxonomy, load_taxonomy
from ise_dagster.taxonomy.load import TaxonomyError


class TaxonomyResource(ConfigurableResource):
    """The 4D taxonomy; the shipped files unless `data_dir` points elsewhere."""

    data_dir: str | None = Field(default=None, description="Directory of taxonomy JSON files.")

    def load(self) -> Taxonomy:
        taxonomy = load_taxonomy(self.data_dir)
        # Partitions are fixed when the definitions load, from the packaged taxonomy: another
        # taxonomy must name the same domains, or partitions and data would disagree.
        if self.data_dir and list(taxonomy.domain_ids) != list(DOMAINS):
            raise TaxonomyError(
                Path(self.data_dir) / "domains.json", "domains",
                f"{list(taxonomy.domain_ids)} differ from the partitions' {list(DOMAINS)} "
                "(built from the packaged taxonomy); keep the same domain ids, or change "
                "the packaged domains.json so the partitions change with it",
            )  # fmt: skip
        return taxonomy


Backend = Literal["offline", "openai"]


class LLMResource(ConfigurableResource, LLMSettings):
    """The text-generation backend, in one place: the embedded offline one (default: no key,
    no network) or any OpenAI-compatible server, with separate settings for the intent
    writer, the user simulator and the agent. See `LLMSettings` for every field."""

    backend: Backend = Field(
        default_factory=lambda: env_choice("ISE_LLM_BACKEND", Backend, "offline"),
        description="'offline' (embedded, no key, no network) or 'openai' (any compatible "
        "server: OpenAI, vLLM, SGLang, Ollama, llama.cpp).",
    )
    _client: LLMClient | None = PrivateAttr(default=None)

    def client(self) -> LLMClient:
        if self._client is None:
            cache_dir = Path(self.cache_dir or Path(data_dir()) / "llm_cache")
            self._client = LLMClient(self, cache_dir=cache_dir)
        return self._client

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        if self._client is not None:
            self._client.close()

    def intent_writer(self, taxonomy: Taxonomy) -> IntentWriter:
        if self.backend == "offline":
            return OfflineIntentWriter(taxonomy)
        return OpenAIIntentWriter(self.client())

    def user_simulator_factory(self) -> UserFactory:
        if self.backend == "offline":
            return OfflineUserSimulator
        client = self.client()
        return lambda taxonomy, seed: OpenAIUserSimulator(client, taxonomy, seed)

    def agent_factory(self) -> AgentFactory:
        if self.backend == "offline":
            return PlaybookAgent
        client = self.client()
        return lambda recipes, contexts: OpenAIAgent(client, recipes, contexts)

    def dialogue_concurrency(self, wanted: int) -> int:
        """Dialogues to run at once. No more than the server takes requests: on a one-slot
        server (llama.cpp, max_concurrency 1) interleaved dialogues evict each other's
        prompt from its cache, so every call re-evaluates the whole prompt."""
        return wanted if self.backend == "offline" else max(1, min(wanted, self.max_concurrency))

    def preflight(self) -> None:
        """One clear error up front for a wrong key, URL or model, before any work."""
        if self.backend == "openai":
            for role in {self.writer.model, self.user.model, self.agent.model}:
                self.client().preflight(role)

    def dialogue_checkpoint(self) -> Checkpoint | None:
        """Finished dialogues survive a killed run (model calls are worth keeping)."""
        client = self.client()
        if self.backend == "offline" or client.cache is None:
            return None
        generator = self.model_dump(include={"base_url", "structured_output", "max_repairs",
                                             "max_agent_steps", "force_first_tool", "tool_results",
                                             "writer", "user", "agent"})  # fmt: skip
        generator["prompts"] = [load_prompt(n).id for n in ("user_simulator", "agent")]
        # What the tools do and what a stored row holds, not only who called them.
        generator["tools"] = TOOL_SCHEMAS
        generator["task_library"] = library_digest()
        generator["row_schema"] = list(schemas.DIALOGUES.names())
        # How a dialogue is run and labelled: a new guard must not serve old "completed" rows.
        generator["labelling"] = hashlib.sha256(
            b"".join(Path(m.__file__).read_bytes() for m in (dialogue_stage, guards))
        ).hexdigest()[:16]
        return DialogueCheckpoint(client.cache, generator)

    def metadata(self) -> dict[str, object]:
        """Calls, tokens, cost and cache figures of this step, for the materialization."""
        if self.backend == "offline":
            return {"llm_backend": "offline"}
        usage = self.client().total.as_dict()
        malformed = usage.pop("malformed_tool_calls")
        return {
            "llm_backend": "openai",
            "llm_models": ", ".join(
                sorted({self.writer.model, self.user.model, self.agent.model})
            ),  # fmt: skip
            **{f"llm_{k}": v for k, v in usage.items()},
            "llm_malformed_tool_calls": MetadataValue.json(malformed),
            "llm_cache_dir": str(self.client().cache_dir or ""),
        }


class EmbedderResource(ConfigurableResource):
    """The sentence embedder used for dedup and the Vendi score."""

    model: str = Field(
        default=DEFAULT_EMBEDDER,
        description="'wordllama-256' (default, no torch); 'all-mpnet-base-v2', the paper's "
        "embedder, to compare with its Vendi (numpy, from its PyPI parts; slow on a CPU); or "
        "'st:<local sentence-transformers model dir>'.",
    )

    def get(self) -> Embedder:
        return get_embedder(self.model)
