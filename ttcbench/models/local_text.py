"""One generated sequence of the embedded engine: its tokens, text, logprobs and end.

The stopping rules are llama-cpp-python's `create_completion`, token for token, so the text,
stop strings, `max_tokens` and `finish_reason` ('stop' or 'length') are what the embedded
model returned before it was batched.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ttcbench.models.local_sampling import SamplingParams, make_rng, sample_token, token_logprob

# llama-cpp-python's check for a UTF-8 lead byte whose continuation bytes are still to come.
_LEAD_BYTES = ((2, 192), (3, 224), (4, 240))


@dataclass
class Vocab:
    """What a sequence needs of the tokenizer: end-of-generation ids and token bytes."""

    is_eog: Callable[[int], bool]
    bos: int
    pieces: Mapping[int, bytes]


@dataclass
class Sequence:
    """Sample `index` of one request, decoded in its own llama.cpp sequence (KV slot)."""

    index: int
    params: SamplingParams
    max_tokens: int
    stops: list[bytes]
    want_logprobs: bool
    rng: np.random.Generator
    tokens: list[int] = field(default_factory=list)
    raw: bytes = b""
    logprobs: list[float] = field(default_factory=list)
    finish_reason: str | None = None
    text: bytes = b""
    next_token: int | None = None
    """The sampled token still to be decoded (None once finished)."""
    pos: int = 0
    """Its position in the sequence."""
    _multibyte_fix: int = 0

    @classmethod
    def start(
        cls, index: int, seed: int | None, params: SamplingParams, max_tokens: int,
        stops: list[str], want_logprobs: bool,
    ) -> Sequence:  # fmt: skip
        return cls(
            index, params, max_tokens, [s.encode() for s in stops], want_logprobs,
            make_rng(seed, index),
        )  # fmt: skip

    def step(self, logits: np.ndarray, vocab: Vocab) -> int | None:
        """Sample the next token from this sequence's logits row; the token to decode next,
        or None once the sequence has finished."""
        token = sample_token(logits, self.params, self.rng)
        if vocab.is_eog(token):
            self.finish("stop", self._visible(vocab))
            return None
        self.tokens.append(token)
        if self.want_logprobs:
            self.logprobs.append(token_logprob(logits, token))
        self.raw += vocab.pieces[token]
        text = self._visible(vocab)
        for k, char in enumerate(text[-3:]):
            k = 3 - k
            for num, pattern in _LEAD_BYTES:
                if num > k and pattern & char == pattern:
                    self._multibyte_fix = num - k
        if self._multibyte_fix > 0:  # never stop inside a UTF-8 character
            self._multibyte_fix -= 1
            return token
        found = [s for s in self.stops if s in text]
        if found:
            self.finish("stop", text[: text.index(found[0])])
            return None
        if len(self.tokens) >= self.max_tokens:
            self.finish("length", text)
            return None
        return token

    def _visible(self, vocab: Vocab) -> bytes:
        # llama.cpp drops the space a leading BOS token's detokenization adds
        if self.tokens and self.tokens[0] == vocab.bos and self.raw[:1] == b" ":
            return self.raw[1:]
        return self.raw

    def finish(self, reason: str, text: bytes | None = None) -> None:
        self.finish_reason = reason
        self.text = self.raw if text is None else text

    def choice(self, vocab: Vocab) -> dict[str, Any]:
        """The OpenAI-style choice of a finished sequence."""
        choice: dict[str, Any] = {
            "index": self.index,
            "message": {"role": "assistant", "content": self.text.decode("utf-8", "ignore")},
            "finish_reason": self.finish_reason,
            "logprobs": None,
        }
        if self.want_logprobs:
            content = [
                {
                    "token": vocab.pieces[t].decode("utf-8", errors="ignore"),
                    "logprob": lp,
                    "bytes": list(vocab.pieces[t]),
                    "top_logprobs": [],
                }
                for t, lp in zip(self.tokens, self.logprobs, strict=True)
            ]
            choice["logprobs"] = {"content": content, "refusal": None}
        return choice
