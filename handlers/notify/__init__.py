"""The notify handler: derived file records on ``agora.recording.files`` and alerts to
webhook, Slack and PagerDuty sinks (see :mod:`handlers.notify.action`)."""

from handlers.notify.action import NotifyAction, NotifyCommand, build_notify_action
from handlers.notify.files import FileRecord, derive_file_records

__all__ = [
    "FileRecord",
    "NotifyAction",
    "NotifyCommand",
    "build_notify_action",
    "derive_file_records",
]
