"""Dagster resources: the edges where taxonomy files, models and embedders come in."""

import os
from typing import Literal

from dagster import ConfigurableResource
from pydantic import Field

from ise_dagster.diversity.embed import DEFAULT_EMBEDDER, Embedder, get_embedder
from ise_dagster.llm.offline_user import OfflineUserSimulator
from ise_dagster.llm.offline_writer import OfflineIntentWriter
from ise_dagster.llm.playbook_agent import PlaybookAgent
from ise_dagster.llm.writer import IntentWriter
from ise_dagster.stages.dialogues import AgentFactory, UserFactory
from ise_dagster.taxonomy import Taxonomy, load_taxonomy


class TaxonomyResource(ConfigurableResource):
    """The 4D taxonomy; the shipped files unless `data_dir` points elsewhere."""

    data_dir: str | None = Field(default=None, description="Directory of taxonomy JSON files.")

    def load(self) -> Taxonomy:
        return load_taxonomy(self.data_dir)


class GeneratorResource(ConfigurableResource):
    """Chooses the text-generation backend, in one place."""

    backend: Literal["offline", "openai"] = Field(
        default_factory=lambda: os.environ.get("ISE_LLM_BACKEND", "offline"),
        description="'offline' (embedded, no key, no network) or 'openai' (any compatible server).",
    )

    def intent_writer(self, taxonomy: Taxonomy) -> IntentWriter:
        self._offline_only()
        return OfflineIntentWriter(taxonomy)

    def user_simulator_factory(self) -> UserFactory:
        self._offline_only()
        return OfflineUserSimulator

    def agent_factory(self) -> AgentFactory:
        self._offline_only()
        return PlaybookAgent

    def _offline_only(self) -> None:
        if self.backend != "offline":
            raise NotImplementedError(
                f"the {self.backend!r} backend is not built yet; use 'offline' "
                "(leave ISE_LLM_BACKEND unset)"
            )


class EmbedderResource(ConfigurableResource):
    """The sentence embedder used for dedup and the Vendi score."""

    model: str = Field(
        default=DEFAULT_EMBEDDER,
        description="'wordllama-256' (default, no torch) or 'st:<local sentence-transformers "
        "model dir>', e.g. an unpacked all-mpnet-base-v2 to compare with the paper.",
    )

    def get(self) -> Embedder:
        return get_embedder(self.model)
