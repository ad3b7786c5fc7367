"""No secret in any file: keys given in the config are redacted wherever the config is written
(config.yaml, `.hydra/`, Hydra's multirun.yaml, the W&B config and files), while the model
still receives the real key."""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
import yaml
from fakeserver import FakeOpenAI
from run_folders import run_folder
from test_cli import ttcbench_cli
from wandbfiles import items, records_by_type

from ttcbench.redact import REDACTED, Redactor, is_secret_key, redact

SECRET = "sk-test-0123456789abcdefSECRET"


@pytest.mark.parametrize(
    "key",
    ["api_key", "OPENAI_API_KEY", "x-api-key", "apikey", "hf_token", "token", "secret",
     "client_secret", "password", "Authorization", "credentials", "extra.api_key"],
)  # fmt: skip
def test_keys_that_name_secrets_are_secret(key: str) -> None:
    assert is_secret_key(key)


@pytest.mark.parametrize(
    "key", ["api_key_env", "max_tokens", "token_unit", "tokens", "name", "api_base", "key"]
)
def test_other_keys_are_not(key: str) -> None:
    assert not is_secret_key(key)


def test_redaction_covers_nested_values_and_quoted_overrides() -> None:
    config = {
        "model": {
            "api_key_env": "OPENAI_API_KEY",
            "extra": {"api_key": SECRET, "extra_headers": {"Authorization": "Bearer abcdefgh1"}},
        },
        "sampling": {"max_tokens": 160},
        "hooks": [{"password": "hunter2"}],
        "empty": {"token": None},
    }
    overrides = [f"+model.extra.api_key={SECRET}", "sampling.max_tokens=160", "db.password=pw"]
    hydra = {"job": {"override_dirname": f"+model.extra.api_key={SECRET},budget=one"}}
    redactor = Redactor(config, overrides)
    out = redactor(config)
    headers = {"Authorization": REDACTED}
    assert out["model"]["extra"] == {"api_key": REDACTED, "extra_headers": headers}
    assert out["model"]["api_key_env"] == "OPENAI_API_KEY" and out["sampling"]["max_tokens"] == 160
    assert out["hooks"] == [{"password": REDACTED}] and out["empty"] == {"token": None}
    assert redactor(overrides) == [
        f"+model.extra.api_key={REDACTED}", "sampling.max_tokens=160", f"db.password={REDACTED}"
    ]  # fmt: skip
    assert SECRET not in str(redactor(hydra)) and "budget=one" in str(redactor(hydra))
    assert config["model"]["extra"]["api_key"] == SECRET  # the original is left as it was
    assert redact({"a": {"api_key": "none"}, "logger": "none"}) == {
        "a": {"api_key": REDACTED}, "logger": "none"  # a short placeholder is not hunted
    }  # fmt: skip


class KeyRecordingServer(FakeOpenAI):
    """The scripted server, also recording each request's Authorization header."""

    def __init__(self) -> None:
        self.authorizations: list[str | None] = []
        super().__init__()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        base = super()._handler()
        fake = self

        class Recording(base):  # type: ignore[valid-type,misc]
            def do_POST(self) -> None:  # noqa: N802 (http.server API)
                fake.authorizations.append(self.headers.get("Authorization"))
                super().do_POST()

        return Recording


def test_a_key_on_the_command_line_is_in_no_file_and_reaches_the_model(tmp_path: Path) -> None:
    with KeyRecordingServer() as server:
        args = (
            "-m",
            "strategy=single,majority_vote",
            "budget=pow2_4",
            "task.limit=2",
            "model=llamacpp_server",
            f"model.api_base={server.api_base}",
            "model.name=fake",
            f"model.extra.api_key={SECRET}",
            "logger.chunk_rows=3",
        )
        first = ttcbench_cli(tmp_path, *args)
        assert first.returncode == 0, first.stderr
        requests = len(server.requests)
        # The redacted config.yaml must not make the same command look like another config.
        again = ttcbench_cli(tmp_path, *args)
        assert again.returncode == 0, again.stderr
    assert len(server.requests) == requests == 8  # the pool of 4, sampled once for both
    assert server.authorizations == [f"Bearer {SECRET}"] * requests
    results = tmp_path / "results"
    files = [p for p in results.rglob("*") if p.is_file()]
    names = {p.name for p in files}
    assert {"config.yaml", "hydra.yaml", "overrides.yaml", "multirun.yaml"} <= names
    assert any(p.suffix == ".wandb" for p in files) and "debug.log" in names
    leaks = [str(p) for p in files if SECRET.encode() in p.read_bytes()]
    assert leaks == []
    assert SECRET not in first.stdout + first.stderr + again.stdout + again.stderr
    run_dir = run_folder(results / "arithmetic" / "fake", "majority_vote-pow2_4")
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert config["model"]["extra"]["api_key"] == REDACTED
    overrides = yaml.safe_load((run_dir / ".hydra" / "overrides.yaml").read_text())
    assert f"model.extra.api_key={REDACTED}" in overrides
    (log,) = (run_dir / "wandb").glob("offline-run-*/run-*.wandb")
    records = records_by_type(log)
    (run,) = records["run"]
    assert items(run.run.config.update)["model"]["extra"]["api_key"] == REDACTED
    # W&B's metadata records the command line: redacted.
    args = [a for r in records["environment"] for a in r.environment.args]
    assert f"model.extra.api_key={REDACTED}" in args
