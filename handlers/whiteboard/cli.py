"""``agora-events whiteboard ...``: capture a room's scenes by hand, list its scenes.

Credentials and host come from ``WHITEBOARD_*`` (:class:`WhiteboardSettings`). Exit codes:
0 done, 1 the service refused or could not be reached (its ``message`` is shown),
2 bad options or missing credentials.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import click

from handlers.settings import WhiteboardSettings
from handlers.whiteboard.client import HttpWhiteboardClient, WhiteboardError
from handlers.whiteboard.models import MAX_DIMENSION, InvalidCaptureRequest
from handlers.whiteboard.tokens import TokenConfigError

_OPTION_OF_FIELD = {"room_uuid": "--room", "path": "--path", "scene_dir": "--dir",
                    "width": "--width", "height": "--height"}


@contextmanager
def _client() -> Iterator[HttpWhiteboardClient]:
    try:
        client = HttpWhiteboardClient.from_settings(WhiteboardSettings())
    except TokenConfigError as exc:
        raise click.UsageError(str(exc)) from None
    with client:
        try:
            yield client
        except InvalidCaptureRequest as exc:
            option = _OPTION_OF_FIELD.get(exc.field, exc.field)
            raise click.BadParameter(str(exc), param_hint=option) from None
        except WhiteboardError as exc:
            hint = " (temporary, worth retrying)" if exc.retryable else ""
            raise click.ClickException(f"{exc}{hint}") from None


@click.group("whiteboard")
def whiteboard_group() -> None:
    """Interactive Whiteboard screenshots (REST API, deprecated by Agora)."""


_dimension = click.IntRange(1, MAX_DIMENSION)


@whiteboard_group.command("capture")
@click.option("--room", "room_uuid", required=True, help="Room UUID.")
@click.option("--path", required=True, help="Scene directory, starting with '/'.")
@click.option("--width", type=_dimension, default=1280, show_default=True, help="Pixels.")
@click.option("--height", type=_dimension, default=720, show_default=True, help="Pixels.")
@click.option("--region", default=None, help="Data center (default: WHITEBOARD_REGION).")
def capture_command(
    room_uuid: str, path: str, width: int, height: int, region: str | None
) -> None:
    """Screenshot every scene directly in a scene directory; print each URL."""
    with _client() as client:
        shots = client.screenshot_list(
            room_uuid, path=path, width=width, height=height, region=region
        )
    for shot in shots:
        click.echo(shot.url)


@whiteboard_group.command("scenes")
@click.option("--room", "room_uuid", required=True, help="Room UUID.")
@click.option("--dir", "scene_dir", default="/", show_default=True, help="Scene directory.")
@click.option("--region", default=None, help="Data center (default: WHITEBOARD_REGION).")
def scenes_command(room_uuid: str, scene_dir: str, region: str | None) -> None:
    """List the scene paths in a scene directory (to choose a --path for capture)."""
    with _client() as client:
        scenes = client.scenes(room_uuid, scene_dir=scene_dir, region=region)
    for scene in scenes:
        click.echo(scene)
