"""`ttcbench.load`: one frame from one run, many runs or a results root, each row once, never
from W&B's copies; clear errors for what is not a run."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from fakeserver import FakeOpenAI
from smokerun import overrides, smoke_run

import ttcbench
from ttcbench.load import LoadError, load


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, list[Path]]]:
    """A results root with two runs of arithmetic (single and majority_vote)."""
    results = tmp_path_factory.mktemp("load") / "results"
    with FakeOpenAI() as server:
        args = [*overrides(results, server.api_base, "logger=none"), "task.limit=2"]
        runs = [ttcbench.run([*args, f"strategy={s}"], progress=False)
                for s in ("single", "majority_vote")]  # fmt: skip
    yield results, runs


def parquet_rows(runs: list[Path], what: str) -> pd.DataFrame:
    return pd.concat([pd.read_parquet(r / f"{what}.parquet") for r in runs], ignore_index=True)


def same_rows(loaded: pd.DataFrame, expected: pd.DataFrame, keys: list[str]) -> None:
    got = loaded.drop(columns="run").sort_values(keys, ignore_index=True)
    want = expected.sort_values(keys, ignore_index=True)[got.columns]
    pd.testing.assert_frame_equal(got, want, check_dtype=False)


def test_load_one_run_two_runs_and_a_results_root(two_runs: tuple[Path, list[Path]]) -> None:
    results, runs = two_runs
    one = load(runs[0])
    assert list(one.columns[:1]) == ["run"] and one["run"].nunique() == 1
    same_rows(one, parquet_rows(runs[:1], "calls"), ["problem_id", "key"])
    keys = ["run", "task", "problem_id", "key"]
    for loaded in (load(*runs), load(results), load(results, runs[1], str(runs[0]))):
        assert not loaded.duplicated(keys).any()
        assert set(loaded["run"]) == {str(r) for r in runs}  # absolute: not under the cwd
        same_rows(loaded, parquet_rows(runs, "calls"), keys[1:] + ["strategy"])
    attempts = load(results, what="attempts")
    same_rows(attempts, parquet_rows(runs, "attempts"), ["strategy", "budget", "problem_id"])
    assert (attempts["model"] == "fake").all()
    summary = load(results, what="summary")
    assert len(summary) == 1 + 2 and (summary["model"] == "fake").all()
    assert {label.split()[0] for label in summary["strategy"]} == {"single", "majority_vote"}
    assert ttcbench.load(runs[0] / "calls.parquet").equals(one)  # a run's file names its run


def test_load_never_reads_wandb_copies() -> None:
    run_dir = smoke_run()
    results = run_dir.parents[2]
    expected = load(results, what="attempts")
    # An older ttcbench saved the data files into W&B's run folder: they must not count.
    copy = results.parent / "copy"
    shutil.copytree(run_dir, copy / "run", ignore=shutil.ignore_patterns("wandb", "*.lock"))
    offline = next((copy / "run").parent.glob("run")) / "wandb" / "offline-run-x" / "files"
    offline.mkdir(parents=True)
    shutil.copy(run_dir / "attempts.parquet", offline / "attempts.parquet")
    assert len(load(copy, what="attempts")) == len(expected)
    with pytest.raises(LoadError, match="W&B's copy"):
        load(offline)
    shutil.rmtree(copy)


def test_a_run_with_only_its_store_is_read_read_only(two_runs: tuple[Path, list[Path]],
                                                     tmp_path: Path) -> None:  # fmt: skip
    _, runs = two_runs
    run = tmp_path / "stored"
    run.mkdir()
    shutil.copy(runs[1] / "store.sqlite", run / "store.sqlite")
    before = (run / "store.sqlite").read_bytes()
    for what, keys in (("calls", ["problem_id", "key"]), ("attempts", ["budget", "problem_id"])):
        same_rows(load(run, what=what), parquet_rows(runs[1:], what), keys)
    assert (run / "store.sqlite").read_bytes() == before
    # Nothing else written (SQLite's shared-memory index for readers of a WAL store aside).
    assert {p.name for p in run.iterdir()} <= {"store.sqlite", "store.sqlite-shm",
                                               "store.sqlite-wal"}  # fmt: skip
    assert not (run / "store.sqlite-wal").exists() or not (run / "store.sqlite-wal").stat().st_size
    with pytest.raises(LoadError, match="has no summary.csv.*what='attempts'"):
        load(run, what="summary")


def test_stray_and_corrupt_files(two_runs: tuple[Path, list[Path]], tmp_path: Path,
                                 caplog: pytest.LogCaptureFixture) -> None:  # fmt: skip
    _, runs = two_runs
    results = tmp_path / "results"
    shutil.copytree(runs[0], results / "good")
    stray = results / "notes" / "attempts.parquet"
    stray.parent.mkdir()
    stray.write_bytes(b"not parquet at all")
    with pytest.raises(LoadError, match=f"cannot read {stray}.*move it out"):
        load(results, what="attempts")
    pd.DataFrame({"x": [1]}).to_parquet(stray)  # Parquet, but not a ttcbench export
    with pytest.raises(LoadError, match=f"{stray} is not a ttcbench attempts export"):
        load(results, what="attempts")
    stray.unlink()
    (results / "good" / "calls.parquet").write_bytes(b"garbage")  # the store still has it all
    with caplog.at_level(logging.WARNING, logger="ttcbench"):
        loaded = load(results / "good")
    same_rows(loaded, parquet_rows(runs[:1], "calls"), ["problem_id", "key"])
    assert "reading" in caplog.text and "store.sqlite" in caplog.text


def test_nothing_to_load_says_where_and_what_to_give(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(LoadError, match=f"no runs found in {empty}: give a run folder"):
        load(empty)
    with pytest.raises(LoadError, match="does not exist"):
        load(tmp_path / "missing")
    with pytest.raises(LoadError, match="no paths given"):
        load()
    with pytest.raises(LoadError, match="use one of calls, attempts, summary"):
        load(empty, what="samples")  # type: ignore[arg-type]
