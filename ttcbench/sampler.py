"""The one door through which strategies reach a model.

`Sampler.sample` turns "n samples of these messages for this problem" into recorded calls:
samples already in the run's store are reused (resume), then the shared cache is asked, and
only the rest is requested from the model. Every call, cached or not, becomes one row of the
run's store with its role, so every strategy's compute is counted the same way.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING

from ttcbench.models.spec import Sampling
from ttcbench.store import CallCache, SampleStore
from ttcbench.tasks.target import target_of
from ttcbench.types import Call, Grade, Problem

if TYPE_CHECKING:  # the client imports litellm: a rerun served from the store never needs it
    from ttcbench.models.client import Completion, ModelClient

Grader = Callable[[str, Problem], Grade]
Messages = list[dict[str, str]]


def messages_hash(messages: Messages) -> str:
    return hashlib.sha256(json.dumps(messages, sort_keys=True).encode()).hexdigest()[:16]


def call_key(model: str, messages: Messages, sampling: Sampling, sample_index: int) -> str:
    """The identity of a sample: (model, messages, sampling params incl. seed, sample index)."""
    payload = {
        "model": model,
        "messages": messages,
        "sampling": asdict(sampling),
        "i": sample_index,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def call_keys(
    model: str, messages: Messages, sampling: Sampling, indices: Sequence[int]
) -> dict[int, str]:
    """`call_key` of each index with the shared part (messages, sampling) encoded once: the
    same JSON text, since "i" sorts first (stored keys and the shared cache stay valid)."""
    rest = json.dumps(
        {"messages": messages, "model": model, "sampling": asdict(sampling)}, sort_keys=True
    )
    return {
        i: hashlib.sha256(f'{{"i": {json.dumps(i)}, {rest[1:]}'.encode()).hexdigest()
        for i in indices
    }


@dataclass(frozen=True)
class RunInfo:
    """Who is sampling: copied onto every call row."""

    run_id: str
    strategy: str


class Sampler:
    """Cached, recorded, graded sampling for one run; strategies never touch files."""

    def __init__(
        self,
        client: ModelClient,
        sampling: Sampling,
        store: SampleStore,
        grader: Grader,
        info: RunInfo,
        *,
        cache: CallCache | None = None,
        concurrency: int = 4,
        on_call: Callable[[Call], None] | None = None,
    ) -> None:
        self.client = client
        self.sampling = sampling
        self.store = store
        self.grader = grader
        self.info = info
        self.cache = cache
        self._slots = asyncio.Semaphore(concurrency)
        self._on_call = on_call or (lambda call: None)
        # Requests in flight by call key: a second asker of the same sample (another problem
        # with the same prompt) waits for the first instead of paying for it again.
        self._in_flight: dict[str, asyncio.Future[Completion]] = {}

    def with_client(self, client: ModelClient, concurrency: int = 4) -> Sampler:
        """A sampler for another model (a separate judge) recording into the same run: same
        store, cache, run info and progress, so its calls are counted like the run's own."""
        return Sampler(
            client, self.sampling, self.store, self.grader, self.info,
            cache=self.cache, concurrency=concurrency, on_call=self._on_call,
        )  # fmt: skip

    async def sample(
        self,
        problem: Problem,
        messages: Messages,
        *,
        n: int = 1,
        start: int = 0,
        role: str = "generate",
        sampling: Sampling | None = None,
        grade: bool = True,
    ) -> list[Call]:
        """Samples `start .. start+n-1` of these messages, in index order.

        Sample i always has the same key (and, for seeded providers, the same seed), so a
        budget of 4 and a budget of 16 share their first 4 samples and nothing is paid twice.
        """
        sampling = sampling or self.sampling
        indices = list(range(start, start + n))
        keys = call_keys(self.client.spec.model, messages, sampling, indices)
        done = self.store.get_calls(problem.task, problem.id, keys.values())
        calls = {
            i: done[keys[i]] for i in indices if keys[i] in done and self._usable(done[keys[i]])
        }
        if calls:
            self._add_targets(problem, list(calls.values()))
        if self.cache is not None:
            cached = {i: self._from_cache(keys[i]) for i in indices if i not in calls}
            hits = {i: hit for i, hit in cached.items() if hit is not None}
            calls.update(self._keep(problem, messages, role, keys, hits, grade))
        missing = [i for i in indices if i not in calls]
        shared = {i: self._in_flight[keys[i]] for i in missing if keys[i] in self._in_flight}
        own = [i for i in missing if i not in shared]
        loop = asyncio.get_running_loop()
        self._in_flight.update({keys[i]: loop.create_future() for i in own})
        requests = [_chunk for run in _contiguous(own) for _chunk in self._chunks(run)]
        results = await asyncio.gather(
            *(
                self._request(problem, messages, sampling, role, chunk, keys, grade)
                for chunk in requests
            )
        )
        for chunk_calls in results:
            calls.update(chunk_calls)
        answers = {i: await future for i, future in shared.items()}
        calls.update(self._keep(problem, messages, role, keys, answers, grade))
        return [calls[i] for i in indices]

    def _chunks(self, run: list[int]) -> list[list[int]]:
        size = self.client.spec.max_n if self.client.supports_n else 1
        return [run[j : j + size] for j in range(0, len(run), size)]

    async def _request(
        self,
        problem: Problem,
        messages: Messages,
        sampling: Sampling,
        role: str,
        chunk: list[int],
        keys: dict[int, str],
        grade: bool,
    ) -> dict[int, Call]:
        request_sampling = _seeded(sampling, chunk[0])
        try:
            async with self._slots:
                started = time.time()
                completions = await self.client.complete(messages, request_sampling, n=len(chunk))
        except BaseException:  # cancelled (Ctrl-C): whoever waits on these must stop too
            for i in chunk:
                self._in_flight.pop(keys[i]).cancel()
            raise
        answers = dict(zip(chunk, completions, strict=True))
        for i, completion in answers.items():
            self._in_flight.pop(keys[i]).set_result(completion)
        out = self._keep(problem, messages, role, keys, answers, grade, started=started)
        if self.cache is not None:  # after the store; each is one transaction per request
            model = self.client.spec.model
            good = [(keys[i], model, asdict(c)) for i, c in answers.items() if c.error is None]
            self.cache.put_many(good)
        return out

    def _add_targets(self, problem: Problem, stored: list[Call]) -> None:
        """Rows an older ttcbench stored without `target` get it on resume (stored again), so
        a resumed run's export has the gold on every row it reuses."""
        target = target_of(problem)
        stale = [call for call in stored if call.target is None and target is not None]
        for call in stale:
            call.target = target
        if stale:
            self.store.put_calls(stale)

    def _from_cache(self, key: str) -> Completion | None:
        payload = self.cache.get(key) if self.cache is not None else None
        if payload is None:
            return None
        from ttcbench.models.client import Completion

        hit = Completion(**payload)
        return hit if hit is not None and self._usable(hit) else None

    def _usable(self, done: Call | Completion) -> bool:
        """A stored sample serves this run unless the run needs logprobs it lacks (it was made
        by a run with model.logprobs=false; logprobs are not part of the key, the text is)."""
        text = done.output if isinstance(done, Call) else done.text
        return not (self.client.spec.logprobs and text and done.mean_logprob is None)

    def _keep(
        self,
        problem: Problem,
        messages: Messages,
        role: str,
        keys: dict[int, str],
        answers: dict[int, Completion],
        grade: bool,
        started: float | None = None,
    ) -> dict[int, Call]:
        """Grade and store these samples in one transaction, then report them: a process
        killed at any instant leaves all of one request's samples stored or none, so the
        resume asks for exactly the same request (same first index, same seed)."""
        if not answers:
            return {}
        # Once per request, not per sample: the messages, their hash and the gold.
        shared = (messages, messages_hash(messages), target_of(problem))
        calls = {
            i: self._record(problem, shared, role, i, keys[i], completion, grade, started)
            for i, completion in answers.items()
        }
        if calls:
            self.store.put_calls(list(calls.values()))
        for call in calls.values():
            self._on_call(call)
        return calls

    def _record(
        self,
        problem: Problem,
        shared: tuple[Messages, str, str | None],
        role: str,
        index: int,
        key: str,
        completion: Completion,
        grade: bool,
        started: float | None = None,
    ) -> Call:
        """One graded row (not yet stored): `shared` is the messages, their hash and the
        problem's gold; `started` is None for a sample paid for elsewhere (cached)."""
        messages, hashed, target = shared
        cached = started is None
        now = time.time()
        call = Call(
            key=key,
            run_id=self.info.run_id,
            task=problem.task,
            problem_id=problem.id,
            classes=problem.classes,
            strategy=self.info.strategy,
            role=role,
            sample_index=index,
            seed=completion.seed,
            model=self.client.spec.model,
            messages_hash=hashed,
            messages=messages,
            output=completion.text,
            target=target,
            prompt_tokens=completion.prompt_tokens,
            completion_tokens=completion.completion_tokens,
            latency_s=completion.latency_s,
            cost_usd=completion.cost_usd,
            mean_logprob=completion.mean_logprob,
            finish_reason=completion.finish_reason,
            error=completion.error,
            cached=cached,
            started_at=now - completion.latency_s if started is None else started,
            finished_at=now,
            attempts=0 if cached else completion.attempts,  # no request made for this row
            retry_wait_s=0.0 if cached else completion.retry_wait_s,
        )
        if grade and call.error is None and call.output is not None:
            verdict = self.grader(call.output, problem)
            call.extracted, call.score = verdict.extracted, verdict.score
            call.trusted_compare = verdict.details.get("trusted_compare")
        return call


def _seeded(sampling: Sampling, index: int) -> Sampling:
    """Per-sample seeds: base seed + sample index, so sample i is reproducible on its own."""
    return sampling if sampling.seed is None else replace(sampling, seed=sampling.seed + index)


def _contiguous(indices: Sequence[int]) -> list[list[int]]:
    runs: list[list[int]] = []
    for i in indices:
        if runs and runs[-1][-1] == i - 1:
            runs[-1].append(i)
        else:
            runs.append([i])
    return runs
