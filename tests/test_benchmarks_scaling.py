"""benchmarks/scaling.py (the measured part of docs/scaling.md) runs at a tiny size and prints
every figure the document quotes: bytes per row, each analysis stage, and the projection."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_scaling_benchmark_measures_every_stage_and_projects(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "benchmarks/scaling.py", "--problems", "10", "--samples", "16",
         "--resamples", "20", "--fit-resamples", "1", "--out", str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    # 10 problems x 16 samples per run; budgets 1, 2, 4, 8, 16 per problem.
    assert "calls per run 160, attempts per run 50" in out, out
    sizes = {k: int(v) for k, v in re.findall(r"(store|parquet|cache) bytes .* (\d+) B/row", out)}
    # A row holds its ~1,200-character output (and the prompt, in the store and the cache);
    # Parquet compresses, but not below a few hundred bytes of prose per row.
    assert sizes["store"] > 1800 and sizes["cache"] > 1300 and sizes["parquet"] > 200, sizes
    stages = ["load_calls", "load_attempts", "summary", "bootstrap", "frontier", "fits", "report"]
    for stage in stages:
        assert re.search(rf"^{stage} +[\d.]+ s  peak RSS +[\d.]+ GiB", out, re.M), stage
    # The projection's arithmetic is fixed by the study table (docs/scaling.md).
    assert "152,910,000 call rows, 35,340,000 requests" in out, out
    assert "15.12B prompt + 8.41B completion tokens, 1,350,000 attempts" in out, out
    assert list(tmp_path.iterdir()) == [], "the scratch folder is removed"
