"""Every bad input gets one line that names the problem and the fix, exit 2, nothing lost.

The command line runs in a subprocess (`python -m ttcbench.cli`, as a user runs it) against
the scripted server of tests/fakeserver.py, which counts requests: a refused command must
make none and leave no run folder. `ttcbench.run()` must raise a ConfigError (or another
exit-2 error) with the very same message. A read-only results folder and a full disk are
real: a tmpfs mounted in a private mount namespace (`unshare -m`), skipped where the OS
refuses one.
"""

from __future__ import annotations

import errno
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from fakeserver import FakeOpenAI

import ttcbench
from ttcbench.disk_errors import describe
from ttcbench.models.client import ModelSpec, Sampling
from ttcbench.preflight import check_logprobs, check_sampling
from ttcbench.tasks.json_errors import locate_json_error
from ttcbench.types import ConfigError, TtcbenchError

CLI = [sys.executable, "-m", "ttcbench.cli"]
FAST = ("logger=none", "runner.progress=false", "task.limit=2", "retry.initial_wait_s=0.01")


def server_args(api_base: str) -> list[str]:
    return ["model=llamacpp_server", f"model.api_base={api_base}", "model.name=fake"]


@dataclass(frozen=True)
class Case:
    args: tuple[str, ...]
    says: tuple[str, ...]
    """Substrings the one error line must contain (the problem and the fix)."""
    served: bool = True
    """Run against the scripted server (so a request would be counted)."""


CASES = {
    "unknown-strategy": Case(("strategy=nope",), ("unknown strategy 'nope'", "majority_vote")),
    "strategy-typo": Case(("strategy=majority",), ("did you mean strategy=majority_vote?",)),
    "unknown-model": Case(
        ("model=nope",), ("unknown model 'nope'", "smollm2", "'provider/model'"), False
    ),
    "unknown-verifier": Case(("strategy=best_of_n", "verifier=orcle"), ("verifier=oracle",)),
    "unknown-in-sweep": Case(("-m", "strategy=single,nope"), ("unknown strategy 'nope'",)),
    "sweep-without-m": Case(("strategy=single,majority_vote",), ("several values", "add -m")),
    "sampling-key": Case(("sampling.temperture=1",), ("did you mean sampling.temperature?",)),
    "sampling-key-plus": Case(("+sampling.temperture=1",), ("did you mean sampling.temperature?",)),
    "runner-key": Case(("runner.concurency=2",), ("did you mean runner.concurrency?",)),
    "retry-key-plus": Case(("+retry.max_atempts=2",), ("did you mean retry.max_attempts?",)),
    "cache-key": Case(("cache.enabeld=false",), ("did you mean cache.enabled?",)),
    "model-key-plus": Case(("+model.logprob=true",), ("did you mean model.logprobs?",)),
    "override-syntax": Case(("sampling.temperature=[1",), ("cannot parse the override",)),
    "temperature": Case(("sampling.temperature=-1",), ("sampling.temperature must be", "-1")),
    "top-p-zero": Case(("sampling.top_p=0",), ("sampling.top_p must be a number in (0, 1]",)),
    "top-p-above-one": Case(("sampling.top_p=1.5",), ("sampling.top_p", "1.5")),
    "max-tokens": Case(("sampling.max_tokens=0",), ("sampling.max_tokens must be an integer",)),
    "seed": Case(("sampling.seed=abc",), ("sampling.seed must be an integer or null", "'abc'")),
    "stop": Case(("sampling.stop=[1,2]",), ("sampling.stop must be a list of non-empty strings",)),
    "empty-data-file": Case(
        ("task=mbpp", "task.data_files={tmp}/empty.jsonl"), ("empty.jsonl' has no rows",)
    ),
    "blank-data-file": Case(("task.data_files={tmp}/blank.jsonl",), ("blank.jsonl' has no rows",)),
    "malformed-jsonl-line": Case(
        ("task.data_files={tmp}/bad.jsonl",), ("bad.jsonl:3: not valid JSON", "fix or remove")
    ),
    "logprob-verifier-without-logprobs": Case(
        ("strategy=weighted_vote", "verifier=logprob"),
        ("verifier 'logprob'", "model.logprobs=true"),
    ),
    "beam-search-step-logprob": Case(("strategy=beam_search",), ("'step_logprob'", "logprobs")),
    "unit-tests-verifier-on-math": Case(
        ("strategy=best_of_n", "verifier=unit_tests"), ("needs public tests", "humaneval, mbpp")
    ),
    "judge-model-without-key": Case(
        ("strategy=best_of_n", "verifier=llm_judge", "verifier.model=openai/gpt-4o-mini"),
        ("llm_judge", "OPENAI_API_KEY"),
    ),
    "budget-beyond-pdr-rounds": Case(("strategy=pdr", "budget=pow2_16"), ("strategy.widths",)),
}
# The same message from ttcbench.run() (the subprocess cases cover exit status and files).
IN_PROCESS = (
    "unknown-strategy",
    "unknown-model",
    "sampling-key",
    "sampling-key-plus",
    "temperature",
    "empty-data-file",
    "malformed-jsonl-line",
    "logprob-verifier-without-logprobs",
)


def data_files(tmp: Path) -> None:
    (tmp / "empty.jsonl").write_text("")
    (tmp / "blank.jsonl").write_text("\n\n")
    rows = ['{"question": "1 + 1", "answer": "2"}'] * 2 + ['{"question": "2 + 2", "answer": 4']
    (tmp / "bad.jsonl").write_text("\n".join(rows) + "\n")


def cli_env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env.update(TTCBENCH_CACHE=str(tmp / "cache.sqlite"), WANDB_MODE="offline")
    return env


def case_args(case: Case, tmp: Path, api_base: str) -> list[str]:
    args = [a.format(tmp=tmp) for a in case.args]
    flags = [a for a in args if a.startswith("-")]  # before the overrides, as argparse wants
    rest = [a for a in args if not a.startswith("-")]
    return [*flags, *(server_args(api_base) if case.served else []), *FAST, *rest]


@dataclass(frozen=True)
class Ran:
    tmp: Path
    proc: subprocess.CompletedProcess[str]


@pytest.fixture(scope="module")
def server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture(scope="module")
def cli_runs(
    server: FakeOpenAI, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Future[Ran]]]:
    """Every bad command, two at a time (each start-up imports litellm: seconds of CPU)."""

    def run(name: str) -> Ran:
        tmp = tmp_path_factory.mktemp(name)
        data_files(tmp)
        args = [*case_args(CASES[name], tmp, server.api_base), f"results_dir={tmp / 'results'}"]
        proc = subprocess.run(
            [*CLI, *args], cwd=tmp, env=cli_env(tmp), capture_output=True, text=True, timeout=300
        )
        return Ran(tmp, proc)

    with ThreadPoolExecutor(max_workers=2) as pool:
        yield {name: pool.submit(run, name) for name in CASES}


def one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    """The command's single stderr line, after checking exit status 2 and no traceback."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got:\n{proc.stderr}"
    assert lines[0].startswith("ttcbench: error: ")
    return lines[0].removeprefix("ttcbench: error: ")


@pytest.mark.parametrize("name", list(CASES))
def test_cli_bad_input_is_one_line_exit_2_and_leaves_nothing(
    name: str, cli_runs: dict[str, Future[Ran]], server: FakeOpenAI
) -> None:
    ran = cli_runs[name].result()
    message = one_error_line(ran.proc)
    for words in CASES[name].says:
        assert words in message, f"{words!r} not in {message!r}"
    results = ran.tmp / "results"
    assert not results.exists() or not list(results.rglob("*")), "a run folder was left"
    assert not (ran.tmp / "cache.sqlite").exists() and not (ran.tmp / "cache").exists()


def test_no_bad_command_made_a_request(
    cli_runs: dict[str, Future[Ran]], server: FakeOpenAI
) -> None:
    for future in cli_runs.values():
        future.result()
    assert server.requests == []


@pytest.mark.parametrize("name", IN_PROCESS)
def test_run_api_raises_the_same_one_line_message(
    name: str,
    cli_runs: dict[str, Future[Ran]],
    server: FakeOpenAI,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ran = cli_runs[name].result()
    expected = one_error_line(ran.proc).replace(str(ran.tmp), str(tmp_path))
    monkeypatch.setenv("TTCBENCH_CACHE", str(tmp_path / "cache.sqlite"))
    data_files(tmp_path)
    args = case_args(CASES[name], tmp_path, server.api_base)
    with pytest.raises(TtcbenchError) as caught:
        ttcbench.run([*args, f"results_dir={tmp_path / 'results'}"])
    assert caught.value.exit_code == 2
    assert str(caught.value) == expected
    assert not (tmp_path / "results").exists()


# --- data files: the line that is wrong --------------------------------------------------


def test_jsonl_type_change_names_both_lines(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text('{"a": "x"}\n{"a": null}\n\n{"a": 3}\n')
    assert locate_json_error(path) == (
        f"{path}:4: field 'a' is a number here but a string on line 1; "
        "give every row the same type (e.g. quote the value)"
    )


def test_json_document_error_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "rows.json"
    path.write_text('[\n {"a": 1},\n {"a": 2,,}\n]\n')
    found = locate_json_error(path)
    assert found is not None and found.startswith(f"{path}:3: not valid JSON")
    path.write_text('{"a": 1}\n{"a": 2}\n')  # JSON Lines in a .json file: nothing wrong
    assert locate_json_error(path) is None


# --- a results folder that cannot be written ------------------------------------------------


def unshare_cmd() -> list[str]:
    return ["unshare", "-m"] if os.geteuid() == 0 else ["unshare", "-rm"]


@pytest.fixture(scope="module")
def mountable(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Skip unless a tmpfs can be mounted in a private mount namespace here."""
    where = tmp_path_factory.mktemp("probe")
    try:
        probe = subprocess.run(
            [*unshare_cmd(), "sh", "-c", f"mount -t tmpfs -o size=64k tmpfs {where}"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        pytest.skip(f"cannot run unshare for a private tmpfs: {err}")
    if probe.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs in a private mount namespace: {probe.stderr.strip()}")


def in_namespace(script: str, tmp: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*unshare_cmd(), "sh", "-c", script],
        cwd=tmp,
        env=cli_env(tmp),
        capture_output=True,
        text=True,
        timeout=600,
    )


def quoted(args: list[str]) -> str:
    return " ".join(shlex.quote(a) for a in args)


def test_read_only_results_folder_is_one_line_before_any_request(
    mountable: None, tmp_path: Path, server: FakeOpenAI
) -> None:
    mnt = tmp_path / "ro"
    mnt.mkdir()
    args = [*server_args(server.api_base), *FAST, f"results_dir={mnt}/results"]
    api = f"import ttcbench; ttcbench.run({[*args]!r})"
    before = len(server.requests)
    proc = in_namespace(
        f"mount -t tmpfs -o size=1m,ro tmpfs {mnt} && "
        f"{quoted([*CLI, *args])}; echo cli-rc=$? >&2; "
        f"{sys.executable} -c {quoted([api])} 2>&1 | tail -1 >&2",
        tmp_path,
    )
    lines = proc.stderr.strip().splitlines()
    assert lines[1] == "cli-rc=2", proc.stderr
    assert lines[0].startswith(f"ttcbench: error: cannot write {mnt}/results/"), proc.stderr
    assert "read-only file system" in lines[0] and "results_dir=" in lines[0]
    assert lines[2] == "ttcbench.disk_errors.StorageError: " + lines[0].removeprefix(
        "ttcbench: error: "
    )
    assert len(lines) == 3
    assert len(server.requests) == before


def test_full_disk_mid_run_keeps_a_readable_store_and_resumes(
    mountable: None, tmp_path: Path
) -> None:
    mnt = tmp_path / "small"
    mnt.mkdir()
    # 12 problems x a pool of 16 = 192 one-sample requests (llamacpp_server has max_n 1); the
    # cache is off so that only the run store holds what was paid for.
    with FakeOpenAI() as fake:
        args = [*server_args(fake.api_base), *FAST, "task.limit=12", "budget=pow2_16",
                "cache.enabled=false", f"results_dir={mnt}/results"]  # fmt: skip
        store = f"{mnt}/results/arithmetic/fake/majority_vote-pow2_16-*/store.sqlite"
        check = (
            f"import glob, sqlite3; s = glob.glob('{store}')[0]; "
            "c = sqlite3.connect(f'file:{s}?mode=ro', uri=True); "
            "print(c.execute('PRAGMA integrity_check').fetchone()[0], "
            "c.execute('SELECT COUNT(*) FROM calls WHERE error IS NULL').fetchone()[0])"
        )
        proc = in_namespace(
            f"mount -t tmpfs -o size=300k tmpfs {mnt} && {quoted([*CLI, *args])}; "
            f"echo first-rc=$?; {sys.executable} -c {quoted([check])}; "
            f"mount -o remount,size=64m {mnt} && {quoted([*CLI, *args])} 2>&1; "
            f"echo second-rc=$?; {sys.executable} -c {quoted([check])}",
            tmp_path,
        )
        total = len(fake.requests)
    out = proc.stdout
    message = one_error_line(
        subprocess.CompletedProcess([], int(re.findall(r"first-rc=(\d+)", out)[0]), "", proc.stderr)
    )
    assert message.startswith(f"no space left on the device holding {mnt}/results"), message
    assert "re-run the same command to resume" in message
    (ok1, stored), (ok2, final) = re.findall(r"^(\w+) (\d+)$", out, flags=re.MULTILINE)
    assert (ok1, ok2) == ("ok", "ok"), out
    assert 0 < int(stored) < 192 and int(final) == 192
    assert "calls stored so far are kept" in message and f"the {stored} calls" in message
    assert "second-rc=0" in out, out
    resumed = int(re.findall(r"model requests: (\d+),", out)[0])
    assert resumed == 192 - int(stored)  # nothing stored is asked for again
    # First run: what it stored, what was in flight (4) and, with writes off the event loop,
    # the requests answered while the failing commit was queued (observed up to ~7 in all).
    assert total - resumed <= int(stored) + 2 * 4 + 1


# --- checks made before the first request, from Python ----------------------------------


def test_a_stop_string_is_one_stop_sequence() -> None:
    from ttcbench.cli import CONF_DIR, to_job
    from ttcbench.config_errors import compose

    job = to_job(compose(CONF_DIR, ["sampling.stop=END", "logger=none"]))
    assert job.sampling.stop == ("END",)  # not ("E", "N", "D")


@pytest.mark.parametrize(
    ("key", "value"),
    [("temperature", True), ("top_p", -0.1), ("max_tokens", 2.5), ("seed", True), ("stop", ("",))],
)
def test_check_sampling_refuses(key: str, value: object) -> None:
    with pytest.raises(ConfigError, match=rf"^sampling\.{key} must be .*e\.g\. sampling\.{key}="):
        check_sampling(replace(Sampling(), **{key: value}))


def test_check_sampling_accepts_the_edges() -> None:
    check_sampling(Sampling())
    check_sampling(Sampling(temperature=0, top_p=1, max_tokens=1, seed=None, stop=("\n",)))


@dataclass
class NamedVerifier:
    name: str


@pytest.mark.parametrize(
    ("spec", "refused"),
    [
        (ModelSpec("smollm2", "local/smollm2", logprobs=True), None),
        (ModelSpec("smollm2", "local/smollm2", logprobs=False), "model.logprobs=true"),
        (ModelSpec("srv", "openai/local", api_base="http://x/v1", logprobs=True), None),
        (ModelSpec("gpt", "openai/gpt-4o-mini", logprobs=True), None),
        (ModelSpec("haiku", "anthropic/claude-3-5-haiku-latest", logprobs=True), "litellm says"),
    ],
)
def test_logprob_verifiers_need_a_model_declared_to_return_them(
    spec: ModelSpec, refused: str | None
) -> None:
    for name in ("logprob", "step_logprob"):
        if refused is None:
            check_logprobs(NamedVerifier(name), spec)
        else:
            with pytest.raises(ConfigError, match=re.escape(refused)):
                check_logprobs(NamedVerifier(name), spec)
    check_logprobs(NamedVerifier("oracle"), replace(spec, logprobs=False))  # needs none


def test_only_our_own_paths_are_reported_as_unwritable(tmp_path: Path) -> None:
    run_dir = tmp_path / "results" / "run"
    outside = PermissionError(errno.EACCES, "Permission denied", str(tmp_path / "data.jsonl"))
    assert describe(outside, run_dir, None) is None  # re-raised as it is, not misnamed
    inside = OSError(errno.EROFS, "Read-only file system", str(run_dir / "summary.csv"))
    assert describe(inside, run_dir, None) == (
        f"cannot write {run_dir / 'summary.csv'}: read-only file system; "
        "pass results_dir=<a writable folder>"
    )
