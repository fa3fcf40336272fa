"""Run config for the assets and their checks. Defaults are the paper's figures."""

from dagster import Config
from pydantic import Field, model_validator

# The paper: 43,956 unique intents over 10 domains -> 4,396 per domain (43,960 in all).
PAPER_UNIQUE_INTENTS = 43_956
PAPER_VENDI_MPNET = 61.57

# Cosine above which two intents count as near-duplicates. With wordllama-256 embeddings,
# 0.95 catches requests that share most tasks and the same voice; see BENCHMARKS.md.
NEAR_DUP_THRESHOLD = 0.95
# Vendi floors for wordllama-256 (measured: about 12.5 at n=60, 22.5 at n=4,396 per domain,
# 31 over the full pool). A writer that repeats itself scores 1-3.
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
