"""Weights & Biases logger: one W&B run per ttcbench job, grouped by sweep.

Design decisions (checked against wandb 0.31 source):

* Samples are logged as chunks. `wandb.Table(log_mode="INCREMENTAL")` exists in 0.31, but
  the Table keeps every appended row in `Table.data` (it only remembers the index of the
  last logged row), and the UI shows only the latest 100 increments, so a 100k-sample job
  would hold all rows in memory. Instead each chunk of at most `chunk_rows` rows becomes a
  fresh Table logged under the key `samples`, with `samples_chunk` (0, 1, ...) in the same
  history row; the Table is dropped once logged. W&B writes each chunk to
  `files/media/table/samples_<step>_<hash>.table.json` and records it in history.
* The curve is one history row per budget; `define_metric(..., step_metric="budget")` makes
  W&B plot accuracy, ci_low, ci_high, tokens, calls (and any other numeric key) vs budget.
* Data files (Parquet, SQLite) are not saved at all: the W&B folder lies inside the run
  folder, and a copy there is found twice by globs over results/ (see `DATA_SUFFIXES`).
* Other non-image files go through `run.save(policy="now")` with `symlink=False`: the file is
  hard-linked (or copied) into the run's `files/` folder, so an offline run folder stays
  complete when copied off the machine before `wandb sync`. An Artifact would be staged
  under `~/.local/share/wandb`, outside the ttcbench run folder.
* Any W&B error is reported once as a warning on the `ttcbench` logger and turns this
  logger into a no-op: the local sample store is the source of truth, never W&B.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import math
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Concatenate, ParamSpec

# wandb prints notices (hardlinked files, Weave adverts) on the terminal unless silenced by
# the environment; our summary table is the output a user reads. WANDB_SILENT=false undoes it.
os.environ.setdefault("WANDB_SILENT", "true")

import wandb  # noqa: E402

from ttcbench.loggers.wandb_runs import (  # noqa: E402
    folder_run_id,
    offline_folders,
    remove_superseded,
    wait_for_a_fresh_name,
)
from ttcbench.redact import Redactor, redact  # noqa: E402

_log = logging.getLogger("ttcbench")
_P = ParamSpec("_P")

SAMPLES_KEY = "samples"
"""History key of the sample Tables; `samples_chunk` next to it numbers the chunks."""
CURVE_STEP = "budget"
"""The curve's x-axis metric."""
CURVE_METRICS = ("accuracy", "ci_low", "ci_high", "tokens", "calls")
"""Curve metrics always plotted against `budget` (other numeric keys are added as seen)."""
REPORT_KEY = "report"
"""History key prefix of the report's figures and tables (see `WandbLogger.log_report`)."""
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg"})
"""File suffixes attached as `wandb.Image` under `plots/<stem>` rather than saved."""
DATA_SUFFIXES = frozenset({".parquet", ".sqlite"})
"""Data files never saved to W&B. Its offline folder lies inside the run folder, so a copy
there is a second `attempts.parquet` under results/ that `glob("results/**/attempts.parquet")`
counts twice. W&B has the same data without them: every call row is in the samples tables
(same column names as calls.parquet) and the curve and report tables hold the attempts'
numbers; the run folder's store and Parquet files stay the one copy of each row."""

_SCALARS = (bool, int, float, str, type(None))


_Method = Callable[Concatenate["WandbLogger", _P], None]


def _guarded(action: str) -> Callable[[_Method[_P]], _Method[_P]]:
    """Wrap a public method so a W&B error disables the logger instead of propagating.

    Once disabled (or finished) the method returns at once: a broken tracker must cost the
    job nothing, and one warning is enough to tell the user the W&B copy is incomplete.
    """

    def decorate(method: _Method[_P]) -> _Method[_P]:
        @functools.wraps(method)
        def wrapper(self: WandbLogger, *args: _P.args, **kwargs: _P.kwargs) -> None:
            if self._run is None:
                return
            try:
                method(self, *args, **kwargs)
            except Exception as exc:  # any tracker error must stay contained
                self._disable(action, exc)

        return wrapper

    return decorate


def _plain(value: Any) -> Any:
    """Turn `value` into JSON-friendly Python (dicts, lists, scalars) for config/summary.

    Hydra configs arrive as nested mappings; numpy scalars and paths are common in
    summaries. Anything else is stringified rather than allowed to fail the log call.
    """
    if isinstance(value, _SCALARS):
        return value
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy scalar
        with contextlib.suppress(Exception):
            return _plain(value.item())
    return str(value)


def _cell(value: Any) -> Any:
    """One table cell: scalars as-is, containers JSON-encoded (a Table cell is flat)."""
    value = _plain(value)
    if isinstance(value, _SCALARS):
        return value
    return json.dumps(value, sort_keys=True, default=str)


def _table_cell(value: Any) -> Any:
    """A report table cell: NaN becomes None and infinities their string, so the table's
    JSON stays strict."""
    value = _cell(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else str(value)
    return value


@contextlib.contextmanager
def redacted_argv() -> Iterator[None]:
    """`sys.argv` with the secrets it holds (`model.extra.api_key=...`) redacted, for as
    long as W&B reads it (its run metadata lists the command's arguments)."""
    original = list(sys.argv)
    sys.argv[:] = Redactor(original)(original)
    try:
        yield
    finally:
        sys.argv[:] = original


def flatten_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """Flatten one sample row into table cells.

    A mapping value becomes one column per key so the W&B table can group and filter by it:
    `classes` gives `class_family` exactly as in calls.parquet (`store.flatten_classes`), so
    code reading either has one set of names; another mapping gives `key.sub`. Deeper or
    list values are JSON strings.
    """
    flat: dict[str, Any] = {}
    for key, value in row.items():
        if isinstance(value, Mapping):
            prefix = "class_" if key == "classes" else f"{key}."
            for sub, sub_value in value.items():
                flat[f"{prefix}{sub}"] = _cell(sub_value)
        else:
            flat[str(key)] = _cell(value)
    return flat


class WandbLogger:
    """Mirror one ttcbench job to one W&B run (see the module docstring for the layout).

    `mode` is passed to `wandb.init`, where it takes precedence over the `WANDB_MODE`
    environment variable; pass `mode=None` to let `WANDB_MODE` (or wandb's default,
    "online") decide. W&B files go under `run_dir / "wandb"`.
    """

    def __init__(
        self,
        *,
        project: str,
        group: str | None,
        name: str,
        config: Mapping[str, Any],
        run_dir: Path,
        mode: str | None = "offline",
        entity: str | None = None,
        tags: Sequence[str] = (),
        chunk_rows: int = 1000,
    ) -> None:
        """Start the W&B run; on failure warn once and become a no-op (never raise)."""
        # Bad chunk sizes are caller bugs, not tracker failures, so they do raise. W&B
        # truncates a run table's file at Table.MAX_ROWS rows, hence the upper bound.
        if not 1 <= chunk_rows <= wandb.Table.MAX_ROWS:
            raise ValueError(f"chunk_rows must be in 1..{wandb.Table.MAX_ROWS}, got {chunk_rows}")
        self.chunk_rows = chunk_rows
        self._buffer: list[dict[str, Any]] = []
        self._columns: dict[str, None] = {}  # ordered union of column names seen so far
        self._chunk_index = 0
        self._curve_metrics: set[str] = set()
        self._run: Any = None  # None once disabled or finished: every method then no-ops
        self.failed = False
        """Whether a W&B error disabled this logger (its W&B copy is incomplete)."""
        self._superseded: list[Path] = []  # this folder's older offline runs (wandb_runs.py)
        try:
            wandb_dir = Path(run_dir).absolute() / "wandb"
            self._superseded = offline_folders(wandb_dir, folder_run_id(run_dir))
            self._run = self._init_run(project, group, name, config, run_dir, mode, entity, tags)
        except Exception as exc:  # the job must run even if W&B cannot start
            self._disable("wandb.init", exc)

    @staticmethod
    def _init_run(
        project: str,
        group: str | None,
        name: str,
        config: Mapping[str, Any],
        run_dir: Path,
        mode: str | None,
        entity: str | None,
        tags: Sequence[str],
    ) -> Any:
        """Call `wandb.init` with quiet settings and return the run object."""
        run_dir = Path(run_dir).absolute()
        run_dir.mkdir(parents=True, exist_ok=True)
        settings = wandb.Settings(
            silent=True,  # ttcbench owns the console
            console="off",  # no stdout/stderr capture: it fights pytest and Hydra's logging
            symlink=False,  # saved files are hard-linked/copied, see the module docstring
        )
        init_kwargs: dict[str, Any] = {"mode": mode} if mode is not None else {}
        run_id = folder_run_id(run_dir)
        wait_for_a_fresh_name(run_dir / "wandb", run_id)
        with redacted_argv():  # W&B's metadata records the command line
            return wandb.init(
                project=project,
                entity=entity,
                group=group,
                name=name,
                tags=list(tags) or None,
                config=_plain(redact(config)),
                dir=str(run_dir),
                # One W&B run per run folder: a re-run (resume) continues the same run id.
                id=run_id,
                resume="allow",
                # Hydra multirun may run several jobs in one process: each job gets its own
                # run object and we never touch the global `wandb.run`.
                reinit="create_new",
                settings=settings,
                **init_kwargs,
            )

    @property
    def enabled(self) -> bool:
        """Whether calls still reach W&B (False after a failure, before init, or finish)."""
        return self._run is not None

    @property
    def buffered_rows(self) -> int:
        """Sample rows held in memory, waiting for the next chunk (never above chunk_rows)."""
        return len(self._buffer)

    @_guarded("logging samples")
    def log_samples(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Buffer sample rows, writing a chunk each time `chunk_rows` are buffered."""
        for row in rows:
            flat = flatten_row(row)
            self._columns.update(dict.fromkeys(flat))
            self._buffer.append(flat)
            if len(self._buffer) >= self.chunk_rows:
                self._flush_samples()

    def _flush_samples(self) -> None:
        """Log the buffered rows as one Table chunk and empty the buffer."""
        if not self._buffer:
            return
        names = list(self._columns)
        data = [[row.get(name) for name in names] for row in self._buffer]
        columns: list[str | int] = [*names]  # wandb annotates an invariant list[str | int]
        # Mixed types are allowed because columns legitimately hold e.g. None or an int in
        # one row and a string in another; a type clash must not disable the logger.
        table = wandb.Table(columns=columns, data=data, allow_mixed_types=True)
        self._run.log({SAMPLES_KEY: table, f"{SAMPLES_KEY}_chunk": self._chunk_index})
        self._chunk_index += 1
        self._buffer.clear()

    @_guarded("logging the curve")
    def log_curve(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Log one history row per budget; numeric keys are plotted against `budget`."""
        for row in rows:
            values = _plain(row)
            if CURVE_STEP not in values:
                raise KeyError(f"curve row has no {CURVE_STEP!r} key: {sorted(values)}")
            self._define_curve_metrics(values)
            self._run.log(values)

    def _define_curve_metrics(self, values: Mapping[str, Any]) -> None:
        """Declare `budget` as the x-axis of every numeric curve key not yet declared."""
        if not self._curve_metrics:
            self._run.define_metric(CURVE_STEP)
            for metric in CURVE_METRICS:
                self._run.define_metric(metric, step_metric=CURVE_STEP)
            self._curve_metrics.update((CURVE_STEP, *CURVE_METRICS))
        for key, value in values.items():
            numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
            if numeric and key not in self._curve_metrics:
                self._run.define_metric(key, step_metric=CURVE_STEP)
                self._curve_metrics.add(key)

    @_guarded("logging the summary")
    def log_summary(self, summary: Mapping[str, Any]) -> None:
        """Merge `summary` into the run summary (shown in the W&B runs table)."""
        self._run.summary.update(_plain(summary))

    @_guarded("attaching files")
    def log_files(self, paths: Sequence[Path]) -> None:
        """Log images under `plots/<stem>` and save other files into the run, but data files
        (`DATA_SUFFIXES`: the samples tables hold their rows)."""
        images: dict[str, Any] = {}
        for path in map(Path, paths):
            if not path.is_file():
                # A missing file is the caller's problem, not W&B's: skip it, stay enabled.
                _log.warning("W&B: not attaching %s: no such file", path)
            elif path.suffix.lower() in DATA_SUFFIXES:
                _log.debug("W&B: not saving %s: data files stay only in the run folder", path)
            elif path.suffix.lower() in IMAGE_SUFFIXES:
                images[f"plots/{path.stem}"] = wandb.Image(str(path))
            else:
                self._run.save(str(path), base_path=str(path.parent), policy="now", glob=False)
        if images:
            self._run.log(images)

    @_guarded("logging the report")
    def log_report(
        self,
        figures: Mapping[str, Path],
        tables: Mapping[str, Any],
        metrics: Mapping[str, Any],
    ) -> None:
        """Log a report's figures as images (`report/figures/<name>`), its tables (pandas
        DataFrames) as W&B Tables (`report/tables/<name>`) and its metrics into the summary.

        One history row holds them all, so the W&B run shows the same plots and numbers as
        the run folder's report.html.
        """
        row: dict[str, Any] = {}
        for name, path in figures.items():
            row[f"{REPORT_KEY}/figures/{name}"] = wandb.Image(str(path))
        for name, frame in tables.items():
            cells = frame.astype(object).where(frame.notna(), None)  # pandas NA -> None
            data = [[_table_cell(v) for v in values] for values in cells.itertuples(index=False)]
            columns: list[str | int] = [str(c) for c in frame.columns]
            row[f"{REPORT_KEY}/tables/{name}"] = wandb.Table(
                columns=columns, data=data, allow_mixed_types=True
            )
        if row:
            self._run.log(row)
        self._run.summary.update(_plain(metrics))

    @_guarded("finishing the run")
    def finish(self) -> None:
        """Write the last partial chunk and close the run; later calls are no-ops. The
        folder's older offline runs, which this complete one supersedes, are removed."""
        self._flush_samples()
        run, self._run = self._run, None
        run.finish()
        remove_superseded(self._superseded)

    @_guarded("closing the failed run")
    def fail(self) -> None:
        """Close the run of a job that failed, as failed; older offline runs are kept (one
        may hold a finished run's summary, which this one lacks)."""
        self._flush_samples()
        run, self._run = self._run, None
        run.finish(exit_code=1)

    def _disable(self, action: str, exc: BaseException) -> None:
        """Report a W&B failure in one warning line and turn every method into a no-op.

        The half-written W&B run is closed with exit code 1 so it shows as failed rather
        than hanging open; errors while closing are ignored (the warning is already out).
        """
        run, self._run = self._run, None
        self.failed = True
        self._buffer.clear()
        message = (str(exc).strip().splitlines() or [""])[0]
        _log.warning(
            "W&B logging disabled: %s failed (%s: %s); the local results are unaffected",
            action,
            type(exc).__name__,
            message,
        )
        _log.debug("W&B failure while %s", action, exc_info=exc)
        if run is not None:
            with contextlib.suppress(Exception):
                run.finish(exit_code=1)
