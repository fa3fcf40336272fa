"""The code location: every asset, check, job, schedule and resource of ise-dagster."""

from dagster import (
    Definitions,
    in_process_executor,
    load_asset_checks_from_modules,
    load_assets_from_modules,
)

from ise_dagster.assets import benchmark as benchmark_assets
from ise_dagster.assets import dialogues as stage23_assets
from ise_dagster.assets import intents as intent_assets
from ise_dagster.assets import sft as sft_assets
from ise_dagster.checks import dialogues as dialogue_checks
from ise_dagster.checks import intents as intent_checks
from ise_dagster.checks import sft as sft_checks
from ise_dagster.checks import traces as trace_checks
from ise_dagster.io.parquet import ParquetIOManager
from ise_dagster.jobs import (
    agent_bench_job,
    export_job,
    intent_pool_job,
    intents_job,
    nightly_job,
    nightly_schedule,
)
from ise_dagster.resources import EmbedderResource, LLMResource, TaxonomyResource
from ise_dagster.sandbox import SandboxResource

defs = Definitions(
    assets=load_assets_from_modules([intent_assets, stage23_assets, sft_assets, benchmark_assets]),
    asset_checks=load_asset_checks_from_modules(
        [intent_checks, dialogue_checks, trace_checks, sft_checks]
    ),
    jobs=[intents_job, intent_pool_job, nightly_job, export_job, agent_bench_job],
    schedules=[nightly_schedule],
    # One process per run, not per step: a date|domain run is a chain of 3 assets and 17
    # cheap checks, and a subprocess each cost 10-25 s on 2 cores (issue 15's measurement).
    # Resources (the Docker client, the embedder) are then set up once per run.
    executor=in_process_executor,
    resources={
        "parquet_io_manager": ParquetIOManager(),
        "taxonomy": TaxonomyResource(),
        "llm": LLMResource(),
        "embedder": EmbedderResource(),
        "sandbox": SandboxResource(),
    },
)
