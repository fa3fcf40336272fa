"""The dataset card: a Hugging Face Hub README (YAML front matter, then Markdown) computed
from the exported records' metadata columns."""

from __future__ import annotations

import inspect
from collections.abc import Iterable

import polars as pl

from ise_dagster.sft.records import chat_inputs
from ise_dagster.stages.report import counts_table, paper_table

LICENSE = "apache-2.0"  # the project's; the offline generator's text is ours to license
_SIZES = [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"),
          (1_000_000, "100K<n<1M")]  # fmt: skip


def size_category(n: int) -> str:
    return next((name for limit, name in _SIZES if n < limit), "1M<n<10M")


def stats_table(records: pl.DataFrame) -> str:
    """Turn and tool statistics of the records next to the paper's."""
    frame = records.rename({"total_steps": "tool_calls"}).with_columns(status=pl.lit("completed"))
    return paper_table(frame, "this dataset")


def length_summary(tokens: pl.Series) -> dict[str, int]:
    if tokens.len() == 0:
        return {"min": 0, "median": 0, "p95": 0, "max": 0}
    return {
        "min": int(tokens.min()),
        "median": int(tokens.median()),
        "p95": int(tokens.quantile(0.95, interpolation="higher")),
        "max": int(tokens.max()),
    }


def dataset_card(
    records: pl.DataFrame, *, title: str, formats: Iterable[str], split_parallel: bool
) -> str:
    """`records`: the exported rows' metadata columns (everything but messages and tools)."""
    n = records.height
    dates = sorted(set(records["date"])) if n else []
    models = sorted(
        set(records["user_model"].drop_nulls()) | set(records["agent_model"].drop_nulls())
    )
    generators = sorted(set(records["generator"].drop_nulls()))
    lengths = length_summary(records["approx_tokens"])
    parallel = int(records["parallel_call_turns"].sum()) if n else 0
    front = "\n".join([
        "---",
        f"license: {LICENSE}",
        "language:\n- en",
        f"pretty_name: {title}",
        f"size_categories:\n- {size_category(n)}",
        "task_categories:\n- text-generation",
        "tags:\n- agents\n- tool-use\n- function-calling\n- synthetic\n- os-agent",
        "configs:\n- config_name: default\n  data_files:\n  - split: train\n"
        "    path: data/train-*.parquet",
        "---",
    ])  # fmt: skip
    files = []
    if "hf" in formats:
        files.append("`data/train-*.parquet` (Hugging Face `datasets`)")
    if "openai" in formats:
        files.append("`openai/train.jsonl` (OpenAI fine-tuning, tool calling)")
    template_note = (
        "Parallel tool calls were split into consecutive assistant turns (one call each, each "
        "followed by its result), so templates that refuse parallel calls render every record."
        if split_parallel
        else f"{parallel} assistant turns carry 2 or more parallel tool calls. Qwen2.5 Instruct's "
        "template renders them; Llama 3.1 Instruct's refuses them (\"This model only supports "
        'single tool-calls at once!"): export with `--split-parallel-calls` for such templates.'
    )
    loader = inspect.getsource(chat_inputs)
    body = f"""
# {title}

Multi-turn, tool-using trajectories of an OS agent, synthesized with ISE (Intent -> Simulate ->
Execute) by ise-dagster. A role-locked user simulator delegates a
persona's request turn by turn; the agent's tool calls ran live in a sandboxed Docker
workspace; every call was then replayed in a fresh workspace and each task's verifier judged
the result. Tool messages hold the **replayed** output.

## Contents

- records: {n}
- dates: {", ".join(dates) or "none"}
- generator: {", ".join(generators) or "none"}; models: {", ".join(models) or "none"}
- files: {"; ".join(files)}
- length (tokens estimated as characters of the JSON record / 4): min {lengths["min"]},
  median {lengths["median"]}, p95 {lengths["p95"]}, max {lengths["max"]}

## Turn and tool statistics

{stats_table(records) if n else "No records."}

## Labels

Stage 3 labels each trajectory `verified` (every task verifier passed on the replayed
workspace), `failed` or `non_reproducible`, and each tool call `ok`, `failed` or `recovered`
(`step_labels`, in call order).

{counts_table(records, "label")}

## Domains

{counts_table(records, "domain")}

## Loading

```python
import json

from datasets import load_dataset

{loader}
ds = load_dataset("parquet", data_files="data/train-*.parquet", split="train")
messages, tools = chat_inputs(ds[0])  # arguments as dicts, Arrow's null keys dropped
text = tokenizer.apply_chat_template(messages, tools=tools, tokenize=False)
```

In the Parquet file `tool_calls[].function.arguments` and `tools[].function.parameters` are
JSON strings: as structs, Arrow would give every call every other tool's argument keys as
nulls. `chat_inputs` (above, and `ise_dagster.sft.records.chat_inputs`) restores each record
exactly as it was recorded. Apply it where the text is rendered (for TRL, in a
`formatting_func` or a `map` to a text column): a `map` that returns the message dicts goes
back through Arrow and brings the null keys back. The JSONL file is ready for OpenAI's
fine-tuning API as it is.

## Chat templates

{template_note}
"""
    return front + "\n" + body
