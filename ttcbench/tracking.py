"""What a job shows while it runs: the tracker run it feeds and the progress bar.

The tracker starts with the job (not after sampling) so a long sweep is watchable live, and
is fed each call as it is stored; a resumed job first replays what its store holds and says,
in one line, how much of the plan it reuses. The bar is a widget in Jupyter (when ipywidgets
is installed) and text on stderr elsewhere.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
from typing import TYPE_CHECKING

from tqdm import tqdm

from ttcbench.loggers import RunLogger, make_logger
from ttcbench.redact import redact
from ttcbench.runner import Progress
from ttcbench.store import SampleStore

if TYPE_CHECKING:  # job.py imports this module
    from ttcbench.job import JobConfig

log = logging.getLogger("ttcbench")


def start_logger(job: JobConfig, *, final: bool = False) -> RunLogger:
    """Start the job's tracker run now, not after sampling, so a long sweep is watchable
    live (W&B starts on a thread of its own, `make_logger`: the first request does not wait
    for it); it first gets the samples a previous attempt stored (a resume). Failed calls are
    retried and the retry is fed live, so they are replayed only when `final`."""
    logger = make_logger(
        job.logger.kind,
        run_dir=job.run_dir,
        config=redact(job.config),
        name=str(job.config["name"]),
        **job.logger.options,
    )
    stored = job.run_dir / "store.sqlite"
    if stored.exists():
        store = SampleStore(stored)
        for rows in store.iter_call_rows():
            logger.log_samples([r for r in rows if final or r.get("error") is None])
        store.close()
    return logger


def start_progress(job: JobConfig, planned: int, store: SampleStore) -> Progress:
    """The progress bar over the planned calls, starting from those already stored (which
    the sampler reuses without reporting them), and the line that says a run resumes."""
    stored = min(store.count_successful_calls(), planned)
    if stored:
        log.info(resume_line(stored, planned))
    tracker = job.tracker
    feed = None if tracker is None else (lambda call: tracker.log_samples([call.to_row()]))
    return Progress(planned, job.progress, stored=stored, on_call=feed, bar=bar_class())


def bar_class() -> type[tqdm]:
    """tqdm's widget bar inside a Jupyter kernel that has ipywidgets, else its text bar (which
    Jupyter shows too, redrawn in place). Chosen here rather than by `tqdm.auto`, which warns
    in every notebook that lacks ipywidgets."""
    if "ipykernel.zmqshell" in sys.modules and importlib.util.find_spec("ipywidgets"):
        from tqdm.notebook import tqdm as notebook_tqdm

        return notebook_tqdm
    return tqdm


def resume_line(stored: int, planned: int) -> str:
    """E.g. "resuming: 172 of 640 samples stored, 468 to request"."""
    return f"resuming: {stored} of {planned} samples stored, {planned - stored} to request"
