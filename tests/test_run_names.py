"""Run folder names (ttcbench/run_names.py): readable, one per config, the same for a re-run.

The names are composed through Hydra's compose API exactly as a command composes them; the
job-side checks (the saved config, the W&B/store run id) use the same identity.
"""

from __future__ import annotations

import functools
import itertools
import re
from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

import ttcbench.cli
from ttcbench.job import check_run_folder, run_id_for
from ttcbench.run_names import HASH_CHARS, budget_label, config_digest, identity
from ttcbench.types import ConfigError

CONF_DIR = ttcbench.cli.CONF_DIR


@functools.cache  # composing takes a fraction of a second; tests share the configs
def composed(*overrides: str, hydra_config: bool = False) -> DictConfig:
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(
            config_name="config", overrides=list(overrides), return_hydra_config=hydra_config
        )


def folder(*overrides: str) -> str:
    return str(composed(*overrides).run_dir)


@pytest.mark.parametrize(
    ("values", "label"),
    [
        ([1], "one"),
        ([1, 2], "pow2_2"),
        ([1, 2, 4, 8], "pow2_8"),
        ([1, 2, 4, 8, 16, 32, 64, 128, 256], "pow2_256"),
        ([1, 4, 16], "b1-4-16"),
        ([2, 4, 8], "b2-4-8"),
        ([8], "b8"),
        ([1, 5, 10, 20, 40], "b1-5-10-20-40"),
        (list(range(1, 40)), "b1-39_n39"),  # long lists are shortened; the hash tells them apart
    ],
)
def test_budget_label_comes_from_the_values(values: list[int], label: str) -> None:
    assert budget_label(values) == label


def test_the_default_folder_is_readable_and_ends_in_a_short_hash() -> None:
    run_dir = folder()
    assert re.fullmatch(
        rf"results/arithmetic/smollm2/majority_vote-pow2_8-[0-9a-f]{{{HASH_CHARS}}}", run_dir
    ), run_dir
    assert folder() == run_dir  # the same config, the same folder: a re-run resumes there
    assert folder("budget.values=[1,2,4,8]") == run_dir  # pow2_8 means exactly these values
    assert folder("strategy=best_of_n").startswith("results/arithmetic/smollm2/best_of_n[oracle]-")


# Each changes the samples or their grading, so each must get a folder of its own.
SAMPLE_CHANGING = {
    "default": (),
    "temperature": ("sampling.temperature=1.0",),
    "top_p": ("sampling.top_p=0.5",),
    "max_tokens": ("sampling.max_tokens=64",),
    "sampling seed": ("sampling.seed=1",),
    "stop": ("sampling.stop=END",),
    "limit": ("task.limit=50",),
    "task seed": ("task.seed=3",),
    "data file": ("task.data_files=problems.jsonl",),
    "task spec override": ("+task.prompt_suffix=x",),
    "budgets": ("budget.values=[1,2,4,8,16]",),
    "budget option": ("budget=pow2_4",),
    "model string": ("model.model=openai/other",),
    "model params": ("+model.extra.top_k=40",),
    "max_n": ("model.max_n=4",),
    "strategy": ("strategy=best_of_n",),
    "verifier": ("strategy=best_of_n", "verifier=logprob"),
    "verifier param": ("strategy=best_of_n", "verifier=llm_judge", "verifier.votes=3"),
    "judge model": ("strategy=best_of_n", "verifier=llm_judge", "verifier.model=openai/x"),
    "strategy param": ("strategy=pdr", "strategy.widths=[4,2,1]"),
    "strategy default": ("strategy=pdr",),
    "the README example": ("budget.values=[1,4,16]", "task.limit=50", "sampling.temperature=1.0"),
}


def test_configs_that_change_the_samples_never_share_a_folder() -> None:
    folders = {name: folder(*overrides) for name, overrides in SAMPLE_CHANGING.items()}
    for (a, fa), (b, fb) in itertools.combinations(folders.items(), 2):
        assert fa != fb, f"{a!r} and {b!r} share {fa}"
    assert "/majority_vote-b1-4-16-" in folders["the README example"]
    assert "/majority_vote-pow2_16-" in folders["budgets"]


# How fast, where and with which key: the same samples, so the same folder (a resume).
SAME_SAMPLES = [
    ("runner.concurrency=1", "runner.max_parallel_problems=1", "runner.progress=false"),
    ("retry.max_attempts=1", "retry.initial_wait_s=0.01"),
    ("logger=none",),
    ("cache.enabled=false",),
    ("sandbox.require_isolation=true",),
    ("model.api_base=http://127.0.0.1:1/v1", "model.timeout_s=5", "model.api_key_env=MY_KEY"),
    ("+model.extra.api_key=sk-secret-value-123",),
    ("verifier=logprob",),  # majority_vote uses no verifier
    ("budget=pow2_16", "budget.values=[1,2,4,8]"),  # the option's name is not the values
]


@pytest.mark.parametrize("overrides", SAME_SAMPLES, ids=lambda o: o[0])
def test_settings_that_do_not_change_the_samples_keep_the_folder(overrides: tuple[str]) -> None:
    assert folder(*overrides) == folder()


def test_results_dir_and_name() -> None:
    name = composed().name
    assert folder("results_dir=/tmp/elsewhere") == f"/tmp/elsewhere/{name}"
    assert folder("name=my_run") == "results/my_run"
    assert folder("name=my_run", "sampling.temperature=1.0") == "results/my_run"


def test_hydra_run_and_sweep_folders_use_the_name() -> None:
    cfg = composed("sampling.temperature=0.2", hydra_config=True)
    assert cfg.hydra.run.dir == cfg.run_dir
    assert f"{cfg.hydra.sweep.dir}/{cfg.hydra.sweep.subdir}" == cfg.run_dir


def test_the_folder_hash_is_the_jobs_own_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    """The resolver hashes the config Hydra composed; the job checks and ids the plain config
    cli.py converts it to: both must agree, or a re-run would be refused in its own folder."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")  # the judge model's key is checked at build
    for overrides in [(), *SAMPLE_CHANGING.values(), *SAME_SAMPLES]:
        cfg = composed(*overrides)
        job = ttcbench.cli.to_job(cfg)
        digest = config_digest(job.config)
        assert str(job.run_dir).endswith(f"-{digest[:HASH_CHARS]}"), overrides
        assert run_id_for(job.config) == digest[:12]


def test_identity_leaves_out_secrets_and_where_things_run() -> None:
    plain = ttcbench.cli.to_job(composed("+model.extra.api_key=sk-secret-value-123")).config
    kept = identity(plain)
    assert set(kept) == {"task", "strategy", "model", "budget", "sampling", "task_specs"}
    assert "api_key" not in kept["model"]["extra"] and "api_base" not in kept["model"]
    assert kept["budget"] == {"values": [1, 2, 4, 8]}


def saved_run(tmp_path: Path, *overrides: str) -> tuple[Path, dict]:
    plain = ttcbench.cli.to_job(composed(*overrides)).config
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(plain))
    return tmp_path, plain


def test_check_run_folder_refuses_another_config_under_a_given_name(tmp_path: Path) -> None:
    run_dir, plain = saved_run(tmp_path, "name=mine", "+model.extra.api_key=sk-secret-value-1")
    check_run_folder(run_dir, plain)  # the same config: resume
    again = ttcbench.cli.to_job(composed("name=mine", "runner.concurrency=1", "logger=none"))
    check_run_folder(run_dir, again.config)  # what does not change a sample may change
    other = ttcbench.cli.to_job(composed("name=mine", "task.limit=3", "sampling.seed=2")).config
    with pytest.raises(ConfigError, match="different sampling, task; pass another name="):
        check_run_folder(run_dir, other)


def test_a_changed_task_spec_gets_a_folder_of_its_own(tmp_path, monkeypatch) -> None:
    """Editing tasks/<name>.yaml (a new generator class, a new prompt) makes other problems
    under the same ids: the run must not resume into the old folder and mix the two."""
    import shutil

    from ttcbench.run_names import config_digest, task_spec_digests
    from ttcbench.tasks.registry import tasks_dir

    config = {"task": {"name": "arithmetic", "limit": 4}, "model": {"model": "m"}}
    before = config_digest(config)
    shutil.copytree(tasks_dir(), tmp_path / "tasks")
    monkeypatch.setenv("TTCBENCH_TASKS_DIR", str(tmp_path / "tasks"))
    assert config_digest(config) == before  # same content elsewhere: same folder
    spec = tmp_path / "tasks" / "arithmetic.yaml"
    spec.write_text(
        spec.read_text().replace("min_digits: 2, max_digits: 2", "min_digits: 3, max_digits: 3")
    )
    assert config_digest(config) != before
    suite = {"name": "mine", "tasks": {"arithmetic": {"limit": 2}, "gsm_symbolic": {}}}
    digests = task_spec_digests(suite)
    assert digests["mine"] is None and set(digests) == {"mine", "arithmetic", "gsm_symbolic"}
    assert all(digests[n] for n in ("arithmetic", "gsm_symbolic"))
