"""The shared vocabulary: problems, model calls, attempts and errors.

Two record kinds flow from the runner to analysis (see STYLE.md): a *call* is one model
request and an *attempt* is one problem x strategy x budget. Estimators read attempts and
pools of calls; only `ttcbench.store` knows how they are stored.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any


class TtcbenchError(Exception):
    """A user-facing error: its message names the problem and the fix, no traceback needed.
    `exit_code` is the command's exit status for it (the README lists them)."""

    exit_code = 2


class ConfigError(TtcbenchError):
    """The composed configuration is invalid (bad budget list, unknown name, missing key)."""


class TaskError(TtcbenchError):
    """A task's data could not be loaded or does not match the task spec."""


class ProviderError(TtcbenchError):
    """The provider refused in a way no retry fixes (bad key, no permission, unknown model, bad
    request): the job stops after the first such answer."""

    exit_code = 3


class IncompleteRun(TtcbenchError):
    """Transient provider errors outlasted their retries: the run is stored and resumable."""

    exit_code = 4


class RunFolderBusy(TtcbenchError):
    """Another live process is writing this run folder."""

    exit_code = 5


@dataclass(frozen=True)
class Problem:
    """One question of a task, with everything a strategy and a grader need."""

    task: str
    """Task name, as in `tasks/<name>.yaml`."""
    id: str
    """Stable identifier within the task (a data-set id or a generator seed)."""
    prompt: str
    """The user message sent to the model."""
    answer: str | None
    """Reference answer (gold), None where grading needs no single answer (code)."""
    classes: dict[str, str] = field(default_factory=dict)
    """Class labels analysis can group by (family, difficulty, digits, ...)."""
    meta: dict[str, Any] = field(default_factory=dict)
    """Extra fields a grader needs (hidden tests, entry point, aliases)."""


@dataclass(frozen=True)
class Grade:
    """What a grader says about one model output."""

    extracted: str | None
    """Canonical final answer (equal answers compare equal as strings: used for voting)."""
    score: float
    """1.0 correct, 0.0 wrong; fractional only where the task defines partial credit."""
    details: dict[str, Any] = field(default_factory=dict)
    """Grader-specific extras (token F1, test errors)."""


@dataclass
class Call:
    """One model request and its outcome: one row of the sample store."""

    key: str
    """Cache key: hash of (model, messages, sampling params, sample index, seed)."""
    run_id: str
    task: str
    problem_id: str
    classes: dict[str, str]
    strategy: str
    role: str
    """What the call was for: generate, critique, judge, summarise, distill..."""
    sample_index: int
    seed: int | None
    model: str
    messages_hash: str
    messages: list[dict[str, str]]
    output: str | None = None
    extracted: str | None = None
    target: str | None = None
    """The gold the output was graded against, for a reviewer to check the grade: the answer
    (QA aliases joined as `a | b`), or for code a pointer to the hidden tests, never the tests
    (`ttcbench.tasks.target.target_of`). Rows an older ttcbench stored without it gain it
    when the run is resumed."""
    score: float | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    cost_usd: float = 0.0
    mean_logprob: float | None = None
    """Mean token log-probability of the output, where the provider returns logprobs."""
    finish_reason: str | None = None
    """The provider's reason the output ended: `stop`, or `length` when max_tokens cut it
    off (a truncated answer usually scores 0: count them before blaming the model)."""
    error: str | None = None
    """Set for a permanent failure; such a call has no output and is never scored."""
    trusted_compare: bool | None = None
    """Code grades only: True when the hidden tests ran in a process of their own and compared
    plain values the program returned (a pass cannot be forged); False when they had to run
    inside the program's interpreter (see ttcbench/sandbox/run.py); None otherwise."""
    cached: bool = False
    """True when the output came from the shared cache (no model call paid in this run)."""
    started_at: float = 0.0
    finished_at: float = 0.0
    attempts: int = 1
    """Requests this call sent (1: no retry; 0: cached, none); `latency_s` is the answering
    one's own time, so the run's requests are the sum of this column."""
    retry_wait_s: float = 0.0
    """Seconds lost to failed tries and backoff before the answer (not model time)."""

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def to_row(self) -> dict[str, Any]:
        # Shallow: `asdict` deep-copied the messages of every call (~5% of a fast job's CPU);
        # rows are encoded or logged at once, and nothing mutates a call's messages.
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass
class Attempt:
    """One problem x strategy x budget: the answer, its score and the compute it used.

    For pool-based strategies a smaller budget is an *estimate* over k-subsets of one pool,
    so `score` may be fractional and the compute fields are expectations (k/n of the pool).
    """

    run_id: str
    task: str
    problem_id: str
    classes: dict[str, str]
    strategy: str
    budget: int
    answer: str | None
    score: float | None
    """Expected score in [0, 1]; None when the attempt failed on provider errors."""
    model: str | None = None
    """The run's model label (`model.name`, as in the run folder and reports); calls carry the
    provider's model string instead. None in rows stored before ttcbench recorded it."""
    calls: float = 0.0
    prompt_tokens: float = 0.0
    completion_tokens: float = 0.0
    sequential_tokens: float = 0.0
    """Tokens on the critical path (a parallel pool counts its longest sample)."""
    latency_s: float = 0.0
    cost_usd: float = 0.0
    flops: float | None = None
    """Estimated FLOPs, 2 x parameters x tokens (None when the model's size is unknown)."""
    estimator: str = "direct"
    """How `score` was obtained: direct, exact (k-subset expectation) or montecarlo."""
    verifier: str | None = None
    """The verifier that picked the answer, if any (`oracle` is not deployable)."""
    error: str | None = None

    @property
    def total_tokens(self) -> float:
        return self.prompt_tokens + self.completion_tokens

    def to_row(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}  # shallow, as Call's
