"""A scripted OpenAI-compatible server on 127.0.0.1, for fault injection in tests.

Each request pops the next scripted reply (an HTTP status, optionally a delay, a
`Retry-After` header, or a connection reset); when the script is empty it answers 200 with
`reply(request)` (by default, the right answer to an arithmetic prompt), unless random faults
(`faults(rate, seed)`) or an outage (`outage(seconds)`) say otherwise. Every request is
counted.
"""

from __future__ import annotations

import contextlib
import json
import random
import re
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

RESET = -1
"""A scripted "status" that drops the connection with a TCP reset instead of answering."""


@dataclass(frozen=True)
class Scripted:
    """One scripted reply: an HTTP status (or RESET), a delay before it, extra headers."""

    status: int
    delay_s: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)


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
        self.script: deque[Scripted] = deque()
        self._lock = threading.Lock()
        self.delay_s = 0.0
        """Delay of every unscripted 200 (a model's own generation time)."""
        self.fault_rate = 0.0
        self._faults: list[Scripted] = []
        self._rng = random.Random(0)
        self._outage_until = 0.0
        self.faults_served: list[Scripted] = []
        """The random faults served so far, in order."""
        self.headers: list[dict[str, str]] = []
        """Every request's headers, in order."""
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True  # a hanging reply must not hold up shutdown
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def enqueue(
        self, status: int, times: int = 1, delay_s: float = 0.0, retry_after: float | None = None
    ) -> None:
        """Script the next `times` replies; `retry_after` adds that `Retry-After` header."""
        headers = {} if retry_after is None else {"Retry-After": f"{retry_after:g}"}
        self.script.extend([Scripted(status, delay_s, headers)] * times)

    def faults(self, rate: float, kinds: list[Scripted], seed: int = 0) -> None:
        """Once the script is spent, each request is one of `kinds` (drawn with a seeded RNG)
        with probability `rate`, a normal reply otherwise."""
        self.fault_rate, self._faults, self._rng = rate, list(kinds), random.Random(seed)

    def outage(self, seconds: float, status: int = 503) -> None:
        """Every request of the next `seconds` answers `status` (a provider that is down)."""
        self._outage_until = time.monotonic() + seconds
        self._outage = Scripted(status)

    def next_reply(self) -> Scripted:
        """The next scripted reply, an outage's or a random fault, or a 200 after `delay_s`;
        call it holding `self._lock`."""
        if self.script:
            return self.script.popleft()
        if time.monotonic() < self._outage_until:
            return self._outage
        if self._faults and self._rng.random() < self.fault_rate:
            fault = self._rng.choice(self._faults)
            self.faults_served.append(fault)
            return fault
        return Scripted(200, self.delay_s)

    def next_scripted(self) -> tuple[int, float]:
        """The next scripted (status, delay), or (200, 0) once the script is spent; call it
        holding `self._lock`."""
        reply = self.next_reply()
        return reply.status, reply.delay_s

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def respond(self, path: str, body: dict[str, Any]) -> tuple[Any, ...]:
        """(status, payload, delay) or (status, payload, delay, headers); status RESET drops
        the connection."""
        raise NotImplementedError

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server API)
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                with fake._lock:
                    fake.headers.append(dict(self.headers.items()))
                status, payload, delay, *extra = fake.respond(self.path, body)
                time.sleep(delay)
                if status == RESET:  # SO_LINGER 0: close() sends RST, no HTTP answer at all
                    linger = struct.pack("ii", 1, 0)
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
                    self.close_connection = True
                    self.connection.close()
                    return
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    for name, value in (extra[0] if extra else {}).items():
                        self.send_header(name, value)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client timed out
                    pass

            def finish(self) -> None:
                with contextlib.suppress(OSError, ValueError):  # reset on purpose
                    super().finish()

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

    def respond(self, path: str, body: dict[str, Any]) -> tuple[Any, ...]:
        return self._reply(body)

    def error_message(self, status: int) -> str:
        """The provider's own words for an error status (what a run must show its user)."""
        known = {
            400: "Invalid value for 'temperature': scripted 400",
            401: "Incorrect API key provided: sk-dum***ummy (scripted 401)",
            403: "Project does not have access to model (scripted 403)",
            404: "The model 'fake' does not exist (scripted 404)",
        }
        return known.get(status, f"scripted {status}")

    def _reply(self, body: dict[str, Any]) -> tuple[Any, ...]:
        with self._lock:
            self.requests.append(body)
            scripted = self.next_reply()
        status, delay = scripted.status, scripted.delay_s
        if status != 200:
            error = {"error": {"message": self.error_message(status), "type": "test"}}
            return status, error, delay, scripted.headers
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
