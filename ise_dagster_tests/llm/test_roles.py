"""Structured output, the agent loop and the user simulator against a scripted server."""

from __future__ import annotations

import json

import pytest

from ise_dagster.llm.client import ContextLengthError
from ise_dagster.llm.openai_agent import OpenAIAgent, elide_old_tool_outputs
from ise_dagster.llm.openai_user import OpenAIUserSimulator, UserOutputError
from ise_dagster.llm.openai_writer import IntentText
from ise_dagster.llm.simulator import UserTurn, UserView
from ise_dagster.llm.structured import ask, parse, response_format
from ise_dagster.llm.tools import RejectedCall, calls_in_text
from ise_dagster.sandbox import ToolResult
from ise_dagster.stages.dialogues import LiveTools, Transcript
from ise_dagster.tasklib.base import Ctx
from ise_dagster.taxonomy.models import Persona
from ise_dagster_tests.llm.scripted_server import completion, error
from ise_dagster_tests.llm.test_client import scripted  # noqa: F401  (fixture)

GOOD = '{"intent": "Please tidy the reports folder and summarise it for me."}'


def _ask(client):
    msgs = [{"role": "system", "content": "write"}, {"role": "user", "content": "go"}]
    return ask(client, client.settings.writer, msgs, IntentText, prompt_version="t")


def test_invalid_answers_are_repaired_with_the_error_fed_back(scripted):  # noqa: F811
    script, make = scripted
    script.queue.extend([completion("not json"), completion('{"intent": "short"}'),
                         completion(GOOD)])  # fmt: skip
    client = make()
    got = _ask(client)
    assert got.value is not None and got.attempts == 3
    assert "That answer was invalid" in script.requests[1]["messages"][-1]["content"]
    assert "intent" in script.requests[2]["messages"][-1]["content"]  # names the field
    assert client.total.invalid_outputs == 2 and client.total.failed_outputs == 0


def test_answers_that_stay_invalid_become_a_labeled_failure(scripted):  # noqa: F811
    script, make = scripted
    script.default = completion(None, refusal="I can't help with that")
    client = make(max_repairs=1)
    got = _ask(client)
    assert got.value is None and "refused" in got.error
    assert client.total.failed_outputs == 1 and len(script.requests) == 2


def test_a_repair_that_overflows_the_context_is_a_labeled_failure(scripted):  # noqa: F811
    script, make = scripted
    overflow = error(400, "Requested tokens (2300) exceed context window of 2048")
    script.queue.extend([completion("not json"), overflow])
    got = _ask(make())
    assert got.value is None and "overflowed the context" in got.error and got.attempts == 2
    # The prompt alone overflowing is a setup problem, so that still raises.
    script.queue.append(overflow)
    with pytest.raises(ContextLengthError):
        _ask(make(cache=False))


@pytest.mark.parametrize("mode", ["json_schema", "json_object", "plain"])
def test_each_structured_mode_sends_what_its_servers_take(scripted, mode):  # noqa: F811
    script, make = scripted
    script.queue.append(completion(f"Sure! ```json\n{GOOD}\n```" if mode == "plain" else GOOD))
    got = _ask(make(structured_output=mode))
    assert got.value is not None
    sent = script.requests[0]
    fmt = response_format(mode, IntentText)
    assert sent.get("response_format") == fmt
    schema_in_prompt = "JSON schema" in sent["messages"][0]["content"]
    assert schema_in_prompt == (mode != "json_schema")


def test_parse_rejects_empty_and_finds_json_in_prose():
    with pytest.raises(ValueError, match="empty"):
        parse("  ", IntentText)
    assert parse(f"Here you go: {GOOD} Thanks", IntentText).intent.startswith("Please")


class _FakeWorkspace:
    """Records calls; the real sandbox is exercised in test_llm_pipeline.py."""

    def __init__(self):
        self.calls = []

    def call(self, tool, args):
        self.calls.append((tool, args))
        return ToolResult(tool=tool, ok=True, exit_code=0, stdout="a.txt\n")


def _agent(client):
    transcript = Transcript()
    agent = OpenAIAgent(client, [], [Ctx("task-a")])
    transcript.add("system", agent.system_prompt)
    transcript.add("user", "list the files")
    ws = _FakeWorkspace()
    return agent, LiveTools(ws, transcript), transcript, ws


def _tc(name, arguments):
    return {"name": name, "arguments": arguments}


def test_malformed_tool_calls_become_error_results_the_agent_sees(scripted):  # noqa: F811
    script, make = scripted
    script.queue.extend([
        completion(None, [_tc("exec", '{"cmd": "ls'), _tc("browse", "{}"),
                          _tc("read", '{"path": 3}'), _tc("exec", '{"cmd": "ls"}')],
                   finish="tool_calls"),
        completion("There is one file, a.txt."),
    ])  # fmt: skip
    client = make()
    agent, tools, transcript, ws = _agent(client)
    turn = agent.respond(UserTurn(False, "list", "", False), tools)
    assert turn.reply == "There is one file, a.txt."
    assert ws.calls == [("exec", {"cmd": "ls"})]  # only the valid call ran
    assert dict(agent.usage.malformed_tool_calls) == {"truncated": 1, "unknown_tool": 1,
                                                      "schema": 1}  # fmt: skip
    tool_msgs = [m for m in transcript.messages if m["role"] == "tool"]
    assert [m["success"] for m in tool_msgs] == [False, False, False, True]
    assert "cut off" in json.loads(tool_msgs[0]["content"])["error"]
    # The raw text is kept in the trajectory, and the model saw the errors next time.
    assert transcript.messages[2]["tool_calls"][0]["function"]["arguments"] == '{"cmd": "ls'
    second = script.requests[1]["messages"]
    assert [m["role"] for m in second[-4:]] == ["tool"] * 4
    assert all(set(m) == {"role", "tool_call_id", "content"} for m in second[-4:])


def test_tool_results_can_go_as_user_text_while_the_trajectory_keeps_tool_messages(scripted):  # noqa: F811, E501
    script, make = scripted
    script.queue.extend([completion(None, [_tc("exec", '{"cmd": "ls"}')], finish="tool_calls"),
                         completion("a.txt")])  # fmt: skip
    agent, tools, transcript, _ = _agent(make(tool_results="user"))
    agent.respond(UserTurn(False, "list", "", False), tools)
    recorded = [m for m in transcript.messages if m["role"] == "tool"]
    sent = script.requests[1]["messages"][-1]
    assert len(recorded) == 1 and "a.txt" in recorded[0]["content"]
    assert sent == {"role": "user", "content": "[exec result]\n" + recorded[0]["content"]}
    assert not any(m["role"] == "tool" for m in script.requests[1]["messages"])


def test_step_cap_forces_a_text_answer_and_first_tool_can_be_forced(scripted):  # noqa: F811
    script, make = scripted
    script.default = completion(None, [_tc("exec", '{"cmd": "ls"}')], finish="tool_calls")
    client = make(max_agent_steps=3, force_first_tool="exec")
    agent, tools, _, ws = _agent(client)
    script.queue.extend([script.default] * 3 + [completion("Stopping here: a.txt.")])
    turn = agent.respond(UserTurn(False, "list", "", False), tools)
    assert turn.reply == "Stopping here: a.txt." and turn.notes["step_cap"] == 1
    choices = [r["tool_choice"] for r in script.requests]
    assert choices == [{"type": "function", "function": {"name": "exec"}}, "auto", "auto",
                       "none"]  # fmt: skip
    assert len(ws.calls) == 3


def test_empty_answer_gets_one_nudge_then_is_counted(scripted):  # noqa: F811
    script, make = scripted
    script.default = completion("")
    agent, tools, _, _ = _agent(make())
    turn = agent.respond(UserTurn(False, "list", "", False), tools)
    assert turn.reply == "" and turn.notes["empty_replies"] == 1
    assert "empty" in script.requests[1]["messages"][-1]["content"]


def test_context_overflow_elides_old_tool_output_then_retries(scripted):  # noqa: F811
    script, make = scripted
    script.queue.extend([error(400, "Requested tokens (9000) exceed context window of 8192"),
                         completion("fine")])  # fmt: skip
    agent, tools, _, _ = _agent(make())
    assert agent.respond(UserTurn(False, "x", "", False), tools).reply == "fine"
    msgs = [{"role": "tool", "tool_call_id": str(i), "content": "big"} for i in range(5)]
    assert [m["content"] for m in elide_old_tool_outputs(msgs)].count("big") == 2


PERSONA = Persona("p1", "Ana", "analyst", "retail", "sql", "senior", "direct-bullets", "remote")


def test_user_simulator_cannot_end_a_dialogue_it_never_started(scripted, tmp_path):  # noqa: F811
    script, make = scripted
    done = '{"completed": true, "query": "", "reason": "x", "is_success": true}'
    ask_ = (
        '{"completed": false, "query": "Please sort the CSV.", "reason": "r", "is_success": false}'
    )
    script.queue.extend([completion(done), completion(ask_)])
    user = OpenAIUserSimulator(make(), taxonomy=None, seed=5)
    view = UserView(PERSONA, "Sort my CSV", (), (), ())
    turn = user.next_turn(view)
    assert turn.query == "Please sort the CSV." and not turn.completed
    assert script.requests[0]["seed"] == 5
    # Only the view reaches the model: the persona, the intent, queries and replies.
    later = UserView(PERSONA, "Sort my CSV", (), ("Please sort it",), ("Sorted: 3 rows",))
    script.queue.append(completion(done))
    assert user.next_turn(later).completed
    prompt = script.requests[-1]["messages"][1]["content"]
    assert "YOU: Please sort it" in prompt and "ASSISTANT: Sorted: 3 rows" in prompt


def test_user_simulator_that_never_answers_validly_raises_for_labeling(scripted):  # noqa: F811
    script, make = scripted
    script.default = completion('{"completed": false, "query": "", "reason": "", "is_success": 0}')
    user = OpenAIUserSimulator(make(max_repairs=1), taxonomy=None, seed=1)
    with pytest.raises(UserOutputError, match="no valid answer after 2 attempts"):
        user.next_turn(UserView(PERSONA, "x", (), ("q",), ("r",)))


def test_rejected_call_repr_keeps_raw_arguments():
    call = RejectedCall("exec", '{"cmd"', "bad", "truncated")
    assert call.arguments == '{"cmd"'


def test_calls_written_as_text_in_the_hermes_format_are_parsed():
    block = '<tool_call>\n{{"name": "{}", "arguments": {}}}\n</tool_call>'
    two = block.format("exec", '{"cmd": "ls"}') + "\n" + block.format("read", '{"path": "a.txt"}')
    calls = calls_in_text(two)
    assert [(c["function"]["name"], json.loads(c["function"]["arguments"])) for c in calls] == [
        ("exec", {"cmd": "ls"}), ("read", {"path": "a.txt"})]  # fmt: skip
    # Detokenizing drops the special <tool_call> token: the bare JSON, fenced or not.
    assert calls_in_text('{"name": "exec", "arguments": {"cmd": "ls"}}')[0]["function"] == {
        "name": "exec", "arguments": '{"cmd": "ls"}'}  # fmt: skip
    fenced = '```json\n{"name": "read", "arguments": {"path": "a.txt"}}\n```'
    assert calls_in_text(fenced)[0]["function"]["name"] == "read"
    # A call followed by the tool result the model imagined: the call only.
    imagined = '{"name": "exec", "arguments": "{\\"cmd\\": \\"ls\\"}"}\n{"exit_code": 0}'
    [call] = calls_in_text(imagined)
    assert call["function"] == {"name": "exec", "arguments": '{"cmd": "ls"}'}
    # Call-shaped with a name we lack: still a call, so the model hears which tools exist.
    assert calls_in_text('{"name": "create_file", "arguments": {"x": 1}}')[0]["function"][
        "name"] == "create_file"  # fmt: skip
    assert calls_in_text('{"name": "Ana", "age": 31}') == []  # other keys: data
    assert calls_in_text('{"rows": 114}') == [] and calls_in_text("Merged 3 files.") == []
    assert calls_in_text('```json\n{"rows": 114}\n```') == []
    assert calls_in_text("<tool_call>{not json") == [] and calls_in_text(None) == []
    # In a <tool_call> block any name is a call; the schema check then rejects it as usual.
    assert calls_in_text('<tool_call>{"name": "browse", "arguments": {}}')[0]["function"][
        "name"] == "browse"  # fmt: skip


def test_a_call_written_as_text_runs_as_a_native_call(scripted):  # noqa: F811
    script, make = scripted
    hermes = '<tool_call>\n{"name": "exec", "arguments": {"cmd": "ls"}}\n</tool_call>'
    script.queue.extend([completion(hermes), completion("There is one file, a.txt.")])
    agent, tools, transcript, ws = _agent(make())
    turn = agent.respond(UserTurn(False, "list", "", False), tools)
    assert ws.calls == [("exec", {"cmd": "ls"})]
    assert turn.reply == "There is one file, a.txt." and turn.notes["calls_from_text"] == 1
    call_msg = transcript.messages[2]  # recorded as a native call, the text not as narration
    assert call_msg["content"] == "" and call_msg["tool_calls"][0]["function"] == {
        "name": "exec", "arguments": '{"cmd": "ls"}'}  # fmt: skip
