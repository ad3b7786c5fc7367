"""Configuration composition: every config group option, launchers, litellm model strings.

Composes with Hydra's compose API (the same conf/ directory the command line uses) and
builds a `JobConfig` from each result; no model is called.
"""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir
from hydra.core.config_store import ConfigStore
from hydra.errors import MissingConfigException
from omegaconf import DictConfig

import ttcbench.cli
from ttcbench.job import JobConfig
from ttcbench.preflight import validate_budgets

CONF_DIR = ttcbench.cli.CONF_DIR
STRATEGIES_DIR = Path(ttcbench.cli.__file__).resolve().parent / "strategies"
GROUPS = ("task", "strategy", "verifier", "model", "budget", "logger")


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


def compose_config(*overrides: str, hydra_config: bool = False) -> DictConfig:
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(
            config_name="config", overrides=list(overrides), return_hydra_config=hydra_config
        )


@pytest.fixture
def config_store() -> Iterator[ConfigStore]:
    """Hydra's ConfigStore without registered model strings, restored afterwards."""
    store = ConfigStore.instance()
    saved = copy.deepcopy(store.repo)
    store.repo.pop("model", None)  # strings registered by other tests in this process
    yield store
    store.repo = saved


def test_every_group_has_options() -> None:
    for group in GROUPS:
        assert options(group), f"conf/{group}/ has no YAML options"
    assert "arithmetic" in options("task") and "single" in options("strategy")


@pytest.mark.parametrize(
    ("group", "option"), [(g, o) for g in GROUPS for o in options(g)], ids=lambda v: str(v)
)
def test_every_option_composes_and_builds_a_job(group: str, option: str) -> None:
    cfg = compose_config(f"{group}={option}")
    expected = yaml.safe_load((CONF_DIR / group / f"{option}.yaml").read_text())
    assert cfg[group].keys() == expected.keys()
    job = ttcbench.cli.to_job(cfg)
    assert isinstance(job, JobConfig)
    assert job.budgets == list(cfg.budget["values"])
    assert job.task == cfg.task.name
    assert job.model.model == cfg.model.model
    assert job.logger.kind == cfg.logger.kind
    assert str(job.run_dir) == cfg.run_dir


@pytest.mark.parametrize("option", options("strategy"))
def test_strategy_name_is_its_config_file_name(option: str) -> None:
    cfg = compose_config(f"strategy={option}")
    assert cfg.strategy.name == option
    job = ttcbench.cli.to_job(cfg)
    assert job.strategy.name == option
    assert type(job.strategy).__module__ == f"ttcbench.strategies.{option}"
    # The label may add a verifier or a variant (best_of_n[oracle]): so does the folder name.
    assert cfg.strategy.label.startswith(option)
    assert job.run_dir.name.startswith(f"{cfg.strategy.label}-")


def test_every_strategy_module_has_a_config_and_vice_versa() -> None:
    modules = {p.stem for p in STRATEGIES_DIR.glob("*.py") if p.stem != "__init__"}
    assert modules, f"no strategy modules in {STRATEGIES_DIR}"
    assert modules == set(options("strategy"))
    for name in modules:
        spec = yaml.safe_load((CONF_DIR / "strategy" / f"{name}.yaml").read_text())
        assert spec["_target_"].rpartition(".")[0] == f"ttcbench.strategies.{name}"
        assert spec["name"] == name


@pytest.mark.parametrize("option", options("budget"))
def test_budget_values_are_sorted_positive_ints(option: str) -> None:
    spec = yaml.safe_load((CONF_DIR / "budget" / f"{option}.yaml").read_text())
    values = spec["values"]
    assert spec["name"] == option
    assert values and all(type(v) is int and v > 0 for v in values)
    assert values == sorted(set(values))
    assert validate_budgets(values) == values


def test_pow2_16_budget() -> None:
    assert list(compose_config("budget=pow2_16").budget["values"]) == [1, 2, 4, 8, 16]


def test_joblib_launcher_composes() -> None:
    cfg = compose_config("hydra/launcher=joblib", hydra_config=True)
    assert cfg.hydra.launcher._target_ == (
        "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher"
    )


def test_slurm_launcher_composes() -> None:
    try:
        import hydra_plugins.hydra_submitit_launcher  # noqa: F401
    except ImportError:
        pytest.skip("hydra-submitit-launcher is not installed (`pip install -e .[dev]` does)")
    cfg = compose_config("hydra/launcher=slurm", hydra_config=True)
    launcher = cfg.hydra.launcher
    assert launcher._target_ == (
        "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
    )
    assert launcher.timeout_min == 240 and launcher.cpus_per_task == 8  # our slurm.yaml


def test_ray_launcher_composes_without_the_plugin() -> None:
    cfg = compose_config("hydra/launcher=ray", hydra_config=True)
    assert cfg.hydra.launcher._target_ == (
        "hydra_plugins.hydra_ray_launcher.ray_launcher.RayLauncher"
    )
    assert cfg.hydra.launcher.ray.remote.num_cpus == 4


def test_model_as_a_litellm_string(config_store: ConfigStore) -> None:
    with pytest.raises(MissingConfigException):
        compose_config("model=openai/gpt-4o-mini")
    ttcbench.cli.register_model_strings(["model=openai/gpt-4o-mini"])
    cfg = compose_config("model=openai/gpt-4o-mini")
    assert cfg.model.model == "openai/gpt-4o-mini"
    job = ttcbench.cli.to_job(cfg)
    assert job.model.model == "openai/gpt-4o-mini" and job.model.api_base is None


def test_model_strings_in_a_multirun_list(config_store: ConfigStore) -> None:
    models = ["anthropic/claude-3-5-haiku-latest", "openai/gpt-4o-mini"]
    for model in models:
        with pytest.raises(MissingConfigException):
            compose_config(f"model={model}")
    ttcbench.cli.register_model_strings(["-m", "strategy=single", f"model={','.join(models)}"])
    for model in models:
        cfg = compose_config(f"model={model}")
        assert cfg.model.model == model
        assert ttcbench.cli.to_job(cfg).model.model == model


def test_hydra_outputs_go_under_results() -> None:
    cfg = compose_config(hydra_config=True)
    assert cfg.hydra.run.dir.startswith("results")
    assert cfg.hydra.sweep.dir.startswith("results")
    assert cfg.hydra.run.dir == cfg.run_dir
    assert cfg.hydra.job.chdir is False


def test_cfg_job_prints_the_config_and_runs_nothing(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY")}
    env.pop("TTCBENCH_CACHE", None)  # the default cache path is under results/
    proc = subprocess.run(
        [sys.executable, "-m", "ttcbench.cli", "--cfg", "job"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    printed = yaml.safe_load(proc.stdout)
    assert "strategy:" in proc.stdout and "budget:" in proc.stdout
    assert printed["strategy"]["name"] == "majority_vote"
    assert printed["budget"]["values"] == [1, 2, 4, 8]
    assert "hydra" not in printed
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("option", options("verifier"))
def test_verifier_name_is_its_config_file_name(option: str) -> None:
    from omegaconf import OmegaConf

    from ttcbench.verifiers import Verifier

    node = OmegaConf.to_container(compose_config(f"verifier={option}").verifier, resolve=True)
    verifier = ttcbench.cli.build(node)
    assert isinstance(verifier, Verifier) and verifier.name == option
    assert type(verifier).__module__ == f"ttcbench.verifiers.{option}"


def test_every_verifier_module_has_a_config_and_vice_versa() -> None:
    modules = {
        p.stem
        for p in (CONF_DIR.parent / "ttcbench/verifiers").glob("*.py")
        if p.stem != "__init__"
    }
    assert modules == set(options("verifier"))
