"""How many threads the embedded engine decodes with.

By default every CPU the process may use (`os.sched_getaffinity`). llama.cpp's threads meet
at spinning barriers hundreds of times per decode, so when another process takes one of
those CPUs a step can get 5-10x slower than on a single thread (measured on 2 cores). The
tuner therefore times decode steps and, now and then, tries one step with a single thread
(or half the threads): it keeps whichever is faster per token, probing less often while its
choice keeps winning. A count set in the config (`threads: N`) is used as is.
"""

from __future__ import annotations

import os

FIRST_PROBE = 4
"""Steps before the first probe: enough to know the default's speed."""
MAX_INTERVAL = 256
"""Steps between probes once the choice has won many times (probing a collapsed setting
costs one slow step, so this bounds the overhead to a few percent)."""
WIN = 0.9
"""A probe takes over when its time per token is below this fraction of the current one's."""


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask; the cgroup/taskset, not the host)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


class ThreadTuner:
    """Picks the thread count for each decode step from measured seconds per token."""

    def __init__(self, threads: int | None = None) -> None:
        most = available_cpus()
        self.current = int(threads) if threads else most
        self.options = [self.current] if threads else sorted({most, max(1, most // 2), 1})
        self._cost: dict[int, float] = {}
        self._interval = FIRST_PROBE
        self._countdown = FIRST_PROBE
        self._next_probe = 0

    def pick(self) -> int:
        """Threads for the next decode step: the current choice, or a probe."""
        if len(self.options) == 1:
            return self.current
        self._countdown -= 1
        if self._countdown > 0:
            return self.current
        others = [t for t in self.options if t != self.current]
        self._next_probe = (self._next_probe + 1) % len(others)
        return others[self._next_probe]

    def record(self, threads: int, seconds: float, tokens: int) -> None:
        """Time of a decode step of `tokens` tokens made with `threads` threads."""
        if len(self.options) == 1 or tokens <= 0:
            return
        per_token = seconds / tokens
        if threads == self.current:
            old = self._cost.get(threads)
            self._cost[threads] = per_token if old is None else 0.8 * old + 0.2 * per_token
            return
        self._countdown = self._interval
        current = self._cost.get(self.current)
        if current is not None and per_token < WIN * current:
            self.current, self._interval = threads, FIRST_PROBE
            self._cost[threads] = per_token
        else:
            self._interval = min(2 * self._interval, MAX_INTERVAL)
