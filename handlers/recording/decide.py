"""Did this recording fail? The decision table, as one pure function.

Every way the service learns about a task's end goes through :func:`decide_ending`: NCS
callbacks (classified by :mod:`handlers.recording.signals`), the restart action's
confirmation and the reconciler's periodic ``query``. Definitive evidence restarts or
ends a task at once. Ambiguous evidence is settled by waiting a bounded time (the
failover grace) for the task's ``session_exit`` and then by asking Agora who is in the
channel (the channel user list, facts 2.12): a task is restarted only while people other
than our recorder uids are still in the channel. A ``query`` 404 alone never restarts
anything, because Agora answers 404 for every finished task, normal or not.

The rows (``docs/recording.md`` shows the same table; each row has its test):

==== ============================================================ =====================
row  evidence                                                     decision
==== ============================================================ =====================
D1   ``session_exit`` ``exitStatus`` 1                              restart
D2   ``recorder_leave`` ``leaveCode`` 0 (initialisation failed)      restart
D3   ``web_recorder_stopped`` code 2-6                              restart
D4   ``session_exit`` ``exitStatus`` 0                              ended
D5   ``recorder_leave`` only SIG/NO_USERS/TIMER_CATCH bits,         no action (the exit
     ``web_recorder_stopped`` code 0/1, error level < 5             or the channel ends it)
D6   ``session_failover``                                           no action (grace starts)
D7   health-check channel (``test_webhook`` / uid ``12121212``)      no action
D8   registry: we stopped it, it ended, another sid, starting       no action
A1   ambiguous (error level 5, CLIENT_LEAVE or unknown leave bits,   settle (rows S*)
     other ``exitStatus``, a task that vanished)
S1   registry now says ended or stopped (its exit arrived)          ended (no restart)
S2   ``query`` status 20 (exited abnormally)                        restart
S3   ``query`` any other status (4/5 running...)                    alive (no restart)
S4   ``query`` failed (network, 5xx, 429)                           wait, ask again
S5   404 (or no resourceId) inside the wait                         wait for the exit
S6   404 past the wait, channel closed                              ended
S7   404 past the wait, nobody but our recorder uids                ended
S8   404 past the wait, other people in the channel                 restart
S9   404 past the wait, channel list failed (transient)             wait, ask again
S10  404 past the wait, channel list refused (4xx)                  no restart, alert
==== ============================================================ =====================
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from handlers.recording.api_responses import STATUS_EXITED_ABNORMALLY, ChannelUsers
from handlers.recording.session_registry import ENDED, OWN_STOP_STATUSES


class Decision(StrEnum):
    RESTART = "restart"
    """The task died while it was wanted: start it again."""
    ENDED = "ended"
    """The task ended on purpose (or with its channel): mark it ended, never restart."""
    ALIVE = "alive"
    """The task still runs: nothing to do."""
    WAIT = "wait"
    """Not settled yet: ask again later (its exit may still come, Agora may be moving it,
    or Agora did not answer)."""
    ASK_CHANNEL = "ask_channel"
    """The wait is over: ask the channel user list, then decide again with the answer."""
    UNKNOWN = "unknown"
    """Cannot be settled (the channel user list is refused): no restart, alert."""


@dataclass(frozen=True, slots=True)
class Running:
    """``query`` answered with ``status``."""

    status: int | None


@dataclass(frozen=True, slots=True)
class Vanished:
    """``query`` answered 404, or the task cannot be queried (no resourceId)."""


@dataclass(frozen=True, slots=True)
class Unanswered:
    """``query`` failed otherwise (network error, timeout, 5xx, 429)."""

    error: str


QueryAnswer = Running | Vanished | Unanswered


@dataclass(frozen=True, slots=True)
class ChannelUnavailable:
    """The channel user list failed: ``transient`` for network errors, timeouts, 5xx
    and 429 (ask again), else refused (credentials, configuration)."""

    error: str
    transient: bool


ChannelAnswer = ChannelUsers | ChannelUnavailable


@dataclass(frozen=True, slots=True)
class Evidence:
    """What is known about an ambiguous end.

    ``registry_status``: the task's registry status now (``None``: no record);
    ``query``: ``query``'s answer; ``wait_left_s``: time left to wait for the task's
    ``session_exit`` (<= 0: the wait is over); ``channel``: the channel user list's
    answer (``None``: not asked yet); ``recorder_uids``: our recorder uids on the channel
    (every task's uid pair, and uids Agora moved a task to)."""

    registry_status: str | None
    query: QueryAnswer
    wait_left_s: float
    channel: ChannelAnswer | None = None
    recorder_uids: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Ruling:
    decision: Decision
    row: str
    reason: str


def decide_ending(evidence: Evidence) -> Ruling:
    """Rows S1-S10 of the module table, first match wins (pure)."""
    status = evidence.registry_status
    if status == ENDED or status in OWN_STOP_STATUSES:
        return Ruling(Decision.ENDED, "S1", f"the registry says {status}")
    answer = evidence.query
    if isinstance(answer, Running):
        if answer.status == STATUS_EXITED_ABNORMALLY:
            return Ruling(Decision.RESTART, "S2", "query status 20 (exited abnormally)")
        return Ruling(Decision.ALIVE, "S3", f"query says status {answer.status}")
    if isinstance(answer, Unanswered):
        return Ruling(Decision.WAIT, "S4", f"query failed: {answer.error}")
    if evidence.wait_left_s > 0:
        return Ruling(Decision.WAIT, "S5",
                      f"the task is not found; waiting {evidence.wait_left_s:.0f} s more "
                      "for its session_exit")
    channel = evidence.channel
    if channel is None:
        return Ruling(Decision.ASK_CHANNEL, "S5", "the task is not found and no exit came")
    if isinstance(channel, ChannelUnavailable):
        if channel.transient:
            return Ruling(Decision.WAIT, "S9", f"channel user list failed: {channel.error}")
        return Ruling(Decision.UNKNOWN, "S10",
                      f"the task vanished and the channel user list is refused "
                      f"({channel.error}): not restarting on a 404 alone")
    if not channel.exists:
        return Ruling(Decision.ENDED, "S6",
                      "the task vanished and the channel is closed: it ended with its channel")
    others = channel.users - evidence.recorder_uids
    # A capped audience list can hide people: trust Agora's total over the list.
    hidden = max(0, channel.total - len(channel.users))
    if not others and not hidden:
        return Ruling(Decision.ENDED, "S7",
                      "the task vanished and only our recorders are in the channel: it "
                      "ended with its channel")
    count = len(others) + hidden
    return Ruling(Decision.RESTART, "S8",
                  f"the task vanished while {count} other user(s) are in the channel")
