"""litellm's decisions, remembered between processes, send exactly what litellm decides.

A plan (ttcbench/models/request_plans.py) lets a process send its first request without
importing litellm. These tests make the plan in one client, then build a second client as a
later process would, with litellm's deciding functions made to fail: whatever the second
client sends without litellm must be what litellm sent, and anything the plan does not cover
must go back to litellm.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import litellm
import litellm.utils
import pytest
from fakeserver import FakeOpenAI

from ttcbench.models import request_plans
from ttcbench.models.client import ModelClient, ModelSpec, RetryPolicy, Sampling
from ttcbench.types import ProviderError

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2 + 3?"}]
SAMPLING = Sampling(temperature=0.7, top_p=0.95, max_tokens=32, seed=3, stop=("\n\n",))


def spec(server: FakeOpenAI, model: str = "openai/local", **fields: Any) -> ModelSpec:
    return ModelSpec(name="fake", model=model, api_base=server.api_base, **fields)


def ask(client: ModelClient, sampling: Sampling = SAMPLING, n: int = 2) -> list[Any]:
    return asyncio.run(client.complete(MESSAGES, sampling, n))


def plan_files(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "request-plans").glob("*.json"))


@pytest.fixture
def server() -> Any:
    with FakeOpenAI(reply=lambda body: "5") as fake:
        yield fake


def refuse_litellm(patch: pytest.MonkeyPatch) -> list[str]:
    """litellm's deciding functions, made to fail and to note that they were asked."""
    asked: list[str] = []

    def refuse(name: str) -> Any:
        def refused(*args: Any, **kwargs: Any) -> Any:
            asked.append(name)
            raise AssertionError(f"litellm.{name} was asked")

        return refused

    for name in ("get_llm_provider", "validate_environment", "get_supported_openai_params",
                 "get_model_info"):  # fmt: skip
        patch.setattr(litellm, name, refuse(name))
    patch.setattr(litellm.utils, "get_optional_params", refuse("get_optional_params"))
    return asked


@pytest.mark.parametrize("model", ["openai/local", "hosted_vllm/Qwen/Qwen2.5-1.5B"])
def test_a_later_client_sends_litellms_request_without_asking_litellm(
    server: FakeOpenAI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, model: str
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-secret-123")
    monkeypatch.delenv("HOSTED_VLLM_API_KEY", raising=False)
    deciding = ModelClient(spec(server, model))
    first = ask(deciding)
    reseeded = Sampling(**{**SAMPLING.__dict__, "seed": 9})
    sampled = ask(ModelClient(spec(server, model)), reseeded, n=3)
    [plan] = plan_files(tmp_path)
    with pytest.MonkeyPatch.context() as patch:
        asked = refuse_litellm(patch)
        again = ModelClient(spec(server, model))
        second = ask(again)
        resampled = ask(again, reseeded, n=3)
    assert asked == []
    assert again.fast is not None and again.supports_n
    assert again._prices == deciding._prices  # litellm's price lookup, as it answered
    # the same bodies and headers as litellm's decision made them, request for request
    assert server.requests[2:] == server.requests[:2]
    assert server.headers[2:] == server.headers[:2]
    key = "Bearer sk-test-secret-123" if model.startswith("openai/") else "Bearer fake-api-key"
    assert server.headers[2]["Authorization"] == key
    assert [c.text for c in first + sampled] == [c.text for c in second + resampled]
    assert "sk-test-secret-123" not in plan.read_text()  # the key is never written


def test_a_changed_key_or_litellm_version_is_decided_again(
    server: FakeOpenAI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "key-one")
    ask(ModelClient(spec(server)))
    monkeypatch.setenv("OPENAI_API_KEY", "key-two")
    ask(ModelClient(spec(server)))
    assert server.headers[-1]["Authorization"] == "Bearer key-two"
    assert len(plan_files(tmp_path)) == 2  # one plan per environment
    monkeypatch.setattr(request_plans.metadata, "version", lambda name: "99.0.0")
    assert request_plans.load_plan(spec(server)) is None  # a newer litellm decides anew


def test_a_key_from_api_key_env_is_read_in_each_process(
    server: FakeOpenAI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MY_SERVER_KEY", "k-1-secret")
    config = spec(server, api_key_env="MY_SERVER_KEY")
    ask(ModelClient(config))
    [plan] = plan_files(tmp_path)
    assert json.loads(plan.read_text())["key_source"] == "api_key_env"
    assert "k-1-secret" not in plan.read_text()
    with pytest.MonkeyPatch.context() as patch:
        asked = refuse_litellm(patch)
        ask(ModelClient(config))
    assert asked == []
    assert [h["Authorization"] for h in server.headers] == ["Bearer k-1-secret"] * 2


def test_a_damaged_plan_is_decided_again_and_rewritten(
    server: FakeOpenAI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "none")
    ask(ModelClient(spec(server)))
    [plan] = plan_files(tmp_path)
    plan.write_text('{"format": 1, "model_con')  # a disk that filled mid-write
    assert [c.text for c in ask(ModelClient(spec(server)))] == ["5", "5"]
    assert json.loads(plan.read_text())["supports_n"] is True
    plan.write_text(json.dumps({**json.loads(plan.read_text()), "key_source": "env:GONE_VAR"}))
    assert ModelClient(spec(server)).fast.headers["Authorization"] == "Bearer none"  # decided
    for malformed in ({"bodies": ["not-a-pair"]}, {"headers": {"X": 1}}, {"finish": [3]}):
        plan.write_text(json.dumps({**json.loads(plan.read_text()), **malformed}))
        assert [c.text for c in ask(ModelClient(spec(server)))] == ["5", "5"]  # decided anew


def test_parameters_the_plan_has_not_seen_go_to_litellm_then_join_the_plan(
    server: FakeOpenAI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "none")
    ask(ModelClient(spec(server)), n=2)
    bodies = json.loads(plan_files(tmp_path)[0].read_text())["bodies"]
    hot = Sampling(temperature=1.0, top_p=1.0, max_tokens=8, seed=None)
    ask(ModelClient(spec(server)), hot, n=1)  # not planned: litellm decides, the plan learns
    assert len(json.loads(plan_files(tmp_path)[0].read_text())["bodies"]) == len(bodies) + 1
    assert server.requests[-1] == {
        "model": "local", "messages": MESSAGES, "temperature": 1.0, "top_p": 1.0,
        "max_tokens": 8,
    }  # fmt: skip
    # litellm's own mapping (extra_body merged into the body) is never planned
    merged = spec(server, extra={"extra_body": {"top_k": 5}})
    ask(ModelClient(merged))
    assert server.requests[-1]["top_k"] == 5
    assert all(
        "top_k" not in body for p in plan_files(tmp_path)
        for body in json.loads(p.read_text()).get("bodies", [])
    )  # fmt: skip


def test_errors_on_a_planned_transport_are_classified_by_litellm(
    server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "none")
    ask(ModelClient(spec(server)))
    retry = RetryPolicy(max_attempts=3, initial_wait_s=0.01)
    with pytest.MonkeyPatch.context() as patch:
        asked = refuse_litellm(patch)
        server.enqueue(429)
        planned = ModelClient(spec(server), retry)
        assert [c.error for c in ask(planned)] == [None, None]  # a 429 is retried
        assert planned.requests_sent == 2
        server.enqueue(401)
        with pytest.raises(ProviderError, match="Incorrect API key provided"):
            ask(ModelClient(spec(server), retry))
    assert asked == []  # both clients worked from the plan


IN_A_LATER_PROCESS = """
import asyncio, json, sys
from ttcbench.models.client import ModelClient, ModelSpec, RetryPolicy, Sampling
from ttcbench.types import ProviderError

spec = ModelSpec(name="fake", model="openai/local", api_base={base!r})
client = ModelClient(spec, RetryPolicy(max_attempts=3, initial_wait_s=0.01))
seen = {{"planned": "litellm" not in sys.modules}}
for name, sampling, n in [{requests}]:
    try:
        done = asyncio.run(client.complete({messages!r}, Sampling(**sampling), n))
        seen[name] = [[c.text for c in done], done[0].attempts, done[0].latency_s,
                      "litellm" in sys.modules]
    except ProviderError as err:
        seen[name] = str(err)
print(json.dumps(seen))
"""


def later_process(server: FakeOpenAI, requests: list[tuple[str, dict, int]]) -> dict[str, Any]:
    code = IN_A_LATER_PROCESS.format(
        base=server.api_base, messages=MESSAGES, requests=", ".join(map(repr, requests))
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


def test_a_later_process_works_from_the_plan_until_litellm_is_needed(
    server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In a fresh process (litellm not imported) the plan's request goes out; a 429 brings
    litellm in to classify it, and the retry succeeds; a 401 still stops the client."""
    monkeypatch.setenv("OPENAI_API_KEY", "none")
    ask(ModelClient(spec(server)))
    server.enqueue(429)  # the plan's request; its retry answers
    server.enqueue(200)
    server.enqueue(401)  # the next request is refused
    planned = ("planned_request", SAMPLING.__dict__, 2)
    seen = later_process(server, [planned, ("refused", SAMPLING.__dict__, 2)])
    assert seen["planned"] is True
    assert seen["planned_request"][:2] == [["5", "5"], 2]
    assert seen["planned_request"][3] is True  # litellm came in for the 429
    assert "Incorrect API key provided" in seen["refused"]


def test_parameters_a_plan_lacks_import_litellm_off_the_requests_clock(
    server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "none")
    ask(ModelClient(spec(server)))
    hot = {"temperature": 1.0, "seed": None}
    seen = later_process(server, [("hot", hot, 1), ("planned_request", SAMPLING.__dict__, 2)])
    assert seen["planned"] is True
    texts, attempts, latency, loaded = seen["hot"]
    assert texts == ["5"] and attempts == 1 and loaded is True
    assert latency < 1.5  # litellm's import (seconds) is not this request's model time
    assert seen["planned_request"][0] == ["5", "5"]
    assert server.requests[-2] == {
        "model": "local", "messages": MESSAGES, "temperature": 1.0, "top_p": 1.0,
        "max_tokens": 256,
    }  # fmt: skip


def test_no_plan_holds_extra_headers_or_an_address_with_a_credential(
    server: FakeOpenAI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Headers set in the config, or a user:password or query in the address, may carry
    credentials of their own: no plan is written for them."""
    monkeypatch.setenv("OPENAI_API_KEY", "none")
    ask(ModelClient(spec(server, extra={"extra_headers": {"X-Token": "t-secret"}})))
    assert server.headers[0]["X-Token"] == "t-secret"
    host = server.api_base.removeprefix("http://")
    ask(ModelClient(ModelSpec(name="f", model="openai/local", api_base=f"http://u:pw@{host}")))
    assert plan_files(tmp_path) == []
    assert not any("t-secret" in p.read_text() for p in tmp_path.rglob("*.json"))


def test_plans_can_be_turned_off(
    server: FakeOpenAI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "none")
    monkeypatch.setenv("TTCBENCH_PLANS", "off")
    ask(ModelClient(spec(server)))
    assert not (tmp_path / "request-plans").exists()


def test_a_plan_folder_that_cannot_be_written_costs_only_the_plan(
    server: FakeOpenAI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "none")
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    monkeypatch.setenv("TTCBENCH_PLANS", str(blocked / "plans"))
    assert [c.text for c in ask(ModelClient(spec(server)))] == ["5", "5"]
    assert [c.text for c in ask(ModelClient(spec(server)))] == ["5", "5"]
    assert blocked.read_text() == "not a folder"
