"""The call cache is safe across hosts and processes (issue 14, item 2): each job writes only
its own shard, every job reads all of them, and `ttcbench-cache` compacts them.

Real processes and real SQLite throughout: concurrent writers that read each other, real
`ttcbench` jobs against the fake server (request counts prove nothing is paid twice), merges
next to a live writer and merges killed with SIGKILL at random points.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from fakeserver import FakeOpenAI
from test_cli import CLI, cli_env

from ttcbench.cache import CallCache, cache_dir, create_shard, legacy_file, shard_paths

CACHE_CLI = [sys.executable, "-m", "ttcbench.cache_cli"]

WRITER = r"""
import json, random, sys, time
from pathlib import Path
from ttcbench.cache import CallCache
folder, me, writers, n = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
def payload(w, i):
    return {"text": f"writer {w} sample {i} " + "x" * (i % 50), "w": w, "i": i}
gate = folder.parent
while not (gate / "go").exists():
    time.sleep(0.01)
started = time.perf_counter()
cache = CallCache(folder, refresh_s=0.1)
rng, lookups, hits, i = random.Random(me), 0, 0, 0
while i < n:  # write a request's worth at a time, and look up others' keys in between
    batch = range(i, min(n, i + rng.randint(1, 4)))
    cache.put_many([(f"w{me}-{j}", f"model-{j % 3}", payload(me, j)) for j in batch])
    i = batch.stop
    for _ in range(2):
        w, j = rng.randrange(writers), rng.randrange(n)
        got, lookups = cache.get(f"w{w}-{j}"), lookups + 1
        if got is not None:
            assert got == payload(w, j), (w, j, got)
            hits += 1
(gate / f"done{me}").touch()
while not all((gate / f"done{w}").exists() for w in range(writers)):
    time.sleep(0.01)
time.sleep(0.15)  # past refresh_s: the next lookup lists the folder again
for w in range(writers):  # every writer is done but none has closed: all must be visible
    for j in range(me, n, 5):
        assert cache.get(f"w{w}-{j}") == payload(w, j), ("not visible", w, j)
        lookups += 1
shard = str(cache.shards()[0])
cache.close()
print(json.dumps({"shard": shard, "lookups": lookups, "hits_while_writing": hits,
                  "seconds": time.perf_counter() - started}))
"""

HOLDER = r"""
import sys
from pathlib import Path
from ttcbench.cache import CallCache
cache = CallCache(Path(sys.argv[1]))
cache.put_many([(f"live-{i}", "live-model", {"i": i}) for i in range(int(sys.argv[2]))])
print(cache.shards()[0], flush=True)
sys.stdin.readline()  # hold the shard open until told
cache.put_many([("live-late", "live-model", {"i": -1})])
cache.close()
"""

KILLED_MID_COMMIT = r"""
import os, signal, sys
from pathlib import Path
from ttcbench.cache import CallCache
cache = CallCache(Path(sys.argv[1]))
cache.put_many([(f"kept-{i}", "m", {"i": i}) for i in range(20)])
conn = cache._own.conn  # a commit cut short: pages spilled into the file, the journal hot
conn.execute("PRAGMA cache_size=1")
conn.execute("BEGIN")
lost = [(f"lost-{i}", "y" * 500) for i in range(5000)]
conn.executemany("INSERT INTO cache VALUES (?, 'm', ?)", lost)
os.kill(os.getpid(), signal.SIGKILL)
"""


def payload(writer: int, i: int) -> dict[str, Any]:
    return {"text": f"writer {writer} sample {i} " + "x" * (i % 50), "w": writer, "i": i}


def shard_rows(path: Path) -> dict[str, tuple[str, str]]:
    """key -> (model, payload) of one shard, read-only."""
    with sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True) as conn:
        return {k: (m, p) for k, m, p in conn.execute("SELECT key, model, payload FROM cache")}


def all_rows(folder: Path) -> dict[str, tuple[str, str]]:
    rows: dict[str, tuple[str, str]] = {}
    for path in shard_paths(folder):
        rows.update(shard_rows(path))
    return rows


def integrity(path: Path) -> str:
    with sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True) as conn:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])


def meta(path: Path) -> dict[str, str]:
    with sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True) as conn:
        return dict(conn.execute("SELECT name, value FROM meta").fetchall())


def cache_cmd(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CACHE_CLI, *args], capture_output=True, text=True, timeout=120)


def closed_shard(folder: Path, entries: list[tuple[str, str, dict[str, Any]]]) -> Path:
    cache = CallCache(folder)
    cache.put_many(entries)
    path = cache.shards()[0]
    cache.close()
    return path


def test_concurrent_writers_read_each_other_and_corrupt_nothing(tmp_path: Path) -> None:
    writers, entries = 4, 2000
    folder = tmp_path / "calls"
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(folder), str(w), str(writers),
                          str(entries)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for w in range(writers)
    ]  # fmt: skip
    started = time.perf_counter()
    (tmp_path / "go").touch()
    reports = []
    for proc in procs:
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
        reports.append(json.loads(out))
    elapsed = time.perf_counter() - started

    shards = shard_paths(folder)
    assert sorted(map(str, shards)) == sorted(r["shard"] for r in reports)
    for proc, report in zip(procs, reports, strict=True):
        shard = Path(report["shard"])
        assert integrity(shard) == "ok"
        assert meta(shard)["pid"] == str(proc.pid) and "closed" in meta(shard)
        writer = procs.index(proc)  # the shard holds its writer's entries and no one else's
        assert set(shard_rows(shard)) == {f"w{writer}-{j}" for j in range(entries)}
    assert sorted(p.name for p in folder.iterdir()) == sorted(p.name for p in shards)
    fresh = CallCache(folder)
    assert all(
        fresh.get(f"w{w}-{j}") == payload(w, j) for w in range(writers) for j in range(entries)
    )
    fresh.close()
    lookups = sum(r["lookups"] for r in reports)
    hits = sum(r["hits_while_writing"] for r in reports)
    print(f"\nconcurrent cache: {writers} processes x {entries} entries, {lookups} lookups "
          f"({hits} hits on others' entries while writing), {elapsed:.1f} s, "
          f"integrity ok on {len(shards)} shards; load {os.getloadavg()[0]:.1f}")  # fmt: skip


def job_args(tmp: Path, api_base: str, *overrides: str) -> list[str]:
    return [*CLI, "model=llamacpp_server", f"model.api_base={api_base}", "model.name=fake",
            "logger=none", "runner.concurrency=2", "task.limit=3", "budget=pow2_4",
            f"results_dir={tmp / 'results'}", *overrides]  # fmt: skip


def run_jobs(tmp: Path, server: FakeOpenAI, cache: Path, *configs: list[str]) -> None:
    """Run the jobs at the same time, each a `ttcbench` process on the shared cache."""
    env = {**cli_env(tmp), "TTCBENCH_CACHE": str(cache)}
    procs = [
        subprocess.Popen(job_args(tmp, server.api_base, *c), cwd=tmp, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for c in configs
    ]  # fmt: skip
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err


def sample_ids(requests: list[dict[str, Any]]) -> list[tuple[str, Any]]:
    """(prompt, seed) of each request: one sample each (this model's max_n is 1)."""
    return [(json.dumps(r["messages"], sort_keys=True), r.get("seed")) for r in requests]


def test_concurrent_jobs_pay_nothing_that_was_cached_before_they_started(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    with FakeOpenAI() as server:
        server.delay_s = 0.01
        run_jobs(tmp_path, server, cache, ["strategy=majority_vote"])
        before = set(sample_ids(server.requests))
        assert len(before) == len(server.requests) == 12  # 3 problems x 4 samples
        server.requests.clear()
        run_jobs(
            tmp_path,
            server,
            cache,
            ["strategy=best_of_n", "verifier=oracle"],  # the same 4-sample pools
            ["strategy=majority_vote", "budget=pow2_8"],  # 4 more samples each
            ["strategy=majority_vote", "task.limit=5"],
        )  # 2 more problems
    during = sample_ids(server.requests)
    repaid = [s for s in during if s in before]
    print(
        f"\ncache across concurrent jobs: 12 samples cached before, {len(during)} requests "
        f"by the 3 concurrent jobs, {len(repaid)} of them for a cached sample"
    )
    assert repaid == []
    assert len(during) >= 12 + 8  # pow2_8's new samples and task.limit=5's new problems
    rows = all_rows(cache)
    assert len(rows) == len(before | set(during))
    assert all(integrity(p) == "ok" for p in shard_paths(cache))


def test_merge_leaves_a_live_writer_alone_then_compacts_everything(tmp_path: Path) -> None:
    folder = tmp_path / "calls"
    for s in range(3):
        closed_shard(folder, [(f"c{s}-{i}", f"m{i % 2}", {"s": s, "i": i}) for i in range(50)])
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder), "40"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert holder.stdout is not None and holder.stdin is not None
    live = Path(holder.stdout.readline().strip())
    expected = all_rows(folder)
    assert len(expected) == 3 * 50 + 40

    done = cache_cmd("merge", str(folder))
    assert done.returncode == 0, done.stderr
    assert "merged 3 shards" in done.stdout and "1 live" in done.stdout
    assert live.exists() and live in shard_paths(folder) and len(shard_paths(folder)) == 2
    assert all_rows(folder) == expected

    holder.stdin.write("\n")
    holder.stdin.flush()
    assert holder.wait(timeout=60) == 0
    done = cache_cmd("merge", str(folder))
    assert done.returncode == 0, done.stderr
    [merged] = shard_paths(folder)
    assert shard_rows(merged) == {**expected, "live-late": ("live-model", '{"i": -1}')}
    left = sorted(os.listdir(folder))  # no journal, lock or temporary file of anyone's
    assert integrity(merged) == "ok" and left == [".merge.lock", merged.name]


def test_a_writer_killed_mid_commit_keeps_what_it_committed(tmp_path: Path) -> None:
    folder = tmp_path / "calls"
    killed = subprocess.run([sys.executable, "-c", KILLED_MID_COMMIT, str(folder)], timeout=120)
    assert killed.returncode == -signal.SIGKILL
    [shard] = shard_paths(folder)
    assert Path(f"{shard}-journal").exists()  # hot: read-only connections refuse the file
    assert "1 dead" in cache_cmd("stats", str(folder)).stdout

    cache = CallCache(folder)  # the writer is dead, on this host: the reader recovers it
    assert cache.get("kept-3") == {"i": 3} and cache.get("lost-1") is None
    cache.close()
    assert not Path(f"{shard}-journal").exists() and integrity(shard) == "ok"
    done = cache_cmd("merge", str(folder))
    assert done.returncode == 0, done.stderr
    [merged] = shard_paths(folder)
    assert not shard.exists() and set(shard_rows(merged)) == {f"kept-{i}" for i in range(20)}


def test_a_merge_killed_at_any_point_loses_nothing(tmp_path: Path) -> None:
    rng = random.Random(14)
    kills_mid_merge = 0
    for round_ in range(5):
        folder = tmp_path / f"calls{round_}"
        for s in range(8):
            closed_shard(
                folder, [(f"{s}-{i}", "m", {"pad": "y" * 300, "i": i}) for i in range(1500)]
            )
        expected = all_rows(folder)
        merge = subprocess.Popen([*CACHE_CLI, "merge", str(folder)], stdout=subprocess.PIPE)
        if round_ == 0:  # once surely mid-way: as soon as its output file exists
            while not list(folder.glob(".merged-*.tmp")) and merge.poll() is None:
                time.sleep(0.001)
        else:
            time.sleep(rng.uniform(0.05, 0.6))
        merge.send_signal(signal.SIGKILL)
        kills_mid_merge += merge.wait(timeout=60) == -signal.SIGKILL
        assert all_rows(folder) == expected
        assert all(integrity(p) == "ok" for p in shard_paths(folder))
        done = cache_cmd("merge", str(folder))  # the next merge finishes the job
        assert done.returncode == 0, done.stderr
        [merged] = shard_paths(folder)
        assert shard_rows(merged) == expected and not list(folder.glob(".*.tmp"))
    assert kills_mid_merge >= 1
    print(f"\nmerge killed 5 times, {kills_mid_merge} of them mid-merge: nothing lost")


def old_single_file(path: Path, rows: dict[str, tuple[str, str]]) -> None:
    """A cache as ttcbench wrote it before shards: one WAL-mode file, table `cache`."""
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE cache (key TEXT PRIMARY KEY, model TEXT, payload TEXT)")
    conn.executemany("INSERT INTO cache VALUES (?, ?, ?)", [(k, *v) for k, v in rows.items()])
    conn.commit()
    conn.close()


def test_the_old_single_file_cache_still_serves_and_merges_in(tmp_path: Path) -> None:
    caches = tmp_path / "caches"
    with FakeOpenAI() as server:
        (tmp_path / "a").mkdir()
        run_jobs(tmp_path / "a", server, caches / "a.sqlite", ["strategy=majority_vote"])
        assert len(server.requests) == 12
        assert cache_dir(caches / "a.sqlite") == caches / "a"  # an old path means a folder
        old = caches / "b.sqlite"
        old_single_file(old, all_rows(caches / "a"))
        assert legacy_file(caches / "b") == old
        server.requests.clear()
        (tmp_path / "b").mkdir()  # a new results folder: only the old cache file can answer
        run_jobs(tmp_path / "b", server, old, ["strategy=majority_vote"])
        assert server.requests == []

    done = cache_cmd("merge", str(old))  # the old path names the folder too
    assert done.returncode == 0, done.stderr
    assert not old.exists() and not Path(f"{old}-wal").exists()
    [merged] = shard_paths(caches / "b")
    assert shard_rows(merged) == all_rows(caches / "a")


def test_prune_removes_a_models_entries_from_shards_no_job_writes(tmp_path: Path) -> None:
    folder = tmp_path / "calls"
    closed_shard(folder, [(f"a{i}", "gpt", {"i": i}) for i in range(10)])
    closed_shard(folder, [(f"b{i}", "claude", {"i": i}) for i in range(7)])
    stats = cache_cmd("stats", str(folder))
    assert stats.returncode == 0, stats.stderr
    assert "2 shards, 17 entries" in stats.stdout and "2 closed" in stats.stdout
    assert "  claude: 7" in stats.stdout and "  gpt: 10" in stats.stdout
    holder = subprocess.Popen([sys.executable, "-c", HOLDER.replace("live-model", "gpt"),
                               str(folder), "5"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True)  # fmt: skip
    assert holder.stdout is not None and holder.stdin is not None
    live = Path(holder.stdout.readline().strip())
    done = cache_cmd("prune", "--model", "gpt", str(folder))
    assert done.returncode == 0, done.stderr
    assert "removed 10 entries of gpt" in done.stdout and "1 live" in done.stdout
    rows = all_rows(folder)
    assert {k for k, (m, _) in rows.items() if m == "gpt"} == {f"live-{i}" for i in range(5)}
    assert len([k for k, (m, _) in rows.items() if m == "claude"]) == 7 and live.exists()
    holder.stdin.write("\n")
    holder.stdin.close()
    assert holder.wait(timeout=60) == 0
    stats = cache_cmd("stats", str(folder)).stdout
    assert "2 shards, 13 entries" in stats and "  gpt: 6" in stats


@pytest.mark.parametrize("command", ["stats", "merge"])
def test_a_missing_or_wrong_folder_is_a_clear_error(tmp_path: Path, command: str) -> None:
    missing = cache_cmd(command, str(tmp_path / "nope"))
    assert missing.returncode == 2 and f"no call cache at {tmp_path / 'nope'}" in missing.stderr
    results = tmp_path / "results" / ".cache"
    closed_shard(results / "calls", [("k", "m", {})])
    wrong = cache_cmd(command, str(results))  # the folder above the cache
    assert wrong.returncode == 2 and "is not a call cache folder" in wrong.stderr
    assert f"e.g. {results / 'calls'}" in wrong.stderr and "Traceback" not in wrong.stderr
    assert shard_paths(results / "calls")  # nothing was touched


def test_an_empty_job_leaves_no_shard_and_a_failed_put_writes_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "calls"
    CallCache(folder).close()
    assert not folder.exists() or list(folder.iterdir()) == []
    cache = CallCache(folder)
    with pytest.raises(TypeError):
        cache.put_many([("a", "m", {"text": "1"}), ("b", "m", {"text": object()})])
    assert cache.get("a") is None
    cache.close()
    assert shard_paths(folder) == []


def test_a_shard_another_host_left_open_is_merged_only_with_force(tmp_path: Path) -> None:
    folder = tmp_path / "calls"
    closed_shard(folder, [("here", "m", {"i": 0})])
    other = folder / "otherhost-4242-0badf00d.sqlite"  # its writer may live: we cannot tell
    create_shard(other, {"host": "otherhost", "pid": "4242", "created": "2026-01-01T00:00:00Z"})
    with sqlite3.connect(other) as conn:
        conn.execute("INSERT INTO cache VALUES ('there', 'm', '{}')")
    reader = CallCache(folder)
    assert reader.get("there") == {}  # read all the same
    reader.close()

    done = cache_cmd("merge", str(folder))
    assert done.returncode == 0 and "1 elsewhere" in done.stdout and "--force" in done.stdout
    assert other.exists() and len(shard_paths(folder)) == 2
    done = cache_cmd("merge", "--force", str(folder))
    assert done.returncode == 0, done.stderr
    [merged] = shard_paths(folder)
    assert set(shard_rows(merged)) == {"here", "there"}


def test_a_shard_made_after_a_reader_started_answers_at_once(tmp_path: Path) -> None:
    folder = tmp_path / "calls"
    reader = CallCache(folder, refresh_s=3600)  # only the folder's change can prompt a look
    writer = CallCache(folder)
    assert reader.get("k") is None
    writer.put("k", "m", {"v": 1})
    assert reader.get("k") == {"v": 1}
    writer.put("k2", "m", {"v": 2})  # a commit to a known shard needs no new look
    assert reader.get("k2") == {"v": 2}
    writer.close()
    reader.close()


def test_a_damaged_shard_is_a_miss_and_merge_leaves_it_in_place(tmp_path: Path) -> None:
    folder = tmp_path / "calls"
    good = closed_shard(folder, [("good", "m", {"v": 1})])
    damaged = closed_shard(folder, [(f"bad-{i}", "m", {"v": i}) for i in range(200)])
    with damaged.open("r+b") as file:  # what an OS crash mid-write could leave
        file.write(random.Random(0).randbytes(4096))
    cache = CallCache(folder)
    assert cache.get("good") == {"v": 1} and cache.get("bad-3") is None
    cache.close()
    stats = cache_cmd("stats", str(folder))
    assert stats.returncode == 0 and "1 entries" in stats.stdout, stats.stderr
    done = cache_cmd("merge", str(folder))
    assert done.returncode == 0, done.stderr
    assert f"skipped {damaged}" in done.stderr and "1 unreadable" in done.stdout
    assert damaged.exists() and not good.exists()
    assert all_rows_except(folder, damaged) == {"good": ("m", '{"v": 1}')}


def all_rows_except(folder: Path, skip: Path) -> dict[str, tuple[str, str]]:
    rows: dict[str, tuple[str, str]] = {}
    for path in shard_paths(folder):
        if path != skip:
            rows.update(shard_rows(path))
    return rows
