"""What the math and QA answer extractors share: the "The answer is X" pattern they both look
for, and markup that is never an answer."""

from __future__ import annotations

import re

# "The answer is X", "Answer: X", "Final answer: X", "**Answer:** X", "**Final Answer**: X",
# "The answer is: X".
ANSWER_IS_RE = re.compile(
    r"\banswer\s*\**\s*(?:is\b\s*:?|:)\s*\**[ \t]*(?P<ans>[^\n]*)", re.IGNORECASE
)

# Reasoning-block tags (`<think>`, `</think>`): markup, never an answer. Left in, "The answer
# is\n</think>" would read the tag as the answer (seen with budget forcing on SmolLM2).
_THINK_TAG_RE = re.compile(r"</?think>", re.IGNORECASE)


def without_reasoning_tags(text: str | None) -> str:
    """The text with `<think>` / `</think>` tags removed (their content stays: a model's
    reasoning may hold its only answer)."""
    return _THINK_TAG_RE.sub("", text or "")
