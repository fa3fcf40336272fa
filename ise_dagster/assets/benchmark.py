"""`agent_benchmark`: the configured agent's pass@1 on a fixed sample of the task library."""

import polars as pl
from dagster import AssetExecutionContext, MetadataValue, Output, asset

from ise_dagster.assets.dialogues import stop_on_interrupt
from ise_dagster.config import AgentBenchConfig
from ise_dagster.llm.offline_user import OfflineUserSimulator
from ise_dagster.resources import LLMResource, TaxonomyResource
from ise_dagster.sandbox import SandboxResource
from ise_dagster.stages import agent_bench
from ise_dagster.stages.dialogues import DialogueSettings


@asset(
    io_manager_key="parquet_io_manager",
    group_name="benchmarks",
    kinds={"docker", "parquet"},
    pool="llm",
)
def agent_benchmark(
    context: AssetExecutionContext,
    config: AgentBenchConfig,
    taxonomy: TaxonomyResource,
    llm: LLMResource,
    sandbox: SandboxResource,
) -> Output[pl.DataFrame]:
    """Each sampled task as a one-task intent: the configured user and agent run the dialogue
    in a fresh workspace, then the task's verifier decides. Tells whether a model is good
    enough to generate data; the offline agent is the reference (it passes every task)."""
    tax = taxonomy.load()
    tasks = agent_bench.sample_tasks(tax, config.tasks_per_domain, config.seed, config.domains)
    context.log.info(f"attempting {len(tasks)} tasks ({llm.backend})")
    llm.preflight()
    sandbox.preflight()
    with stop_on_interrupt():
        results = agent_bench.run_benchmark(
            tasks,
            tax,
            sandbox,
            DialogueSettings(max_user_turns=config.max_user_turns),
            user_factory=OfflineUserSimulator
            if config.offline_user
            else llm.user_simulator_factory(),
            agent_factory=llm.agent_factory(),
            concurrency=llm.dialogue_concurrency(config.concurrency),
            progress=context.log.info,
        )
    overall = agent_bench.summary(results).row(-1, named=True)
    context.log.info(f"pass@1 {overall['pass_at_1']:.1%} ({overall['passed']}/{overall['tasks']})")
    return Output(
        results,
        metadata={
            "summary": MetadataValue.md(agent_bench.summary_markdown(results)),
            "pass_at_1": overall["pass_at_1"],
            "tasks": overall["tasks"],
            "passed": overall["passed"],
            "valid_tool_calls": overall["valid_tool_calls"],
            "agent_model": results["agent_model"].drop_nulls().first() or "",
            "user_model": results["user_model"].drop_nulls().first() or "",
            **llm.metadata(),
        },
    )
