"""Prometheus metrics of the restart action, registered in the handler process's registry
(``ActionContext.metrics_registry``, served on ``/metrics``).

==========================================  =============================================
``agora_restart_gave_up_total``             restarts the action abandoned, by ``reason``:
                                            ``max_restarts`` (the channel's cap within the
                                            window: outcome ``gave_up``), ``refused``
                                            (Agora answered an error no retry can fix),
                                            ``uid_conflict`` (53 for a task this restart
                                            cannot identify), ``invalid_request`` (the
                                            request can never be sent: a missing variable,
                                            an unusable token, an invalid clientRequest);
                                            the last three end as outcome ``failed``
==========================================  =============================================

Counted when ``run`` decides, before the runtime commits: a transaction that aborts and is
handled again counts twice (rare; the outcome records on ``agora.actions`` are exact).
Restarts the runtime dead-letters after its retry budget are
``agora_handler_dead_letters_total{action="restart",reason="exhausted"}``.
"""

from __future__ import annotations

from typing import Literal, get_args

from prometheus_client import CollectorRegistry, Counter

GaveUpReason = Literal["max_restarts", "refused", "uid_conflict", "invalid_request"]
GAVE_UP_REASONS: tuple[GaveUpReason, ...] = get_args(GaveUpReason)


class RestartMetrics:
    """The restart action's metric families, in ``registry`` (a fresh one unless given)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.gave_up = Counter(
            "agora_restart_gave_up", "Restarts of failed recordings that gave up, by reason.",
            ["reason"], registry=self.registry,
        )
        # Export every reason at 0 from the start: increase() misses a series whose first
        # sample is already 1, so the first give-up would not alert.
        for reason in GAVE_UP_REASONS:
            self.gave_up.labels(reason=reason)

    def record_gave_up(self, reason: GaveUpReason) -> None:
        self.gave_up.labels(reason=reason).inc()
