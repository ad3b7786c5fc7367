"""A scripted OpenAI-compatible server on 127.0.0.1, for fault injection in tests.

Each request pops the next scripted reply (an HTTP status, optionally a delay); when the
script is empty it answers 200 with `reply(request)` (by default, the right answer to an
arithmetic prompt). Every request is counted.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self


def solve_arithmetic(body: dict[str, Any]) -> str:
    """A correct reply to an `arithmetic` task prompt ("Calculate 12 + 7 - 3.")."""
    prompt = body["messages"][-1]["content"]
    match = re.search(r"Calculate ([-+*/() 0-9]+)\.", prompt)
    value = eval(match.group(1)) if match else 0  # digits and operators only (regex above)
    return f"Step by step: {value}. The answer is {value:g}"


class ScriptedServer:
    """An HTTP server on 127.0.0.1 answering POSTs with `respond(path, body)`; scripted
    statuses and delays (`enqueue`) come first. Subclasses say what a 200 looks like."""

    def __init__(self) -> None:
        self.script: deque[tuple[int, float]] = deque()
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def enqueue(self, status: int, times: int = 1, delay_s: float = 0.0) -> None:
        self.script.extend([(status, delay_s)] * times)

    def next_scripted(self) -> tuple[int, float]:
        """The next scripted (status, delay), or (200, 0) once the script is spent; call it
        holding `self._lock`."""
        return self.script.popleft() if self.script else (200, 0.0)

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def respond(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any], float]:
        raise NotImplementedError

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server API)
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                status, payload, delay = fake.respond(self.path, body)
                time.sleep(delay)
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client timed out
                    pass

            def log_message(self, *args: object) -> None:
                pass

        return Handler


class FakeOpenAI(ScriptedServer):
    """`reply(body)` is every choice's text; with `logprob(body, text)`, choices carry that one
    token logprob (None: no logprobs), as llama.cpp, vLLM and OpenAI return them."""

    def __init__(
        self,
        reply: Any = solve_arithmetic,
        logprob: Callable[[dict[str, Any], str], float | None] | None = None,
        finish: Callable[[dict[str, Any], str], str] | None = None,
    ) -> None:
        self.reply = reply
        self.logprob = logprob
        self.finish = finish
        self.requests: list[dict[str, Any]] = []
        super().__init__()

    @property
    def api_base(self) -> str:
        return f"{self.url}/v1"

    def respond(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any], float]:
        return self._reply(body)

    def _reply(self, body: dict[str, Any]) -> tuple[int, dict[str, Any], float]:
        with self._lock:
            self.requests.append(body)
            status, delay = self.next_scripted()
        if status != 200:
            return status, {"error": {"message": f"scripted {status}", "type": "test"}}, delay
        n = int(body.get("n") or 1)
        choices = [self._choice(i, body) for i in range(n)]
        usage = {"prompt_tokens": 10, "completion_tokens": 7 * n, "total_tokens": 10 + 7 * n}
        return (
            200,
            {
                "id": "x",
                "object": "chat.completion",
                "created": 0,
                "model": body.get("model", "fake"),
                "choices": choices,
                "usage": usage,
            },
            delay,
        )

    def _choice(self, index: int, body: dict[str, Any]) -> dict[str, Any]:
        text = self.reply(body)
        choice = {
            "index": index,
            "message": {"role": "assistant", "content": text},
            "finish_reason": self.finish(body, text) if self.finish else "stop",
        }
        value = self.logprob(body, text) if self.logprob else None
        if value is not None:
            token = {"token": text, "logprob": value, "bytes": None, "top_logprobs": []}
            choice["logprobs"] = {"content": [token]}
        return choice
