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
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any, NamedTuple

from ttcbench.models.spec import Sampling
from ttcbench.store import SampleStore
from ttcbench.tasks.target import target_of
from ttcbench.types import Call, Grade, Problem

if TYPE_CHECKING:  # the client imports litellm: a rerun served from the store never needs it
    from ttcbench.cache import CallCache
    from ttcbench.models.client import Completion, ModelClient

Grader = Callable[[str, Problem], Grade]
Messages = list[dict[str, str]]


def messages_hash(messages: Messages, encoded: str | None = None) -> str:
    """A short hash of the messages; `encoded` is their `encode_messages` text if known."""
    text = encode_messages(messages) if encoded is None else encoded
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def encode_messages(messages: Messages) -> str:
    """The messages' JSON text as keys and hashes see it (sorted keys), made once a request."""
    return json.dumps(messages, sort_keys=True)


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
    model: str,
    messages: Messages,
    sampling: Sampling,
    indices: Sequence[int],
    encoded: str | None = None,
) -> dict[int, str]:
    """`call_key` of each index with the shared part encoded once: the same JSON text (keys
    sorted: "i", "messages", "model", "sampling"), so stored keys and the shared cache stay
    valid. `encoded` is the messages' `encode_messages` text if known."""
    text = encode_messages(messages) if encoded is None else encoded
    rest = f'"messages": {text}, "model": {json.dumps(model)}, '
    rest += f'"sampling": {_sampling_text(sampling)}}}'
    return {
        i: hashlib.sha256(f'{{"i": {json.dumps(i)}, {rest}'.encode()).hexdigest() for i in indices
    }


_SAMPLING_TEXT: dict[int, tuple[Sampling, str]] = {}


def _sampling_text(sampling: Sampling) -> str:
    """The sampling's JSON text, once per Sampling object (by identity, not equality:
    temperature 1 and 1.0 are equal but encode differently). The entry holds the object, so
    its id is not reused while cached."""
    hit = _SAMPLING_TEXT.get(id(sampling))
    if hit is not None and hit[0] is sampling:
        return hit[1]
    if len(_SAMPLING_TEXT) >= 256:
        _SAMPLING_TEXT.clear()
    text = json.dumps(asdict(sampling), sort_keys=True)
    _SAMPLING_TEXT[id(sampling)] = (sampling, text)
    return text


class _Prompt(NamedTuple):
    """One prompt as every sample of a request records it: the messages and their hash."""

    messages: Messages
    hashed: str


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
        # with the same prompt) waits for the first instead of paying for it again. A key
        # stays here, answered, until its rows are stored and cached.
        self._in_flight: dict[str, asyncio.Future[Completion]] = {}
        # Rows handed out but not yet committed by the store's writer thread, by (task,
        # problem, key): a problem asking again for its own sample reuses it as if stored.
        self._unstored: dict[tuple[str, str, str], Call] = {}
        # What the writer thread hands back to the loop once rows are committed: one wake-up
        # of the loop for all that piled up, not one per request.
        self._committed: deque[Callable[[], None]] = deque()
        self._wake_pending = False

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
        if self._committed:  # handed back to a loop that ended before it could run them
            self._forget_committed()
        sampling = sampling or self.sampling
        indices = list(range(start, start + n))
        encoded = encode_messages(messages)
        keys = call_keys(self.client.spec.model, messages, sampling, indices, encoded)
        prompt = _Prompt(messages, messages_hash(messages, encoded))
        done = self.store.get_calls(problem.task, problem.id, keys.values())
        if self._unstored:
            done.update(self._queued(problem, keys.values()))
        calls = {
            i: done[keys[i]] for i in indices if keys[i] in done and self._usable(done[keys[i]])
        }
        if calls:
            self._add_targets(problem, list(calls.values()))
        if self.cache is not None:
            cached = {i: self._from_cache(keys[i]) for i in indices if i not in calls}
            hits = {i: hit for i, hit in cached.items() if hit is not None}
            calls.update(self._keep(problem, prompt, role, keys, hits, grade))
        missing = [i for i in indices if i not in calls]
        shared = {i: self._in_flight[keys[i]] for i in missing if keys[i] in self._in_flight}
        own = [i for i in missing if i not in shared]
        loop = asyncio.get_running_loop()
        self._in_flight.update({keys[i]: loop.create_future() for i in own})
        requests = [
            self._request(problem, prompt, sampling, role, chunk, keys, grade)
            for run in _contiguous(own)
            for chunk in self._chunks(run)
        ]
        # One request (the usual case) is awaited as it is: a task per request costs more.
        results = [await requests[0]] if len(requests) == 1 else await asyncio.gather(*requests)
        for chunk_calls in results:
            calls.update(chunk_calls)
        answers = {i: await future for i, future in shared.items()}
        calls.update(self._keep(problem, prompt, role, keys, answers, grade))
        return [calls[i] for i in indices]

    def _chunks(self, run: list[int]) -> list[list[int]]:
        size = self.client.spec.max_n if self.client.supports_n else 1
        return [run[j : j + size] for j in range(0, len(run), size)]

    async def _request(
        self,
        problem: Problem,
        prompt: _Prompt,
        sampling: Sampling,
        role: str,
        chunk: list[int],
        keys: dict[int, str],
        grade: bool,
    ) -> dict[int, Call]:
        """One request for the samples `chunk`. Its rows are queued to the store and handed
        out at once; once they are committed, the writer thread caches its answers (after
        the store: a crash never leaves a paid sample only cached), then its keys leave
        `_in_flight`."""
        request_sampling = _seeded(sampling, chunk[0])
        in_flight = {keys[i]: self._in_flight[keys[i]] for i in chunk}
        try:
            async with self._slots:
                started = time.time()
                completions = await self.client.complete(
                    prompt.messages, request_sampling, n=len(chunk)
                )
            answers = dict(zip(chunk, completions, strict=True))
            good = self._cacheable(keys, answers)
            out = self._keep(
                problem, prompt, role, keys, answers, grade, started=started,
                then=lambda err: self._cache(good, err), release=in_flight,
            )  # fmt: skip
        except BaseException:  # cancelled (Ctrl-C), or not queued: whoever waits must stop too
            for key, future in in_flight.items():
                self._in_flight.pop(key, None)
                future.cancel()
            raise
        for i, completion in answers.items():
            key = keys[i]
            # A failure leaves at once: the next asker must try again, not share it.
            future = self._in_flight[key] if completion.error is None else self._in_flight.pop(key)
            future.set_result(completion)
        return out

    def _cacheable(
        self, keys: dict[int, str], answers: dict[int, Completion]
    ) -> list[tuple[str, str, dict[str, Any]]]:
        if self.cache is None:
            return []
        model = self.client.spec.model
        return [(keys[i], model, asdict(c)) for i, c in answers.items() if c.error is None]

    def _cache(
        self, good: list[tuple[str, str, dict[str, Any]]], err: BaseException | None
    ) -> None:
        """In the store's writer thread, once a request's rows are committed: cache its
        answers (one transaction; a failure is raised by the store's next use)."""
        if err is None and self.cache is not None and good:
            self.cache.put_many(good)

    def _queued(self, problem: Problem, keys: Iterable[str]) -> dict[str, Call]:
        """This problem's successful rows among `keys` still queued for the store."""
        found = (self._unstored.get((problem.task, problem.id, key)) for key in keys)
        return {call.key: call for call in found if call is not None and call.error is None}

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
        prompt: _Prompt,
        role: str,
        keys: dict[int, str],
        answers: dict[int, Completion],
        grade: bool,
        started: float | None = None,
        then: Callable[[BaseException | None], None] | None = None,
        release: dict[str, asyncio.Future[Completion]] | None = None,
    ) -> dict[int, Call]:
        """Grade these samples, queue them to the store as one transaction, report them.

        The store's writer thread commits them while sampling goes on, then runs `then(err)`
        there and lets the requests `release` leave `_in_flight` on the loop. A process killed at
        any instant leaves all of one request's samples stored or none, and the writer
        commits in queue order, so what survives never depends on a sample that did not (a
        later round's prompt, an attempt): the resume asks for exactly the lost requests
        (same first index, same seed)."""
        if not answers:
            return {}
        # Once per request, not per sample: the messages, their hash and the gold.
        shared = (prompt.messages, prompt.hashed, target_of(problem))
        calls = {
            i: self._record(problem, shared, role, i, keys[i], completion, grade, started)
            for i, completion in answers.items()
        }
        rows = [(call.task, call.problem_id, call.key) for call in calls.values()]
        loop = asyncio.get_running_loop()

        def forget() -> None:  # on the loop: its dicts are not the writer thread's to change
            for row, call in zip(rows, calls.values(), strict=True):
                if self._unstored.get(row) is call:  # not a later write of the same row
                    del self._unstored[row]
            for key, future in (release or {}).items():
                if self._in_flight.get(key) is future:  # a failure's key may be asked anew
                    del self._in_flight[key]

        def report() -> None:  # on the loop, once committed: progress and W&B see only
            forget()  # samples a kill cannot take back (no row is fed twice after a resume)
            for call in calls.values():
                self._on_call(call)

        def stored(err: BaseException | None) -> None:  # in the writer thread
            try:
                if then is not None:
                    then(err)
            finally:
                self._hand_back(loop, forget if err is not None else report)

        self.store.queue_calls(list(calls.values()), stored)
        # Only now (the loop runs `forget` after this returns at the earliest).
        self._unstored.update(zip(rows, calls.values(), strict=True))
        return calls

    def _hand_back(self, loop: asyncio.AbstractEventLoop, forget: Callable[[], None]) -> None:
        """From the writer thread: run `forget` on the loop, waking it only if no wake-up is
        pending already (deque appends are thread-safe)."""
        self._committed.append(forget)
        if self._wake_pending:
            return
        self._wake_pending = True
        try:
            loop.call_soon_threadsafe(self._forget_committed)
        except RuntimeError:  # the loop has ended: the next `sample` runs them, on its loop
            self._wake_pending = False

    def drain(self) -> None:
        """Wait for every queued sample to be committed and reported (`on_call`): called when
        the event loop has ended, so that the tracker and progress have every stored sample
        before the job summarises them."""
        self.store.flush()
        self._forget_committed()

    def _forget_committed(self) -> None:
        self._wake_pending = False  # before draining: a later append wakes the loop again
        while self._committed:
            self._committed.popleft()()

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
