"""Per-sequence sampling for the embedded engine, in numpy over one row of logits.

llama.cpp's own sampler keeps one RNG per context, so a sample would depend on what else
shares the batch. Here every sequence owns a numpy Generator seeded from (seed + i), and
draws exactly one number per sampled token, so sample i of a request is a function of the
prompt, the sampling parameters, the seed and i only: the per-sample cache stays valid.
The filter chain is llama-cpp-python's default one (top-k 40, top-p, min-p 0.05, then the
temperature), so the samples keep the distribution the embedded model had before batching.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SamplingParams:
    """How one request samples; the defaults are llama-cpp-python's chat-completion ones."""

    temperature: float = 0.2
    top_p: float = 0.95
    top_k: int = 40
    """Candidates kept before top-p (<= 0: the whole vocabulary)."""
    min_p: float = 0.05
    """Drop candidates below min_p x the most likely one's probability."""


def make_rng(seed: int | None, index: int) -> np.random.Generator:
    """The RNG of sample `index`: seed + index, as a request of n=1 with that seed would use."""
    if seed is None:
        return np.random.default_rng()
    return np.random.default_rng((int(seed) + index) % 2**64)


def sample_token(logits: np.ndarray, params: SamplingParams, rng: np.random.Generator) -> int:
    """One token id from a row of raw logits (float32, one per vocabulary entry)."""
    if params.temperature == 0:
        return int(np.argmax(logits))
    if params.temperature < 0:  # llama.cpp: plain softmax sampling over the whole vocabulary
        params = SamplingParams(temperature=1.0, top_p=1.0, top_k=0, min_p=0.0)
    ids, values = _top_k(logits, params.top_k)
    probs = _softmax(values)
    if params.top_p < 1.0:
        # Keep the smallest head whose mass reaches top_p (llama.cpp's rule, min_keep 1).
        keep = int(np.searchsorted(np.cumsum(probs), params.top_p, side="left")) + 1
        ids, values = ids[:keep], values[:keep]
    if params.min_p > 0.0 and len(values) > 1:
        keep = int(np.count_nonzero(values >= values[0] + np.log(params.min_p))) or 1
        ids, values = ids[:keep], values[:keep]
    cdf = np.cumsum(_softmax(values / params.temperature, dtype=np.float64))
    pick = int(np.searchsorted(cdf, rng.random() * cdf[-1], side="right"))
    return int(ids[min(pick, len(ids) - 1)])


def token_logprob(logits: np.ndarray, token: int) -> float:
    """Raw (temperature 1) log-softmax of `token`: what llama-cpp-python reports."""
    row = logits.astype(np.float64)
    top = row.max()
    return float(row[token] - top - np.log(np.exp(row - top).sum()))


def _top_k(logits: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k largest logits and their ids, largest first (ties by id, deterministically)."""
    whole = not 0 < k < len(logits)
    ids = np.arange(len(logits)) if whole else np.argpartition(logits, -k)[-k:]
    values = logits[ids]
    order = np.lexsort((ids, -values))
    return ids[order], values[order].astype(np.float64)


def _softmax(values: np.ndarray, dtype: type = np.float64) -> np.ndarray:
    exps = np.exp(values.astype(dtype) - values.max())
    return exps / exps.sum()
