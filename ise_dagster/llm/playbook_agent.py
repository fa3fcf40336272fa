"""The embedded agent: runs each task's playbook against the live workspace.

Each playbook has two segments, each ending in a `Reply`: the work, then its verification.
The agent does the work when a task is requested and verifies it when the user asks for a
check; a task nobody asks to check is verified by the agent itself before it moves on (or at
once, for the intent's last task, whose later check is answered from that verification).
Corrections are handled with real file edits.
"""

from __future__ import annotations

from dataclasses import dataclass

from ise_dagster.llm.simulator import AgentTurn, RunTools, UserTurn
from ise_dagster.tasklib.base import Call, Ctx, Playbook, Reply, TaskRecipe
from ise_dagster.tasklib.runner import bind


@dataclass
class _TaskState:
    recipe: TaskRecipe
    ctx: Ctx
    playbook: Playbook
    segments_done: int = 0
    last_reply: str = ""
    started: bool = False


SYSTEM_PROMPT = (
    "You are an autonomous assistant with a Linux workspace at /workspace. Use the tools to "
    "inspect files, run commands and make changes; check your work before you report back. "
    "Each task has its own directory under /workspace."
)


class PlaybookAgent:
    name = "playbook-agent"
    model = "offline"
    system_prompt = SYSTEM_PROMPT
    usage = None  # no model calls

    def __init__(self, recipes: list[TaskRecipe], contexts: list[Ctx]) -> None:
        self._tasks = [
            _TaskState(r, c, r.playbook(c)) for r, c in zip(recipes, contexts, strict=True)
        ]

    def respond(self, turn: UserTurn, run_tools: RunTools) -> AgentTurn:
        i = turn.task_index if turn.task_index is not None else 0
        replies: list[str] = []
        if turn.kind == "request":
            for earlier in self._tasks[:i]:  # self-check unverified earlier work first
                if earlier.started and earlier.segments_done < 2:
                    replies.append(self._segment(earlier, run_tools))
            replies.append(self._segment(self._tasks[i], run_tools))
            if i == len(self._tasks) - 1:
                replies.append(self._segment(self._tasks[i], run_tools))
        elif turn.kind == "follow_up":
            task = self._tasks[i]
            if task.segments_done < 2:
                replies.append(self._segment(task, run_tools))
            else:  # verified already in this turn's predecessor: answer from that check
                replies.append(f"I verified it just now. {task.last_reply}")
        else:
            replies.append(self._note(self._tasks[i], run_tools))
        return AgentTurn(reply="\n\n".join(r for r in replies if r))

    def _segment(self, task: _TaskState, run_tools: RunTools) -> str:
        """Advance a playbook to its next Reply, running every call for real."""
        if task.segments_done >= 2:
            return ""
        task.started = True
        observation = None
        while True:
            try:
                step = task.playbook.send(observation)
            except StopIteration:
                task.segments_done = 2
                return task.last_reply
            if isinstance(step, Reply):
                task.segments_done += 1
                task.last_reply = step.text
                return step.text
            calls = step if isinstance(step, list) else [step]
            narration = " ".join(c.say for c in calls if c.say)
            results = run_tools([bind(c, task.ctx.task_dir) for c in calls], narration)
            observation = results if isinstance(step, list) else results[0]

    def _note(self, task: _TaskState, run_tools: RunTools) -> str:
        summary = task.last_reply.splitlines()[0] if task.last_reply else "done"
        note = Call("write", {"path": "NOTES.md", "content": f"- {summary}\n", "append": True})
        (result,) = run_tools([bind(note, task.ctx.task_dir)], "Adding the note.")
        where = f"{task.ctx.task_dir}/NOTES.md"
        return f"Added a note to {where}." if result.ok else f"I could not write {where}."
