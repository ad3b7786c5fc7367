"""Continuous batching for the embedded model over llama.cpp's batch API.

One engine thread owns the llama.cpp context. A request's prompt is decoded once, in the
first of its sequences, and its KV cache copied to the other n - 1; then every running
sequence of every request advances by one token per `llama_decode`, sequences joining as
requests arrive and leaving as they finish. The KV cache is not unified: each sequence has
a slot of its own, so its logits never depend on where other sequences sit in the cache,
and with per-sequence seeded sampling (`local_sampling`) sample i of a request is the same
whatever else shares the batch.
"""

from __future__ import annotations

import ctypes
import heapq
import threading
import time
from collections import deque
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ttcbench.models.local_sampling import SamplingParams
from ttcbench.models.local_text import Sequence, Vocab
from ttcbench.models.local_threads import ThreadTuner


@dataclass
class Request:
    """n samples of one prompt, answered through `future` with an OpenAI-style dict."""

    prompt: list[int]
    seqs: list[Sequence]
    future: Future = field(default_factory=Future)
    slots: list[int] = field(default_factory=list)
    compute_s: float = 0.0
    """This request's share of the engine's time: each step's time split by tokens."""


class BatchEngine:
    """Serves chat requests for one GGUF model; `submit` is thread-safe."""

    def __init__(self, path: str, n_ctx: int = 2048, n_seq: int = 16,
                 threads: int | None = None) -> None:  # fmt: skip
        import llama_cpp  # heavy import: only when the local model is used

        self._ll = llama_cpp
        self.threads = ThreadTuner(threads)
        # A small context of its own serves tokenizing and the chat template only.
        self.llm = llama_cpp.Llama(model_path=path, n_ctx=64, n_batch=64, verbose=False)
        # llama-cpp-python's own settings (flash attention off, f16 cache...), so the logits
        # are the ones a single-stream `Llama` computes; only the batching changes.
        params = type(self.llm.context_params).from_buffer_copy(self.llm.context_params)
        # One slot more than requests may use: the throwaway neighbour of the last slot.
        params.n_ctx, params.n_seq_max, params.kv_unified = n_ctx * (n_seq + 1), n_seq + 1, False
        params.n_batch, params.n_ubatch = n_ctx, min(n_ctx, 512)
        params.n_threads = params.n_threads_batch = self.threads.current
        self._ctx = llama_cpp.llama_init_from_model(self.llm._model.model, params)
        if not self._ctx:
            raise RuntimeError(f"llama.cpp could not create a context for {path}")
        self._mem = llama_cpp.llama_get_memory(self._ctx)
        self.n_ctx = int(llama_cpp.llama_n_ctx_seq(self._ctx))
        self._batch = llama_cpp.llama_batch_init(max(n_ctx, n_seq), 0, 1)
        self._n_vocab = self.llm.n_vocab()
        vocab = self.llm._model.vocab
        self.vocab = Vocab(
            is_eog=lambda t: bool(llama_cpp.llama_vocab_is_eog(vocab, t)),
            bos=self.llm.token_bos(),
            pieces=_Pieces(self.llm),
        )
        self.n_seq = n_seq
        self._free = list(range(n_seq))  # a heap: the lowest slots first, to keep them dense
        self._pending: deque[Request] = deque()
        self._running: list[Request] = []
        self._cv = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name="ttcbench-llama", daemon=True)
        self._thread.start()

    def submit(self, prompt: list[int], seqs: list[Sequence]) -> Future:
        if len(seqs) > self.n_seq:
            raise ValueError(f"n={len(seqs)} exceeds the engine's {self.n_seq} sequences")
        request = Request(prompt, seqs)
        with self._cv:
            if self._closed:
                raise RuntimeError("the embedded model is closed")
            self._pending.append(request)
            self._cv.notify()
        return request.future

    def close(self) -> None:
        with self._cv:
            if self._closed:
                return
            self._closed = True
            self._cv.notify()
        self._thread.join()
        for request in [*self._pending, *self._running]:
            request.future.cancel()
        self._ll.llama_batch_free(self._batch)
        self._ll.llama_free(self._ctx)
        self.llm.close()

    # -- the engine thread ------------------------------------------------------------

    def _loop(self) -> None:
        while True:
            with self._cv:
                while not self._closed and not self._pending and not self._running:
                    self._cv.wait()
                if self._closed:
                    return
                admitted = self._admit()
            try:
                for request in admitted:
                    self._prefill(request)
                self._drop_cancelled()
                if self._running:
                    self._decode_step()
            except Exception as err:  # a llama.cpp failure fails the requests, not the thread
                for request in self._running:
                    self._release(request)
                    _resolve(request.future, error=err)
                self._running.clear()

    def _admit(self) -> list[Request]:
        """Pending requests, first come first served, while their sequences have slots."""
        admitted = []
        while self._pending:
            if self._pending[0].future.cancelled():
                self._pending.popleft()
                continue
            if len(self._pending[0].seqs) > len(self._free):
                break
            request = self._pending.popleft()
            request.slots = [heapq.heappop(self._free) for _ in request.seqs]
            self._running.append(request)
            admitted.append(request)
        return admitted

    def _prefill(self, request: Request) -> None:
        """Decode the prompt once, copy its KV cache to every sequence, sample each one."""
        first = request.slots[0]
        for pos, token in enumerate(request.prompt):
            self._put(pos, token, pos, first)
        self._batch.logits[len(request.prompt) - 1] = 1
        started = time.perf_counter()
        self._decode(len(request.prompt))
        for slot in request.slots[1:]:
            self._ll.llama_memory_seq_cp(self._mem, first, slot, -1, -1)
        row = np.ctypeslib.as_array(self._ll.llama_get_logits_ith(self._ctx, -1),
                                    shape=(self._n_vocab,))  # fmt: skip
        for k, seq in enumerate(request.seqs):
            seq.next_token = seq.step(row, self.vocab)
            seq.pos = len(request.prompt)
            if seq.next_token is None:
                self._free_slot(request, k)
        request.compute_s += time.perf_counter() - started
        self._retire(request)

    def _decode_step(self) -> None:
        """Advance every unfinished sequence of every running request by one token."""
        live = {
            slot: (request, k)
            for request in self._running
            for k, slot in enumerate(request.slots)
            if slot >= 0 and request.seqs[k].next_token is not None
        }
        if not live:
            return
        # llama.cpp decodes a batch in one pass only if its sequences are consecutive slots
        # in order (else it splits it), and multiplies one row by the weights another way
        # than several: free slots in the range, and a lone sequence's neighbour, get a
        # throwaway token, so a sequence's logits are the same bits in any batch.
        low, high = min(live), max(max(live), min(live) + 1)
        for i, slot in enumerate(range(low, high + 1)):
            if slot in live:
                request, k = live[slot]
                seq = request.seqs[k]
                self._put(i, seq.next_token or 0, seq.pos, slot)
            else:
                self._put(i, self.vocab.bos, 0, slot)
            self._batch.logits[i] = 1
        threads = self.threads.pick()
        started = time.perf_counter()
        self._decode(high - low + 1, threads)
        for slot in range(low, high + 1):
            if slot not in live:
                self._ll.llama_memory_seq_rm(self._mem, slot, -1, -1)
        self.threads.record(threads, time.perf_counter() - started, len(live))
        rows = np.ctypeslib.as_array(
            self._ll.llama_get_logits(self._ctx), shape=(high - low + 1, self._n_vocab)
        )
        for slot, (request, k) in live.items():
            seq = request.seqs[k]
            seq.next_token = seq.step(rows[slot - low], self.vocab)
            seq.pos += 1
            if seq.finish_reason is None and seq.pos >= self.n_ctx:
                seq.finish("length")  # the context is full (only past max_tokens)
                seq.next_token = None
            if seq.next_token is None:
                self._free_slot(request, k)
        share = (time.perf_counter() - started) / len(live)
        for request, _ in live.values():
            request.compute_s += share
        for request in list(self._running):
            self._retire(request)

    def _retire(self, request: Request) -> None:
        """Free the slots of finished sequences; answer the request once all have ended."""
        if any(seq.finish_reason is None for seq in request.seqs):
            return
        self._release(request)
        self._running.remove(request)
        choices = [seq.choice(self.vocab) for seq in request.seqs]
        completion = sum(len(seq.tokens) for seq in request.seqs)
        _resolve(request.future, result={
            "choices": choices,
            "prompt_tokens": len(request.prompt),
            "completion_tokens": completion,
            "completion_tokens_per_choice": [len(seq.tokens) for seq in request.seqs],
            "compute_s": request.compute_s,
        })  # fmt: skip

    def _drop_cancelled(self) -> None:
        """A cancelled request (its caller gave up) leaves the batch at once."""
        for request in [r for r in self._running if r.future.cancelled()]:
            self._release(request)
            self._running.remove(request)

    def _release(self, request: Request) -> None:
        for k in range(len(request.slots)):
            self._free_slot(request, k)

    def _free_slot(self, request: Request, k: int) -> None:
        """A finished sequence's slot is free at once, for the next request to fill."""
        slot, request.slots[k] = request.slots[k], -1
        if slot >= 0:
            self._ll.llama_memory_seq_rm(self._mem, slot, -1, -1)
            heapq.heappush(self._free, slot)

    def _put(self, i: int, token: int, pos: int, slot: int) -> None:
        batch = self._batch
        batch.token[i], batch.pos[i], batch.n_seq_id[i] = token, pos, 1
        batch.seq_id[i][0], batch.logits[i] = slot, 0

    def _decode(self, n_tokens: int, threads: int | None = None) -> None:
        threads = threads or self.threads.current
        self._ll.llama_set_n_threads(self._ctx, threads, threads)
        self._batch.n_tokens = n_tokens
        code = self._ll.llama_decode(self._ctx, self._batch)
        if code != 0:
            raise RuntimeError(f"llama_decode failed with code {code}")


def _resolve(future: Future, result: Any = None, error: BaseException | None = None) -> None:
    try:  # the caller may have cancelled it in the meantime
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)
    except InvalidStateError:
        pass


class _Pieces(dict):
    """Token id -> the bytes llama.cpp detokenizes it to, looked up once per token."""

    def __init__(self, llm: Any) -> None:
        super().__init__()
        self._llm = llm
        self._buffer = ctypes.create_string_buffer(256)

    def __missing__(self, token: int) -> bytes:
        import llama_cpp

        n = llama_cpp.llama_token_to_piece(self._llm._model.vocab, token, self._buffer, 256,
                                           0, False)  # fmt: skip
        piece = self._buffer.raw[: max(n, 0)]
        self[token] = piece
        return piece


def sampling_params(params: dict[str, Any]) -> SamplingParams:
    """The request's sampling parameters over llama-cpp-python's chat defaults."""
    defaults = SamplingParams()
    return SamplingParams(
        temperature=float(params.get("temperature", defaults.temperature)),
        top_p=float(params.get("top_p", defaults.top_p)),
        top_k=int(params.get("top_k", defaults.top_k)),
        min_p=float(params.get("min_p", defaults.min_p)),
    )
