"""`ttcbench-cache`: inspect and compact the call cache's shards (stats, merge, prune).

Every job writes its own shard (ttcbench/cache.py), so a sweep leaves many; a lookup reads
each. `merge` folds the shards no job is writing any more into one new shard, crash-safe:
the output is written under a temporary name, synced and renamed in *before* any input is
deleted, so a kill at any point loses nothing (at worst an entry is in two files, which is
harmless: keys are content hashes). A shard may be taken when its writer marked it closed,
or, on this host, when its writer's lock is free (the job died); a shard another host's job
left open is left alone unless `--force` (that host's lock is invisible from here).
"""

from __future__ import annotations

import argparse
import fcntl
import os
import sqlite3
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ttcbench.cache import (
    cache_dir,
    claim_writer,
    create_shard,
    fsync_path,
    host_name,
    legacy_file,
    new_shard_name,
    open_read_only,
    read_meta,
    roll_back,
    shard_paths,
    writer_host,
    writer_meta,
)
from ttcbench.types import ConfigError

DEFAULT_DIR = Path("results/.cache/calls")
OURS = (".sqlite", ".lock", ".sqlite-journal", ".tmp")


@dataclass
class Shard:
    """One shard as a merge sees it: `state` is closed, legacy, live (its job is writing it),
    dead (its job died on this host), elsewhere (open on another host) or unreadable."""

    path: Path
    state: str
    entries: int = 0
    models: Counter[str] = field(default_factory=Counter)
    fd: int | None = None  # a dead writer's lock, held while merging its shard
    hold: sqlite3.Connection | None = None  # the legacy file's write lock, likewise


def check_folder(folder: Path) -> Path:
    """The cache folder, or a ConfigError that says what to pass instead."""
    folder = cache_dir(folder)
    if not folder.is_dir() and not legacy_file(folder).is_file():
        raise ConfigError(
            f"no call cache at {folder}: pass the folder `cache.path` names "
            f"(default {DEFAULT_DIR}, or $TTCBENCH_CACHE)"
        )
    strays = (
        [p.name for p in folder.iterdir() if not p.name.endswith(OURS)] if folder.is_dir() else []
    )
    if strays or any(_old_style(p) for p in shard_paths(folder) if p != legacy_file(folder)):
        hint = f"{folder / 'calls'}" if (folder / "calls").is_dir() else str(DEFAULT_DIR)
        raise ConfigError(
            f"{folder} is not a call cache folder (it holds {', '.join(strays[:3]) or 'files'} "
            f"that are not cache shards); pass the cache folder itself, e.g. {hint}"
        )
    return folder


def _old_style(path: Path) -> bool:
    """A .sqlite without a meta table: a single-file cache (or no cache), not a shard."""
    try:
        conn = open_read_only(path)
    except sqlite3.Error:
        return False  # a dead job's hot journal: merge rolls it back
    try:
        return not read_meta(conn)
    finally:
        conn.close()


def survey(folder: Path) -> list[Shard]:
    """Every shard with its state and entries by model (read-only: takes nothing)."""
    shards = []
    for path in shard_paths(folder):
        state, fd = _classify(path, folder)
        if fd is not None:
            os.close(fd)
        shard = Shard(path, state)
        try:
            conn = open_read_only(path)
            try:
                rows = conn.execute("SELECT model, COUNT(*) FROM cache GROUP BY model").fetchall()
            finally:
                conn.close()
            shard.models = Counter(dict(rows))
            shard.entries = sum(shard.models.values())
        except sqlite3.Error:  # a dead job's hot journal (merge rolls it back), or vanished
            shard.state = shard.state if shard.state == "dead" else "unreadable"
        shards.append(shard)
    return shards


def _classify(path: Path, folder: Path) -> tuple[str, int | None]:
    """(state, fd holding a dead writer's lock or None). The writer's host is in the shard's
    name (`<host>-<pid>-<random>`), readable even when its file is not."""
    if path == legacy_file(folder):
        return "legacy", None
    try:
        conn = open_read_only(path)
        meta = read_meta(conn)
        conn.close()
    except sqlite3.Error:
        meta = {}
    if "closed" in meta:
        return "closed", None
    if writer_host(path) != host_name():
        return "elsewhere", None
    fd = claim_writer(path)
    return ("live", None) if fd is None else ("dead", fd)


@contextmanager
def _merge_lock(folder: Path) -> Iterator[None]:
    """One merge per folder at a time (two would be safe, only wasteful)."""
    fd = os.open(folder / ".merge.lock", os.O_CREAT | os.O_RDWR, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConfigError(f"another ttcbench-cache merge is running on {folder}") from None
        for stale in folder.glob(f".merged-{host_name()}-*.tmp"):  # a killed merge's output
            stale.unlink(missing_ok=True)
        yield
    finally:
        os.close(fd)


@dataclass
class MergeResult:
    output: Path | None
    merged: list[Path]
    left: list[Shard]
    entries: int = 0
    dropped: int = 0


def merge(folder: Path, force: bool = False, drop_model: str | None = None) -> MergeResult:
    """Compact every shard no job is writing into one (without `drop_model`'s entries)."""
    folder = check_folder(folder)
    folder.mkdir(exist_ok=True)
    with _merge_lock(folder):
        inputs, left = _pick(folder, force)
        taken = list(inputs)  # less any input found unreadable while merging
        try:
            result = MergeResult(None, [], left)
            compact = len(inputs) == 1 and inputs[0].state == "closed" and drop_model is None
            if not inputs or compact:
                return result
            result.output, result.entries, result.dropped = _write(folder, taken, drop_model)
        finally:
            _release(inputs)
        result.merged = [s.path for s in taken]
        result.left += [s for s in inputs if s not in taken]
        for shard in taken:
            _remove(shard.path)
        return result


def _pick(folder: Path, force: bool) -> tuple[list[Shard], list[Shard]]:
    """(shards to merge, holding what keeps writers out until done; shards left alone)."""
    inputs, left = [], []
    for path in shard_paths(folder):
        state, fd = _classify(path, folder)
        shard = Shard(path, state, fd=fd)
        if state == "legacy":
            shard.hold = _hold_legacy(path)
            shard.state = "legacy" if shard.hold is not None else "live"  # an old ttcbench
        if shard.state in ("closed", "dead", "legacy") or (force and shard.state == "elsewhere"):
            if shard.state != "closed":
                roll_back(path)
            inputs.append(shard)
        else:
            _release([shard])
            left.append(shard)
    return inputs, left


def _hold_legacy(path: Path) -> sqlite3.Connection | None:
    """Take the old single file's write lock for the merge: None if a job holds it."""
    conn = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError:
        conn.close()
        return None
    return conn


def _release(shards: list[Shard]) -> None:
    for shard in shards:
        if shard.fd is not None:
            os.close(shard.fd)
        if shard.hold is not None:
            shard.hold.close()
        shard.fd, shard.hold = None, None


def _write(folder: Path, inputs: list[Shard], drop_model: str | None) -> tuple[Path, int, int]:
    """Write the merged shard: temporary name, journal in memory (a crash discards the whole
    file), fsync, atomic rename, fsync of the folder. Returns (path, entries, dropped). An
    input SQLite cannot read (damaged by an OS crash) is left out, and left in place."""
    name = new_shard_name("merged-")
    temp, final = folder / f".{name}.tmp", folder / f"{name}.sqlite"
    meta = {**writer_meta(), "merged_from": str(len(inputs))}
    create_shard(temp, meta)
    conn = sqlite3.connect(temp.absolute().as_uri(), uri=True, isolation_level=None)
    conn.execute("PRAGMA journal_mode=MEMORY")
    conn.execute("PRAGMA synchronous=OFF")
    dropped = 0
    for shard in list(inputs):
        try:
            dropped += _copy(conn, shard.path, drop_model)
        except sqlite3.DatabaseError as error:
            print(f"ttcbench-cache: skipped {shard.path} (unreadable: {error})", file=sys.stderr)
            shard.state = "unreadable"
            inputs.remove(shard)
    conn.execute("INSERT INTO meta VALUES ('closed', ?)", (meta["created"],))
    entries = conn.execute("SELECT COUNT(*) FROM cache").fetchone()[0]
    conn.close()
    fsync_path(temp)
    os.rename(temp, final)
    fsync_path(folder)
    return final, entries, dropped


def _copy(conn: sqlite3.Connection, path: Path, drop_model: str | None) -> int:
    """Copy one input's entries in one transaction (all or none); the entries dropped."""
    conn.execute("ATTACH DATABASE ? AS src", (f"{path.absolute().as_uri()}?mode=ro",))
    try:
        conn.execute("BEGIN")
        try:
            sql = "SELECT COUNT(*) FROM src.cache WHERE model = ?"
            dropped = conn.execute(sql, (drop_model,)).fetchone()[0] if drop_model else 0
            conn.execute(
                "INSERT OR IGNORE INTO cache SELECT key, model, payload FROM src.cache "
                "WHERE model IS NOT ?",
                (drop_model,),
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    finally:
        conn.execute("DETACH DATABASE src")
    return int(dropped)


def _remove(path: Path) -> None:
    for suffix in ("-journal", "-wal", "-shm", ""):
        path.with_name(path.name + suffix).unlink(missing_ok=True)
    if path.suffix == ".sqlite":
        path.with_suffix(".lock").unlink(missing_ok=True)


def stats(folder: Path) -> str:
    """Shards by state, entries, bytes, and entries per model (duplicates counted)."""
    folder = check_folder(folder)
    shards = survey(folder)
    size = sum(p.stat().st_size for s in shards for p in [s.path] if p.exists())
    states = Counter(s.state for s in shards)
    models: Counter[str] = sum((s.models for s in shards), Counter())
    lines = [
        f"call cache {folder}: {len(shards)} shards, {sum(models.values())} entries, "
        f"{size / 1e6:.1f} MB",
        "  shards: " + ", ".join(f"{n} {state}" for state, n in sorted(states.items())),
        *(f"  {model}: {n}" for model, n in sorted(models.items())),
    ]
    if len(shards) > 1:
        lines.append(f"  (run `ttcbench-cache merge {folder}` to compact them into one)")
    return "\n".join(lines)


def describe(result: MergeResult, folder: Path, drop_model: str | None) -> str:
    """What a merge or prune did, and what it left for later."""
    if result.output is None:
        done = f"nothing to merge in {folder}"
    else:
        done = (
            f"merged {len(result.merged)} shards into {result.output.name} "
            f"({result.entries} entries)"
        )
    if drop_model is not None:
        done += f"; removed {result.dropped} entries of {drop_model}"
    if result.left:
        states = Counter(s.state for s in result.left)
        done += "; left alone: " + ", ".join(f"{n} {state}" for state, n in sorted(states.items()))
        if states.get("elsewhere"):
            done += " (open on another host: pass --force once those jobs are dead)"
    return done


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="ttcbench-cache", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    default = os.environ.get("TTCBENCH_CACHE") or str(DEFAULT_DIR)
    for name, text in (
        ("stats", "shards, entries, bytes and entries per model"),
        ("merge", "compact the shards no job is writing into one"),
        ("prune", "remove a model's entries (from the shards no job is writing)"),
    ):
        command = commands.add_parser(name, help=text, description=text)
        where = f"the cache folder (default $TTCBENCH_CACHE or {DEFAULT_DIR})"
        command.add_argument("dir", nargs="?", type=Path, default=Path(default), help=where)
        if name != "stats":
            force = "also take shards other hosts' jobs left open (only once they are dead)"
            command.add_argument("--force", action="store_true", help=force)
        if name == "prune":
            command.add_argument("--model", required=True, help="the model name as cached")
    args = parser.parse_args(argv)
    try:
        if args.command == "stats":
            print(stats(args.dir))
            return
        drop = args.model if args.command == "prune" else None
        result = merge(args.dir, force=args.force, drop_model=drop)
        print(describe(result, cache_dir(args.dir), drop))
    except (ConfigError, OSError) as err:
        print(f"ttcbench-cache: error: {err}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
