"""Read W&B offline run files back from disk (wandb 0.31 ships no reader for them).

A `.wandb` file is a LevelDB-style log: a 7-byte header, then 32 KiB blocks of chunks
(crc32, length, type) whose payloads concatenate into protobuf `Record`s, decoded here with
wandb's own schema.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

from wandb.proto import wandb_internal_pb2

_HEADER = b":W&B\xe1\xbe\x00"  # magic, 0xBEE1 little-endian, format version 0
_BLOCK = 32 * 1024
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4


def read_records(path: Path) -> list[Any]:
    """Decode every record of a `.wandb` transaction log (see the module docstring)."""
    data = path.read_bytes()
    assert data[: len(_HEADER)] == _HEADER
    records, pending, pos = [], b"", len(_HEADER)
    while pos + 7 <= len(data):
        if _BLOCK - pos % _BLOCK < 7:  # a block tail too short for a chunk header is padding
            pos += _BLOCK - pos % _BLOCK
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        payload, pos = data[pos + 7 : pos + 7 + length], pos + 7 + length
        if kind in (_FULL, _FIRST):
            pending = payload
        elif kind in (_MIDDLE, _LAST):
            pending += payload
        if kind in (_FULL, _LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            records.append(record)
    return records


def items(items: Any) -> dict[str, Any]:
    """History/summary items as {dotted key: decoded value} (0.31 fills `nested_key`)."""
    return {item.key or ".".join(item.nested_key): json.loads(item.value_json) for item in items}


def records_by_type(path: Path) -> dict[str, list[Any]]:
    """Records of a `.wandb` file grouped by their type (run, history, summary, ...)."""
    by_type: dict[str, list[Any]] = {}
    for record in read_records(path):
        by_type.setdefault(record.WhichOneof("record_type"), []).append(record)
    return by_type


def offline_run(run_dir: Path) -> Path:
    """The one offline W&B run folder of a ttcbench run folder."""
    (offline,) = (run_dir / "wandb").glob("offline-run-*")
    return offline


def sample_tables(run_dir: Path) -> list[dict[str, Any]]:
    """The samples tables (chunks) a ttcbench run logged, as W&B wrote them (call
    `wandb.teardown()` first so the offline log is flushed)."""
    offline = offline_run(run_dir)
    (log_file,) = offline.glob("run-*.wandb")
    history = [items(r.history.item) for r in records_by_type(log_file).get("history", [])]
    return [
        json.loads((offline / "files" / h["samples.path"]).read_text())
        for h in history
        if "samples.path" in h
    ]


def sample_rows(run_dir: Path) -> list[dict[str, Any]]:
    """Every sample row of a run's W&B samples tables, as {column: cell}."""
    return [
        dict(zip(table["columns"], row, strict=True))
        for table in sample_tables(run_dir)
        for row in table["data"]
    ]
