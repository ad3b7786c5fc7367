"""Tests for the run loggers, reading real offline W&B run files back from disk.

wandb 0.31 ships no Python reader for `.wandb` files (the old `internal.datastore` moved into
the Go `wandb-core`), so `_read_records` decodes the file here: it is a LevelDB-style log
(32 KiB blocks of crc/length/type-framed chunks) after a 7-byte `:W&B` header, and every
record is a `wandb.proto.wandb_internal_pb2.Record`, wandb's own schema.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import matplotlib
import pytest
import wandb
from wandbfiles import items, read_records

from ttcbench.loggers import NullLogger, RunLogger, make_logger
from ttcbench.loggers.wandb_logger import WandbLogger, flatten_row

matplotlib.use("Agg")


def _sample_rows(n: int) -> list[dict[str, Any]]:
    """Rows shaped like the runner's: scalars, a None, and a `classes` dict."""
    families = ["algebra", "geometry", "number_theory"]
    return [
        {
            "problem_id": f"p{i}",
            "strategy": "best_of_n",
            "budget": 4,
            "tokens_out": i % 97,
            "score": (i % 3) / 2,
            "correct": i % 2 == 0,
            "extracted": None if i % 5 == 0 else str(i),
            "classes": {"family": families[i % 3], "difficulty": str(i % 4)},
        }
        for i in range(n)
    ]


def _make_png(path: Path) -> Path:
    """A real (tiny) matplotlib plot, like the analysis step produces."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot([1, 2, 4], [0.2, 0.4, 0.5])
    fig.savefig(path)
    plt.close(fig)
    return path


def _new_logger(run_dir: Path, chunk_rows: int = 1000) -> WandbLogger:
    return WandbLogger(
        project="ttcbench-test",
        group="sweep-42",
        name="job-0",
        config={"task": "gsm8k", "strategy": {"name": "best_of_n", "n": 8}},
        run_dir=run_dir,
        tags=("test",),
        chunk_rows=chunk_rows,
    )


def test_offline_run_reads_back_from_disk(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    logger = _new_logger(run_dir)
    assert isinstance(logger, RunLogger) and logger.enabled
    rows = _sample_rows(2500)
    for start in range(0, len(rows), 37):
        logger.log_samples(rows[start : start + 37])
        assert logger.buffered_rows <= logger.chunk_rows  # memory stays bounded
    accuracies = [0.1, 0.25, 0.4, 0.5, 0.55]
    curve = [
        {"budget": b, "accuracy": a, "ci_low": a - 0.05, "ci_high": a + 0.05, "tokens": 100 * b,
         "calls": b, "strategy": "best_of_n"}
        for b, a in zip([1, 2, 4, 8, 16], accuracies, strict=True)
    ]  # fmt: skip
    logger.log_curve(curve)
    logger.log_summary({"accuracy_at_max_budget": 0.55, "n_samples": 2500, "path": run_dir})
    summary_md = run_dir / "summary.md"
    summary_md.write_text("# Summary\n")
    data = run_dir / "attempts.parquet"
    data.write_bytes(b"PAR1")  # a data file: never copied into W&B's folder under results/
    logger.log_files([_make_png(run_dir / "accuracy_vs_compute.png"), summary_md, data])
    logger.finish()
    assert not logger.enabled
    # run.finish() can return before wandb-core has flushed the offline transaction log
    # (seen in 0.31: ~1 in 30 runs read back a header-only file); teardown waits for the
    # service process to exit, which closes every run file.
    wandb.teardown()

    (offline,) = (run_dir / "wandb").glob("offline-run-*")
    (log_file,) = offline.glob("run-*.wandb")
    records = read_records(log_file)
    by_type: dict[str, list[Any]] = {}
    for record in records:
        by_type.setdefault(record.WhichOneof("record_type"), []).append(record)

    (run_record,) = by_type["run"]
    assert run_record.run.run_group == "sweep-42"
    assert run_record.run.display_name == "job-0"
    config = items(run_record.run.config.update)
    assert config["strategy"] == {"name": "best_of_n", "n": 8}
    assert config["task"] == "gsm8k"

    history = [items(r.history.item) for r in by_type["history"]]
    chunks = [h for h in history if "samples_chunk" in h]
    assert [h["samples_chunk"] for h in chunks] == [0, 1, 2]
    tables = [json.loads((offline / "files" / h["samples.path"]).read_text()) for h in chunks]
    assert [len(t["data"]) for t in tables] == [1000, 1000, 500]
    assert len(list((offline / "files/media/table").glob("samples_*.table.json"))) == 3
    # A known row round-trips, with `classes` flattened into per-key columns named as in
    # calls.parquet (`class_<label>`).
    table = tables[1]
    row = dict(zip(table["columns"], table["data"][1234 - 1000], strict=True))
    assert row == flatten_row(rows[1234])
    assert row["class_family"] == "geometry" and row["extracted"] == "1234"

    curve_rows = [h for h in history if "budget" in h]
    assert [h["accuracy"] for h in curve_rows] == accuracies
    assert [h["budget"] for h in curve_rows] == [1, 2, 4, 8, 16]
    metrics = {r.metric.name: r.metric.step_metric for r in by_type["metric"]}
    for name in ("accuracy", "ci_low", "ci_high", "tokens", "calls"):
        assert metrics[name] == "budget"

    summary: dict[str, Any] = {}
    for record in by_type["summary"]:
        summary.update(items(record.summary.update))
    assert summary["accuracy_at_max_budget"] == 0.55 and summary["n_samples"] == 2500
    assert summary["path"] == str(run_dir)

    image = next(h for h in history if "plots/accuracy_vs_compute.path" in h)
    assert (offline / "files" / image["plots/accuracy_vs_compute.path"]).is_file()
    assert (offline / "files/summary.md").read_text() == "# Summary\n"
    saved = {f.path for r in by_type["files"] for f in r.files.files}
    assert "summary.md" in saved and "attempts.parquet" not in saved
    assert not list((run_dir / "wandb").rglob("*.parquet"))


def test_init_failure_is_reported_once_and_later_calls_are_noops(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken_init(**_: Any) -> None:
        raise ConnectionError("service unreachable\nsecond line")

    monkeypatch.setattr(wandb, "init", broken_init)
    with caplog.at_level(logging.WARNING, logger="ttcbench"):
        logger = _new_logger(tmp_path / "run", chunk_rows=2)
        logger.log_samples(_sample_rows(5))
        logger.log_curve([{"budget": 1, "accuracy": 0.5}])
        logger.log_summary({"a": 1})
        logger.log_files([tmp_path / "missing.png"])
        logger.finish()
    assert not logger.enabled and logger.buffered_rows == 0
    (warning,) = [r for r in caplog.records if r.levelno >= logging.WARNING]
    text = warning.getMessage()
    assert "wandb.init" in text and "ConnectionError" in text and "\n" not in text


def test_table_failure_mid_run_disables_logger(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    logger = _new_logger(tmp_path / "run", chunk_rows=10)
    assert logger.enabled
    logger.log_samples(_sample_rows(10))  # one good chunk before the failure

    def broken_table(*_: Any, **__: Any) -> None:
        raise RuntimeError("table serialisation broke")

    monkeypatch.setattr(wandb, "Table", broken_table)
    with caplog.at_level(logging.WARNING, logger="ttcbench"):
        logger.log_samples(_sample_rows(15))
        assert not logger.enabled and logger.buffered_rows == 0
        logger.log_samples(_sample_rows(30))
        logger.log_curve([{"budget": 1, "accuracy": 0.5}])
        logger.log_summary({"a": 1})
        logger.finish()
    (warning,) = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert "logging samples" in warning.getMessage()
    assert "table serialisation broke" in warning.getMessage()


def test_bad_chunk_rows_is_a_caller_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="chunk_rows"):
        _new_logger(tmp_path / "run", chunk_rows=0)


def test_flatten_row_encodes_classes_and_containers() -> None:
    flat = flatten_row({"id": "p1", "classes": {"family": "algebra"}, "votes": [1, 2], "x": None,
                        "usage": {"in": 3}})  # fmt: skip
    assert flat == {"id": "p1", "class_family": "algebra", "votes": "[1, 2]", "x": None,
                    "usage.in": 3}  # fmt: skip


def test_null_logger_and_make_logger(tmp_path: Path) -> None:
    null = make_logger("none", project="p", run_dir=tmp_path)
    assert isinstance(null, NullLogger) and isinstance(null, RunLogger)
    null.log_samples(_sample_rows(3))
    null.log_curve([{"budget": 1, "accuracy": 0.5}])
    null.log_summary({"a": 1})
    null.log_files([tmp_path / "x.png"])
    null.finish()
    with pytest.raises(ValueError, match="'none', 'wandb'") as info:
        make_logger("bogus")
    assert "'bogus'" in str(info.value)
