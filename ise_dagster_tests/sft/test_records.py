"""Training records: the selection policy, the three shapes a record travels in, and the
round trip through Parquet that must give back exactly what was recorded."""

import json

import polars as pl
import pytest

from ise_dagster import schemas
from ise_dagster.llm.tools import TOOL_SCHEMAS
from ise_dagster.sft.openai_format import openai_format_errors
from ise_dagster.sft.records import (
    canonical_messages,
    chat_inputs,
    openai_jsonl_lines,
    split_parallel_calls,
    structure_problems,
    to_openai,
)
from ise_dagster.sft.templates import TEMPLATES, render, render_problems
from ise_dagster.stages.sft import SftPolicy, build_sft_dataset
from ise_dagster_tests.sft.fixtures import dialogue_row, frames, stage2_messages, trace_row


def _dataset(**policy):
    d = dialogue_row("traj-1", stage2_messages())
    dialogues, traces = frames([d], [trace_row(d, replayed=" [replayed]")])
    return build_sft_dataset(dialogues, traces, SftPolicy(**policy))


def test_tool_messages_carry_the_replayed_observation_and_no_success_flag():
    record = _dataset().frame.row(0, named=True)
    tool_messages = [m for m in record["messages"] if m["role"] == "tool"]
    assert len(tool_messages) == 4
    stdout = [json.loads(m["content"]).get("stdout", "") for m in tool_messages]
    assert stdout[0] == "a.csv\nb.csv\n [replayed]"  # Stage 3's text, not Stage 2's
    assert all(m.get("success") is None for m in record["messages"])
    assert record["step_labels"] == ["ok", "ok", "ok", "failed"]
    assert record["total_steps"] == 4 and record["parallel_call_turns"] == 1
    assert record["label"] == "verified" and record["complexity"] == "medium"


def test_the_policy_drops_and_counts_every_reason():
    ok = dialogue_row("keep", stage2_messages("keep"))
    rows = [
        ok,
        dialogue_row("dup", stage2_messages("keep")),  # same messages as "keep"
        dialogue_row("unfinished", stage2_messages("u"), status="context_length"),
        dialogue_row("no-trace", stage2_messages("n")),
        dialogue_row("failed", stage2_messages("f")),
        dialogue_row("idle", [*stage2_messages("i")[:2], {"role": "assistant", "content": "ok"}]),
        dialogue_row("long", stage2_messages("L" * 80_000)),
    ]
    broken = stage2_messages("m")
    broken[2]["tool_calls"][0]["function"]["arguments"] = "{cmd: ls"
    rows.append(dialogue_row("malformed", broken))
    orphan = stage2_messages("o")
    rows += [dialogue_row("orphan", orphan), dialogue_row("garbled", stage2_messages("g"))]
    traces = [trace_row(r, label="failed" if r["trajectory_id"] == "failed" else "verified")
              for r in rows if r["trajectory_id"] not in ("no-trace", "unfinished")]  # fmt: skip
    rows[-1]["messages"] = "[{not json"
    orphan[3]["tool_call_id"] = "call_77"  # a result that answers no call
    rows[-2]["messages"] = json.dumps(orphan)
    built = build_sft_dataset(*frames(rows, traces))
    assert built.frame["trajectory_id"].to_list() == ["keep"]
    assert dict(built.dropped) == {
        "duplicate": 1, "status_context_length": 1, "no_executed_trace": 1,
        "label_failed": 1, "no_tool_calls": 1, "over_token_budget": 1,
        "malformed_tool_call": 1, "unmatched_tool_call_id": 1, "unparseable_messages": 1,
    }  # fmt: skip
    assert built.examples["label_failed"] == ["failed"]


def test_a_wider_policy_keeps_failed_trajectories_with_their_label():
    d = dialogue_row("f", stage2_messages())
    built = build_sft_dataset(*frames([d], [trace_row(d, label="failed")]),
                              SftPolicy(labels=("verified", "failed")))  # fmt: skip
    assert built.frame["label"].to_list() == ["failed"]


def test_an_empty_upstream_gives_an_empty_valid_dataset():
    built = build_sft_dataset(*frames([], []))
    assert built.frame.height == 0 and built.frame.schema == schemas.SFT_DATASET


def test_a_trace_written_before_observations_were_recorded_is_dropped_not_guessed():
    d = dialogue_row("old", stage2_messages())
    t = trace_row(d)
    for step in t["steps"]:
        step["observation"] = None
    assert dict(build_sft_dataset(*frames([d], [t])).dropped) == {"trace_lacks_observations": 1}


def test_parquet_round_trip_is_exact_key_for_key(tmp_path):
    """Arrow gives every message every key and every call every field; chat_inputs must take
    back exactly what was recorded, arguments as the dicts the agent sent."""
    d = dialogue_row("traj-1", stage2_messages())
    trace = trace_row(d)
    raw = json.loads(d["messages"])
    calls = [c for m in raw for c in m.get("tool_calls") or []]
    recorded = canonical_messages(
        raw, {c["id"]: s["observation"] for c, s in zip(calls, trace["steps"], strict=True)}
    )
    for m in recorded:
        for c in m.get("tool_calls", []):
            c["function"]["arguments"] = json.loads(c["function"]["arguments"])
    path = tmp_path / "sft.parquet"
    build_sft_dataset(*frames([d], [trace])).frame.write_parquet(path)
    loaded = pl.read_parquet(path).row(0, named=True)
    assert loaded["messages"][1]["tool_calls"] is None  # what Arrow does to a user message
    messages, tools = chat_inputs(loaded)
    assert messages == recorded
    assert messages[2]["tool_calls"][1]["function"]["arguments"] == {"path": "t1/a.csv"}
    assert [set(m) for m in messages[2:4]] == [
        {"role", "content", "tool_calls"}, {"role", "tool_call_id", "name", "content"}
    ]  # fmt: skip
    assert tools == TOOL_SCHEMAS  # parameters back as the JSON schemas they were


def test_the_openai_line_is_valid_and_carries_only_documented_keys():
    line = to_openai(_dataset().frame.row(0, named=True))
    assert openai_format_errors(line) == []
    assert all("success" not in m and "name" not in m for m in line["messages"])
    first_calls = line["messages"][2]
    assert "content" not in first_calls  # empty text beside tool calls is left out
    assert isinstance(first_calls["tool_calls"][0]["function"]["arguments"], str)


@pytest.mark.parametrize(
    "mutate, error",
    [
        (lambda line: line["messages"][3].update(success=True), "not allowed on a tool"),
        (lambda line: line["messages"].pop(3), "never answered"),
        (lambda line: line["messages"][2]["tool_calls"][0]["function"].update(arguments={}),
         "JSON string"),
        (lambda line: line["messages"][3].update(tool_call_id="call_99"), "answers no call"),
        (lambda line: line["messages"][9].update(content=""), "neither content nor tool_calls"),
        (lambda line: line.update(metadata={}), "unknown top-level keys"),
    ],
)  # fmt: skip
def test_the_openai_validator_catches_what_the_api_rejects(mutate, error):
    line = to_openai(_dataset().frame.row(0, named=True))
    mutate(line)
    assert any(error in e for e in openai_format_errors(line)), openai_format_errors(line)


def test_the_columnar_jsonl_writer_equals_to_openai_record_by_record():
    rows = [dialogue_row(f"t{i}", stage2_messages(f'é ✓ \t\x01 \\" {i}')) for i in range(3)]
    frame = build_sft_dataset(*frames(rows, [trace_row(r) for r in rows])).frame
    lines = openai_jsonl_lines(frame)
    assert [json.loads(line) for line in lines] == [
        to_openai(r) for r in frame.iter_rows(named=True)
    ]
    assert "é ✓" in lines[0]  # UTF-8 as it is, as json.dumps(ensure_ascii=False) writes it


def test_splitting_parallel_calls_gives_one_call_per_turn_each_followed_by_its_result():
    messages, _ = chat_inputs(_dataset().frame.row(0, named=True))
    split = split_parallel_calls(messages)
    assert len(split) == len(messages) + 1
    assert all(len(m.get("tool_calls") or []) <= 1 for m in split)
    assert structure_problems(split) == []
    assert split[2]["tool_calls"][0]["id"] == "call_0" and split[3]["tool_call_id"] == "call_0"
    assert split[4]["tool_calls"][0]["id"] == "call_1" and split[5]["tool_call_id"] == "call_1"
    assert split[4]["content"] == ""


def test_structure_problems_name_what_a_template_would_trip_on():
    messages, _ = chat_inputs(_dataset().frame.row(0, named=True))
    assert structure_problems(messages) == []
    assert structure_problems([*messages[:3], messages[4], *messages[5:]]) == [
        "message 2: call call_0 has no result"
    ]
    assert structure_problems([*messages[:2], {"role": "assistant", "content": " "}]) == [
        "message 2: empty assistant turn"
    ]


def test_every_shipped_template_renders_the_record():
    row = _dataset().frame.row(0, named=True)
    assert render_problems(row) == []
    messages, tools = chat_inputs(row)
    qwen = render("qwen2.5-instruct", messages, tools)
    assert qwen.count('<tool_call>\n{"name": "') == 4 and qwen.count("<tool_response>") == 4
    assert '"arguments": {"path": "t1/a.csv"}' in qwen  # a dict, not a double-encoded string
    llama = render("llama3.1-instruct", split_parallel_calls(messages), tools)
    assert '"parameters": {"path": "t1/a.csv"}' in llama
    assert '"name": "exec"' in llama and "Environment: ipython" in llama


def test_llama_refuses_parallel_calls_so_the_check_splits_them():
    import jinja2

    messages, tools = chat_inputs(_dataset().frame.row(0, named=True))
    assert not TEMPLATES["llama3.1-instruct"].parallel_calls
    with pytest.raises(jinja2.TemplateError, match="only supports single tool-calls"):
        render("llama3.1-instruct", messages, tools)


def test_render_problems_reports_a_record_a_template_cannot_take():
    row = _dataset().frame.row(0, named=True)
    messages = [dict(m) for m in row["messages"]]
    messages.insert(3, {**messages[9], "content": ""})  # an empty assistant turn mid-batch
    problems = render_problems({**row, "messages": messages})
    assert any("empty assistant turn" in p for p in problems)


def test_the_shipped_templates_are_the_verbatim_copies_sources_md_names():
    import hashlib

    from ise_dagster.sft.templates import TEMPLATE_DIR

    sources = (TEMPLATE_DIR / "SOURCES.md").read_text()
    for t in TEMPLATES.values():
        digest = hashlib.sha256((TEMPLATE_DIR / t.file).read_bytes()).hexdigest()
        assert f"`{t.file}`" in sources and f"`{digest}`" in sources, t.file


@pytest.mark.parametrize("name", list(TEMPLATES))
def test_render_is_what_transformers_apply_chat_template_gives(name):
    """The check's renderer must be the trainer's: transformers' own Jinja environment, on a
    tokenizer that only carries the template (no weights, no hub)."""
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast

    t = TEMPLATES[name]
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer(WordLevel({"[UNK]": 0}, unk_token="[UNK]")),
        bos_token=t.bos_token or None,
        eos_token=t.eos_token or None,
    )
    tokenizer.chat_template = t.source
    messages, tools = chat_inputs(_dataset().frame.row(0, named=True))
    if not t.parallel_calls:
        messages = split_parallel_calls(messages)
    expected = tokenizer.apply_chat_template(messages, tools=tools, tokenize=False)
    assert render(name, messages, tools) == expected
