"""Run config for the assets and their checks. Defaults are the paper's figures."""

from dagster import Config
from pydantic import Field, model_validator

# The paper: 43,956 unique intents over 10 domains -> 4,396 per domain (43,960 in all).
PAPER_UNIQUE_INTENTS = 43_956
PAPER_VENDI_MPNET = 61.57

# Cosine above which two intents count as near-duplicates. With wordllama-256 embeddings,
# 0.95 catches requests that share most tasks and the same voice; see BENCHMARKS.md.
NEAR_DUP_THRESHOLD = 0.95
# Vendi floors for wordllama-256 (measured: about 14.7 at n=60, 25.6 at n=4,396 per domain,
# 36.9 over the full pool). A writer that repeats itself scores 1-3.
MIN_PARTITION_VENDI = 10.0
MIN_POOL_VENDI = 25.0


class ComplexityMix(Config):
    simple: float = Field(default=0.10, ge=0, le=1)
    medium: float = Field(default=0.40, ge=0, le=1)
    complex: float = Field(default=0.50, ge=0, le=1)

    @model_validator(mode="after")
    def _sums_to_one(self) -> "ComplexityMix":
        total = self.simple + self.medium + self.complex
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"complexity mix must sum to 1, got {total:.4f}")
        return self

    def as_dict(self) -> dict[str, float]:
        return {"simple": self.simple, "medium": self.medium, "complex": self.complex}


class IntentsConfig(Config):
    intents_per_domain: int = Field(
        default=4_396, ge=1, le=1_000_000, description="Unique intents to keep per domain."
    )
    seed: int = Field(default=0, ge=0, description="Sampling seed; with the domain, fixes rows.")
    near_dup_threshold: float = Field(
        default=NEAR_DUP_THRESHOLD,
        gt=0,
        le=1,
        description="Cosine above which an intent is a near-duplicate.",
    )
    complexity_mix: ComplexityMix = Field(default_factory=ComplexityMix)


class IntentChecksConfig(Config):
    complexity_mix: ComplexityMix = Field(default_factory=ComplexityMix)
    mix_tolerance: float = Field(default=0.03, ge=0, le=1)
    near_dup_threshold: float = Field(default=NEAR_DUP_THRESHOLD, gt=0, le=1)
    max_near_dup_rate: float = Field(default=0.0, ge=0, le=1)
    min_vendi: float = Field(default=MIN_PARTITION_VENDI, ge=0)


class IntentPoolConfig(Config):
    near_dup_threshold: float = Field(default=NEAR_DUP_THRESHOLD, gt=0, le=1)


class IntentPoolTargets(Config):
    min_unique_intents: int = Field(default=PAPER_UNIQUE_INTENTS, ge=0)
    min_vendi: float = Field(default=MIN_POOL_VENDI, ge=0)
    max_cross_domain_near_dup_rate: float = Field(default=0.01, ge=0, le=1)


# The paper's Stage 2 figures (ISETrace, 23,132 trajectories).
PAPER_USER_TURNS_MEAN = 8.12
PAPER_USER_TURNS_MEDIAN = 8
PAPER_SHARE_6_TO_10 = 0.911
PAPER_TOTAL_TURNS_MEAN = 68.24
PAPER_TOOL_CALLS_MEAN = 29.26
PAPER_DISTINCT_TOOLS_MEAN = 4.69


class DialoguesConfig(Config):
    dialogues_per_partition: int = Field(
        default=10, ge=0, le=100_000, description="Intents simulated per date|domain partition."
    )
    seed: int = Field(default=0, ge=0, description="Fixes which intents each date takes.")
    concurrency: int = Field(default=4, ge=1, le=64, description="Dialogues run in parallel.")
    max_user_turns: int = Field(
        default=23, ge=1, le=200, description="Turn cap; dialogues needing more are discarded."
    )


class AgentBenchConfig(Config):
    tasks_per_domain: int | None = Field(
        default=3, ge=1, description="Tasks sampled per domain (null: all 131)."
    )
    domains: list[str] = Field(default=[], description="Only these domains (empty: all).")
    seed: int = Field(default=0, ge=0, description="Fixes which tasks are sampled.")
    concurrency: int = Field(default=2, ge=1, le=64, description="Tasks attempted in parallel.")
    max_user_turns: int = Field(default=23, ge=1, le=200, description="Turn cap per attempt.")
    offline_user: bool = Field(
        default=False,
        description="Pair the agent under test with the offline user simulator, so the score "
        "is the agent's alone (default: the configured user, as in a data run).",
    )


class ExecutedTracesConfig(Config):
    concurrency: int = Field(default=4, ge=1, le=64, description="Replays run in parallel.")


class DialogueTargets(Config):
    """Targets for the dialogue checks: the paper's means, with a relative tolerance that
    widens to three standard errors on small partitions."""

    user_turns_mean: float = PAPER_USER_TURNS_MEAN
    user_turns_median: float = PAPER_USER_TURNS_MEDIAN
    share_6_to_10: float = PAPER_SHARE_6_TO_10
    total_turns_mean: float = PAPER_TOTAL_TURNS_MEAN
    tool_calls_mean: float = PAPER_TOOL_CALLS_MEAN
    distinct_tools_mean: float = PAPER_DISTINCT_TOOLS_MEAN
    rel_tolerance: float = Field(default=0.05, ge=0, le=1)
    max_role_drift_rate: float = Field(default=0.01, ge=0, le=1)


class TraceTargets(Config):
    min_reproducible_rate: float = Field(default=0.95, ge=0, le=1)
    min_verified_rate: float = Field(default=0.8, ge=0, le=1)
    min_recovery_share: float = Field(
        default=0.5, ge=0, le=1, description="Share of trajectories with a recovered failure."
    )


# Above the p95 (~12k) and max (~15k) of offline trajectories; see SftDatasetConfig.
SFT_MAX_TOKENS = 16_384


class SftDatasetConfig(Config):
    """Which trajectories become training records. Widen it to keep failed ones with their
    labels (preference or RL data): keep_labels=["verified", "failed"]."""

    keep_statuses: list[str] = Field(default=["completed"], description="Stage 2 statuses kept.")
    keep_labels: list[str] = Field(
        default=["verified"], description="Stage 3 labels kept (verified | failed | ...)."
    )
    max_tokens: int = Field(
        default=SFT_MAX_TOKENS, ge=1, description="Token budget per record (characters / 4)."
    )
    keep_malformed_calls: bool = Field(
        default=False, description="Keep records with a tool call whose arguments are not JSON."
    )


class SftExportConfig(Config):
    out_dir: str | None = Field(
        default=None, description="Export directory; default <data dir>/exports/<date>."
    )
    format: str = Field(
        default="both", pattern="^(openai|hf|both)$", description="openai | hf | both"
    )
    split_parallel_calls: bool = Field(
        default=False,
        description="One tool call per assistant turn, for templates such as Llama 3.1's.",
    )


class SftTargets(Config):
    max_tokens: int = Field(default=SFT_MAX_TOKENS, ge=1, description="The budget lengths obey.")
