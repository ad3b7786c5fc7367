"""Every logger test runs W&B offline and silent, with its files inside the test's tmp_path."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _wandb_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Offline, silent W&B whose staging/cache/config dirs stay inside tmp_path."""
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    for var in ("WANDB_DATA_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR"):
        monkeypatch.setenv(var, str(tmp_path / var.lower()))
