"""Degenerate dialogues: the detectors on a corpus of what small models wrote, the offline
user's own turns as the clean side, and each guard ending a dialogue with its label."""

import json

import pytest

from ise_dagster.llm.offline_user import OfflineUserSimulator
from ise_dagster.llm.simulator import AgentTurn, UserTurn, UserView
from ise_dagster.sandbox import ToolResult
from ise_dagster.stages import guards
from ise_dagster.stages.dialogues import DialogueSettings, LiveTools, Transcript, _converse
from ise_dagster.stages.intents import sample_specs
from ise_dagster.tasklib.base import Call
from ise_dagster.taxonomy import load_taxonomy

REFUSALS = [
    "I'm sorry, but I can't complete this conversation.",  # Qwen2.5-Coder-0.5B as the user
    "I’m sorry, but I can’t assist with that.",
    "I cannot help with that request.",
    "I am unable to continue this role.",
    "As an AI language model, I don't have access to your files.",
    "I'm an AI assistant and cannot run commands on your machine.",
]
ASSISTANT_VOICE = [
    "Sure! How can I help you today?",
    "Is there anything else I can do for you?",
    "I'd be happy to help with merging those files.",
]
CLEAN = [
    "Can you merge the exports and verify the result?",
    "I'm sorry but I can't find the report, could you look in logs/?",
    "As an AI engineer I need the merged CSV by noon.",
    "I am an AI researcher; please tidy my notes folder.",
    "I can't complete this task myself, please do it.",
    "Thanks, that helps. Can you also check the timestamps?",
]
CALLS_AS_TEXT = [
    "functions.read:",  # chatml-function-calling's grammar under tool_choice auto
    "functions.write:",
    '<tool_call>\n{"name": "exec", "arguments": {"cmd": "ls"}}\n</tool_call>',
    '{"name": "exec", "arguments": {"cmd": "ls"}}',  # <tool_call> is dropped when detokenized
    '[{"name": "read", "parameters": {"path": "a.txt"}}]',
    # Qwen2.5-Coder-0.5B on its own template: fenced, or followed by the result it imagined.
    '```json\n{\n  "name": "read",\n  "arguments": {\n    "path": "/workspace"\n  }\n}\n```',
    '{"name": "exec", "arguments": "{\\"cmd\\": \\"ls\\"}"}\n{"exit_code": 0, "stdout": "a.txt"}',
]
ANSWERS = [
    "Merged 3 exports into merged.csv (114 rows); one duplicate header removed.",
    '{"rows": 114, "duplicates": 0}',  # JSON data is an answer
    '```json\n{"rows": 114}\n```',
    "```bash\nls -la\n```\nThat lists the files.",
    "The call functions.read failed, so I read the file with exec instead.",
    "",
]


@pytest.mark.parametrize("query", REFUSALS)
def test_refusals_are_refusals_and_drift(query):
    assert guards.is_refusal(query) and guards.detect_role_drift(query)


@pytest.mark.parametrize("query", ASSISTANT_VOICE)
def test_the_assistant_s_voice_is_drift_but_no_refusal(query):
    assert guards.detect_role_drift(query) and not guards.is_refusal(query)


@pytest.mark.parametrize("query", CLEAN)
def test_a_user_s_own_words_are_clean(query):
    assert not guards.detect_role_drift(query) and not guards.is_refusal(query)


def _offline_queries(tax, spec, seed):
    user, queries = OfflineUserSimulator(tax, seed), []
    while True:
        view = UserView(spec.persona, "please help", spec.tasks, tuple(queries),
                        ("ok",) * len(queries))  # fmt: skip
        turn = user.next_turn(view)
        if turn.completed:
            return queries
        queries.append(turn.query)


def test_the_offline_user_never_reads_as_drift_in_any_domain():
    tax = load_taxonomy()
    mix = {"simple": 0.1, "medium": 0.4, "complex": 0.5}
    queries = [
        q
        for domain in tax.domain_ids
        for k, spec in enumerate(sample_specs(tax, domain, 60, seed=11, complexity_mix=mix))
        for q in _offline_queries(tax, spec, k)
    ]
    assert len(queries) > 3000
    assert [q for q in queries if guards.detect_role_drift(q)] == []


@pytest.mark.parametrize("reply", CALLS_AS_TEXT)
def test_a_tool_call_written_as_text_is_no_answer(reply):
    assert guards.is_call_as_text(reply)


@pytest.mark.parametrize("reply", ANSWERS)
def test_answers_are_answers(reply):
    assert not guards.is_call_as_text(reply)


def test_the_same_failing_call_stops_at_the_limit():
    repeats = guards.RepeatedFailures(limit=3)
    assert repeats.record("exec", '{"cmd": "jq ."}', ok=False) is None
    assert repeats.record("exec", '{"cmd": "jq ."}', ok=True) is None  # successes don't count
    assert repeats.record("exec", '{"cmd": "jq -r ."}', ok=False) is None  # another call
    assert repeats.record("exec", '{"cmd": "jq ."}', ok=False) is None
    assert "failed 3 times" in repeats.record("exec", '{"cmd": "jq ."}', ok=False)


def test_unworked_tasks_are_named_unless_a_call_cannot_be_placed():
    tasks = ["merge-csv", "rotate-logs"]
    only_first = [{"cmd": "ls", "cwd": "merge-csv"}, {"path": "/workspace/merge-csv/a.csv"}]
    assert guards.unworked_tasks(only_first, tasks) == ["rotate-logs"]
    assert guards.unworked_tasks([*only_first, {"cmd": "ls"}], tasks) == []  # could be either
    both = [*only_first, {"cmd": "cd /workspace/rotate-logs && ls"}]
    assert guards.unworked_tasks(both, tasks) == []


# -- the guards inside a dialogue (scripted user and agent, a fake workspace) ----------------

TASKS = ["merge-csv"]
INTENT = {
    "intent_id": "i1",
    "natural_language_intent": "Merge my CSV exports.",
    "tasks": TASKS,
    "persona": load_taxonomy().personas[0].to_dict(),
}


class ScriptedUser:
    name, model, usage = "scripted-user", "scripted", None

    def __init__(self, turns):
        self.turns = list(turns)

    def next_turn(self, view):
        return self.turns.pop(0)


class ScriptedAgent:
    name, model, usage, system_prompt = "scripted-agent", "scripted", None, "sys"

    def __init__(self, calls_per_turn, reply="Merged 3 exports."):
        self.calls_per_turn, self.reply = calls_per_turn, reply

    def respond(self, turn, run_tools):
        for call in self.calls_per_turn:
            run_tools([call], "")
        return AgentTurn(self.reply)


class FakeWorkspace:
    """Answers every call; `fails` names the commands that exit 1."""

    def __init__(self, fails=()):
        self.fails = set(fails)

    def call(self, tool, args):
        ok = args.get("cmd") not in self.fails
        return ToolResult(tool=tool, ok=ok, exit_code=0 if ok else 1)


def _ask(query="Please merge the exports."):
    return UserTurn(completed=False, query=query, reason="", is_success=False, task_index=0)


DONE = UserTurn(completed=True, query="", reason="done", is_success=True)
WORK = Call("exec", {"cmd": "ls", "cwd": "merge-csv"})


def _dialogue(user_turns, agent, fails=()):
    transcript = Transcript()
    transcript.add("system", "sys")
    tools = LiveTools(FakeWorkspace(fails), transcript)
    return _converse(INTENT, (), ScriptedUser(user_turns), agent, tools, transcript,
                     DialogueSettings())  # fmt: skip


def test_a_dialogue_with_work_in_every_task_completes():
    row = _dialogue([_ask(), DONE], ScriptedAgent([WORK]))
    assert (row["status"], row["is_success"], row["tool_calls"]) == ("completed", True, 1)


def test_completion_before_any_tool_call_is_premature():
    row = _dialogue([_ask(), DONE], ScriptedAgent([]))
    assert (row["status"], row["is_success"]) == ("premature_completion", False)
    assert "before any tool call" in row["error"]


def test_completion_before_a_task_was_worked_on_is_premature():
    intent = {**INTENT, "tasks": ["merge-csv", "rotate-logs"]}
    transcript = Transcript()
    tools = LiveTools(FakeWorkspace(), transcript)
    row = _converse(intent, (), ScriptedUser([_ask(), DONE]), ScriptedAgent([WORK]), tools,
                    transcript, DialogueSettings())  # fmt: skip
    assert row["status"] == "premature_completion" and "rotate-logs" in row["error"]


def test_a_refusing_user_ends_the_dialogue_labelled():
    refusal = "I'm sorry, but I can't complete this conversation."
    row = _dialogue([_ask(), _ask(refusal), DONE], ScriptedAgent([WORK]))
    assert (row["status"], row["is_success"], row["user_turns"]) == ("user_refused", False, 2)
    assert row["role_drift_turns"] == 1
    assert json.loads(row["messages"])[-1] == {"role": "user", "content": refusal}


def test_the_same_failing_call_three_times_ends_the_dialogue():
    stuck = Call("exec", {"cmd": "jq .", "cwd": "merge-csv"})
    row = _dialogue([_ask(), DONE], ScriptedAgent([stuck] * 5), fails={"jq ."})
    assert (row["status"], row["tool_calls"]) == ("repeated_failing_call", 3)
    assert "failed 3 times" in row["error"]


def test_a_tool_call_as_the_final_answer_is_labelled():
    row = _dialogue([_ask(), DONE], ScriptedAgent([WORK], reply="functions.read:"))
    assert (row["status"], row["is_success"]) == ("malformed_answer", False)
