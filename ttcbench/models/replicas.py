"""Many servers of one model: requests spread over the replicas of `model.api_base`, with
failover.

litellm's Router picks the replica of each try among those not cooling down (`simple-shuffle`:
at random, equally weighted) and keeps the cooldowns; `ModelClient` still sends the try itself
(the fast OpenAI-compatible transport where it applies, else `litellm.acompletion` with that
replica's `api_base`) inside its own retry loop. So a request, with its `n` and seed, goes
whole to one replica, and retries, refusals, `Retry-After` and the fail-fast rule work as with
one server. A replica whose try fails in a way another server may not (refused or dropped
connection, timeout, 5xx, 429) cools down for `COOLDOWN_S`, and the next try goes to another
replica at once instead of waiting out the backoff.

Why not `Router.acompletion`: it sends through litellm's own path (~5 ms of CPU a request, what
`openai_compat` avoids), and its retries would stack on ours, hidden from `requests_sent`, the
fail-fast rule and the per-call `attempts`.
"""

from __future__ import annotations

import random
from dataclasses import replace

import litellm
from litellm.types.router import RouterRateLimitError

from ttcbench.models.openai_compat import OpenAICompat, fast_transport
from ttcbench.models.spec import ModelSpec

COOLDOWN_S = 5.0
"""How long a failing replica gets no new tries (litellm's own default). A dead server then
costs one refused connection per cooldown, answered at once by another replica; a server
back up gets requests again within seconds."""


class Replicas:
    """Which replica each try goes to, and how to send it there."""

    def __init__(self, spec: ModelSpec) -> None:
        self.group = spec.name
        self.bases = spec.api_bases
        self.router = litellm.Router(
            model_list=[_deployment(spec, base) for base in self.bases],
            routing_strategy="simple-shuffle",
            cooldown_time=COOLDOWN_S,
        )
        self._cooldowns = self.router.health().cooldowns
        # One transport per replica: each holds its own URL (None: litellm's path for all).
        self.fast: dict[str, OpenAICompat | None] = {
            base: fast_transport(replace(spec, api_base=base)) for base in self.bases
        }

    async def pick(self) -> str:
        """The replica for the next try. When every replica is cooling down, one at random:
        the retry policy's backoff then paces the tries, not the cooldowns."""
        try:
            chosen = await self.router.select(self.group)
        except RouterRateLimitError:  # litellm's "all deployments are in cooldown"
            return random.choice(self.bases)
        return str(chosen["model_info"]["id"])

    def failed(self, base: str, err: BaseException) -> bool:
        """Cool `base` down after a failed try; whether another replica is free to take the
        next try at once."""
        status = getattr(err, "status_code", None)
        self._cooldowns.add_deployment_to_cooldown(
            model_id=base,
            original_exception=err if isinstance(err, Exception) else Exception(str(err)),
            exception_status=int(status) if isinstance(status, int) else 500,
            cooldown_time=COOLDOWN_S,
        )
        return len(self.cooling()) < len(self.bases)

    def cooling(self) -> set[str]:
        """The replicas cooling down now."""
        active = self._cooldowns.get_active_cooldowns(list(self.bases), None)
        return {str(model_id) for model_id, _ in active}


def _deployment(spec: ModelSpec, base: str) -> dict[str, object]:
    """One Router deployment per replica, identified by its address (what `pick` returns)."""
    return {
        "model_name": spec.name,
        "litellm_params": {"model": spec.model, "api_base": base},
        "model_info": {"id": base},
    }
