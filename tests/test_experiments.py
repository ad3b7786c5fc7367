"""Experiment presets (`+experiment=<name>`): each composes with its paper's settings, each
runs end to end on tiny settings (lightning-hydra-template style), and each names a shipped
reference file.

The tiny runs use a scripted OpenAI-compatible server (tests/fakeserver.py), so they check
what the presets send (temperature, top_p, max_tokens) and that every preset's strategy and
verifier run through the real job path; one slow test runs a preset on the embedded model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from fakeserver import FakeOpenAI
from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig

import ttcbench
import ttcbench.cli
from ttcbench.analysis.references import available_references, load_reference
from ttcbench.run_names import budget_label
from ttcbench.store import SampleStore

CONF_DIR = ttcbench.cli.CONF_DIR
EXPERIMENTS = sorted(p.stem for p in (CONF_DIR / "experiment").glob("*.yaml"))

# What each paper did (see the comments in each preset for the sources).
PAPER: dict[str, dict[str, Any]] = {
    "self_consistency_gsm8k": dict(
        task="gsm8k",
        strategy="majority_vote",
        verifier="oracle",
        budgets=[1, 5, 10, 20, 40],
        temperature=0.7,
        top_p=1.0,
        limit=1319,
    ),
    "repeated_sampling_coverage": dict(
        task="gsm8k",
        strategy="best_of_n",
        verifier="oracle",
        budgets=[1, 2, 4, 8, 16, 32, 64, 128, 256],
        temperature=0.6,
        top_p=1.0,
        limit=128,
        max_tokens=512,
    ),
    "compute_optimal_by_difficulty": dict(
        task="math500",
        strategy="best_of_n",
        verifier="logprob",
        budgets=[1, 2, 4, 8, 16, 32, 64, 128, 256],
        limit=500,
    ),
    "more_llm_calls_voting": dict(
        task="arithmetic",
        strategy="majority_vote",
        verifier="oracle",
        budgets=[1, 2, 5, 10, 20, 50, 100, 200, 500, 1000],
        temperature=0.1,
        limit=100,
    ),
    "pdr_matched_sequential": dict(
        task="aime", strategy="pdr", verifier="oracle", budgets=[1, 2, 3], limit=60
    ),
}
SWEEPS = {
    "repeated_sampling_coverage": ("task", {"gsm8k", "math500"}),
    "compute_optimal_by_difficulty": ("strategy", {"best_of_n", "weighted_vote", "beam_search"}),
}


def compose_config(*overrides: str, hydra_config: bool = False) -> DictConfig:
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(
            config_name="config", overrides=list(overrides), return_hydra_config=hydra_config
        )


def require_options(cfg_group: str, *names: str) -> None:
    """Skip (with the reason) when a config another change is adding is not there yet."""
    missing = [n for n in names if not (CONF_DIR / cfg_group / f"{n}.yaml").exists()]
    if missing:
        pytest.skip(f"conf/{cfg_group}/{', '.join(missing)}.yaml not in this checkout yet")


def test_every_paper_has_a_preset() -> None:
    assert sorted(PAPER) == EXPERIMENTS


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_preset_composes_with_the_papers_settings(name: str) -> None:
    paper = PAPER[name]
    require_options("task", paper["task"])
    cfg = compose_config(f"+experiment={name}")
    assert cfg.task.name == paper["task"] and cfg.task.limit == paper["limit"]
    assert cfg.strategy.name == paper["strategy"]
    assert cfg.verifier.name == paper["verifier"]
    assert list(cfg.budget["values"]) == paper["budgets"]
    for key in ("temperature", "top_p", "max_tokens"):
        if key in paper:
            assert cfg.sampling[key] == paper[key], key
    # The run folder says what was run: the preset's budgets, and a hash of its settings.
    label = budget_label(paper["budgets"])
    assert f"/{cfg.strategy.label}-{label}-" in cfg.run_dir and label != "pow2_8"
    assert cfg.run_dir != compose_config().run_dir
    job = ttcbench.cli.to_job(cfg)  # builds the strategy and its verifier
    assert job.strategy.name == paper["strategy"] and job.budgets == paper["budgets"]


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_preset_names_a_shipped_reference(name: str) -> None:
    require_options("task", PAPER[name]["task"])
    cfg = compose_config(f"+experiment={name}")
    assert cfg.reproduces.reference in available_references()
    ref = load_reference(cfg.reproduces.reference)
    assert ref.citation.arxiv in cfg.reproduces.paper


def test_command_line_overrides_win_over_the_preset() -> None:
    require_options("task", "gsm8k")
    cfg = compose_config(
        "+experiment=self_consistency_gsm8k",
        "task=arithmetic",
        "budget.values=[1,2]",
        "sampling.temperature=0.3",
    )
    assert cfg.task.name == "arithmetic" and cfg.task.limit == 1319  # the preset's limit stays
    assert list(cfg.budget["values"]) == [1, 2] and cfg.sampling.temperature == 0.3
    assert cfg.strategy.name == "majority_vote"


@pytest.mark.parametrize("name", sorted(SWEEPS))
def test_sweep_params_name_existing_options(name: str) -> None:
    group, expected = SWEEPS[name]
    require_options(group, *expected)
    require_options("task", PAPER[name]["task"])
    cfg = compose_config(f"+experiment={name}", hydra_config=True)
    (override,) = OverridesParser.create().parse_overrides(
        [f"{group}={cfg.hydra.sweeper.params[group]}"]
    )
    values = set(override.sweep_string_iterator())
    assert values == expected
    for value in values:  # every job of the sweep composes and builds
        job = ttcbench.cli.to_job(compose_config(f"+experiment={name}", f"{group}={value}"))
        assert job.budgets == PAPER[name]["budgets"]


def tiny(name: str, results: Path, api_base: str) -> list[str]:
    return [
        f"+experiment={name}",
        f"results_dir={results}",
        "task=arithmetic",
        "task.limit=1",
        "budget.values=[1,2]",
        "sampling.max_tokens=32",
        "model=llamacpp_server",
        f"model.api_base={api_base}",
        "model.name=fake",
        "logger=none",
    ]


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_preset_runs_on_tiny_settings(name: str, results: Path) -> None:
    paper = PAPER[name]
    with FakeOpenAI(logprob=lambda body, text: -0.25) as server:  # for the logprob verifier
        run_dir = ttcbench.run(tiny(name, results, server.api_base))
        requests = server.requests
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert saved["reproduces"]["reference"] in available_references()
    store = SampleStore(run_dir / "store.sqlite")
    attempts, calls = store.attempts_frame(), store.calls_frame()
    assert sorted(attempts["budget"].unique()) == [1, 2]
    assert set(attempts["strategy"]) == {paper["strategy"]}
    assert attempts["error"].isna().all() and calls["error"].isna().all()
    generate = [r for r in requests if r["messages"][-1]["content"].startswith("Solve")]
    assert generate and all(r["max_tokens"] == 32 for r in generate)
    for key in ("temperature", "top_p"):
        if key in paper:
            assert {r[key] for r in generate} == {paper[key]}
    if paper["strategy"] in ("majority_vote", "best_of_n"):  # the scripted answers are right
        assert attempts["score"].tolist() == [1.0, 1.0]


@pytest.mark.slow
def test_compute_optimal_preset_on_the_embedded_model(results: Path) -> None:
    """The logprob verifier ranks real samples: SmolLM2 returns token logprobs."""
    require_options("task", "math500")
    run_dir = ttcbench.run(
        [
            "+experiment=compute_optimal_by_difficulty",
            f"results_dir={results}",
            "task=arithmetic",
            "task.limit=1",
            "budget.values=[1,2]",
            "sampling.max_tokens=48",
            "logger=none",
        ]
    )
    store = SampleStore(run_dir / "store.sqlite")
    attempts, calls = store.attempts_frame(), store.calls_frame()
    assert sorted(attempts["budget"]) == [1, 2]
    assert (attempts["verifier"] == "logprob").all() and attempts["error"].isna().all()
    assert calls["mean_logprob"].notna().all() and len(calls) == 2
