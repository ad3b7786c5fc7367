"""The sandbox benchmarks run (tiny) and print their figures: the README names them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "tasks" / "fixtures"


def run_script(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_sandbox_benchmark_prints_programs_per_second() -> None:
    out = run_script("benchmarks/sandbox.py", "--limit", "4", "--workers", "1")
    assert "isolation: bubblewrap" in out or "isolation: no bubblewrap" in out
    assert "4 programs in" in out and "programs/s" in out and "trusted_compare True 4" in out


def test_canonical_benchmark_grades_real_mbpp_rows() -> None:
    out = run_script(
        "benchmarks/canonical.py", "--no-humaneval", "--workers", "1",
        "--mbpp", str(FIXTURES / "mbpp_full_rows.jsonl"),
        "--mbpp", str(FIXTURES / "mbpp_sanitized_rows.json"),
    )  # fmt: skip
    assert "3/3" in out and "5/5" in out, out
