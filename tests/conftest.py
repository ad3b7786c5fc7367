"""Shared fixtures: every test runs in its own results folder, W&B offline, no network."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # tests/fakeserver.py

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


@pytest.fixture(autouse=True)
def private_request_plans(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """litellm's remembered decisions (ttcbench/models/request_plans.py) per test: a job run
    twice in one test uses its first run's plan, as a user's second command would, but no
    test sees another's (nor the user's ~/.cache)."""
    monkeypatch.setenv("TTCBENCH_PLANS", str(tmp_path / "request-plans"))


@pytest.fixture
def results(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private results folder and shared cache for one test."""
    monkeypatch.setenv("TTCBENCH_CACHE", str(tmp_path / "cache.sqlite"))
    return tmp_path / "results"


@pytest.fixture
def fake_openai() -> Iterator[object]:
    from fakeserver import FakeOpenAI

    with FakeOpenAI() as server:
        yield server
