"""The Prometheus multiprocess directory of one webhook run.

Every start gets a new directory from ``mkdtemp`` (private, unpredictable name), inside
``PROMETHEUS_MULTIPROC_DIR`` when the operator set one, else in the system temp directory:
stale files of a previous run would be summed into /metrics, and a fixed path in /tmp could
be prepared by another user. Nothing that was there before is deleted; at exit the run
removes only the metric files it wrote and its own directory.
"""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path

PREFIX = "agora-webhook-metrics-"
MARKER = ".agora-webhook-run"


def make_run_directory(parent: str | None) -> Path:
    if parent is not None:
        Path(parent).mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix=PREFIX, dir=parent))
    (path / MARKER).touch()
    return path


def remove_run_directory(path: Path) -> None:
    """Remove what a run wrote (``*.db`` metric files and the marker), then the directory
    if it is empty. A directory without the marker was not made by a run: left alone."""
    if not (path / MARKER).is_file():
        return
    for item in path.glob("*.db"):
        item.unlink(missing_ok=True)
    (path / MARKER).unlink(missing_ok=True)
    with contextlib.suppress(OSError):  # something else lives there: keep it
        path.rmdir()
