"""Asking Agora what became of a task, for the decision table of :mod:`.decide`: its
``query`` answer and the channel user list, as the table's evidence types. Both the
restart action (settling an ambiguous end) and the reconciler (its periodic check) ask
the same way.
"""

from __future__ import annotations

from handlers.recording.api_requests import Mode
from handlers.recording.client import RecordingApi
from handlers.recording.decide import (
    ChannelAnswer,
    ChannelUnavailable,
    QueryAnswer,
    Running,
    Unanswered,
    Vanished,
)
from handlers.recording.errors import Advice, RecordingApiError


def query_answer(api: RecordingApi, mode: Mode, resource_id: str, sid: str) -> QueryAnswer:
    """``query``'s answer: the task's status, gone (404) or not answered (network, 5xx,
    429). Any other refusal is raised as the :class:`RecordingApiError`: what it means
    depends on who asked."""
    try:
        answer = api.query(mode, resource_id, sid)
    except RecordingApiError as exc:
        if exc.advice is Advice.NOT_FOUND:
            return Vanished()
        if exc.advice is Advice.RETRY_SAME:
            return Unanswered(str(exc))
        raise
    return Running(answer.status)


def channel_answer(api: RecordingApi, cname: str) -> ChannelAnswer:
    """Who is in ``cname``, or why Agora could not say (``transient`` when worth asking
    again)."""
    try:
        return api.channel_users(cname)
    except RecordingApiError as exc:
        return ChannelUnavailable(str(exc), transient=exc.advice is Advice.RETRY_SAME)
