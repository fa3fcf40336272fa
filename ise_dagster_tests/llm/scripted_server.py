"""A real HTTP server speaking the OpenAI chat API from a script, for the faults a real
model server will not produce on demand: 429 with Retry-After, 500s, 401, context-length
and no-tools errors, malformed tool calls. The happy path is tested on the real llama.cpp
server (test_llm_pipeline.py)."""

from __future__ import annotations

import json
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def completion(content: str | None = None, tool_calls: list[dict] | None = None,
               finish: str = "stop", refusal: str | None = None) -> dict[str, Any]:  # fmt: skip
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_calls:
        message["tool_calls"] = [
            {"id": f"c{i}", "type": "function", "function": {"name": n, "arguments": a}}
            for i, (n, a) in enumerate((t["name"], t["arguments"]) for t in tool_calls)
        ]
    if refusal:
        message["refusal"] = refusal
    return {
        "id": "x", "object": "chat.completion", "created": 0, "model": "scripted",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    }  # fmt: skip


def error(status: int, message: str, headers: dict[str, str] | None = None) -> tuple:
    return (status, headers or {}, {"error": {"message": message, "type": "error"}})


@dataclass
class Script:
    """Responses served in order; when empty, `default` answers."""

    queue: deque = field(default_factory=deque)
    default: Any = field(default_factory=lambda: (200, {}, completion("ok")))
    requests: list[dict[str, Any]] = field(default_factory=list)  # chat bodies received
    model_calls: int = 0
    models: list[str] = field(default_factory=lambda: ["scripted"])
    models_status: int = 200


def serve(script: Script) -> tuple[ThreadingHTTPServer, str]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _send(self, status: int, headers: dict, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            script.model_calls += 1
            if script.models_status != 200:
                self._send(*error(script.models_status, "Incorrect API key provided"))
                return
            data = [{"id": m, "object": "model", "owned_by": "me"} for m in script.models]
            self._send(200, {}, {"object": "list", "data": data})

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            script.requests.append(body)
            reply = script.queue.popleft() if script.queue else script.default
            if isinstance(reply, dict):
                reply = (200, {}, reply)
            self._send(*reply)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/v1"
