"""``agora-events handlers [NAMES...]``: run actions against the events topic.

With no names, every action of the default registry that the configuration enables
(``restart``, ``whiteboard``, ``notify``); ``echo`` runs only when named. Settings come
from the environment (:class:`handlers.settings.HandlerSettings`).
"""

from __future__ import annotations

import logging
import socket
import sys
import threading

import click
from prometheus_client import PlatformCollector, ProcessCollector

from handlers.action_catalog import (
    ActionContext,
    ActionDisabled,
    ActionRegistry,
    UnknownAction,
    default_registry,
)
from handlers.config import ConfigError
from handlers.runtime.guard import GuardPolicy
from handlers.runtime.health import HealthServer, Liveness
from handlers.runtime.metrics import RuntimeMetrics
from handlers.runtime.retry import RetryPolicy
from handlers.runtime.runner import ActionRunner, RunnerConfig
from handlers.runtime.supervisor import supervise
from handlers.settings import HandlerSettings
from webhook.shared.logs import configure_json_logging
from webhook.shared.tracing import configure_tracing

log = logging.getLogger(__name__)

EXIT_USAGE = 2


class ActionBuildError(Exception):
    """A factory failed; the message names the action and the factory's reason."""


def runner_config(
    settings: HandlerSettings, name: str, instance_id: str, session_timeout_ms: int = 45_000
) -> RunnerConfig:
    """The runner configuration of action ``name`` from the process settings."""
    return RunnerConfig(
        session_timeout_ms=session_timeout_ms,
        group_id=f"{settings.group_prefix}.{name}",
        transactional_id=f"{settings.group_prefix}.{name}.{instance_id}",
        topics=settings.topics,
        retry=RetryPolicy(max_attempts=settings.max_attempts, budget_s=settings.retry_budget_s),
        guard=GuardPolicy(),
        client_config=settings.kafka.client_config(),
        max_poll_interval_ms=settings.max_poll_interval_ms,
        state_ttl_s=settings.state_ttl_s,
        concurrency=settings.concurrency,
        # On SIGTERM running actions finish and commit within the process's shutdown time.
        stop_drain_s=max(1.0, settings.shutdown_timeout_s / 2),
    )


def build_runners(
    settings: HandlerSettings,
    registry: ActionRegistry,
    names: tuple[str, ...],
    *,
    instance_id: str,
    session_timeout_ms: int = 45_000,
    metrics: RuntimeMetrics,
    liveness: Liveness,
    stop: threading.Event,
) -> list[ActionRunner]:
    """One runner per action; raises ``click.UsageError`` for unusable explicit names."""
    explicit = bool(names)
    runners = []
    # Imported here: the recording modules load only when a handler process starts.
    from handlers.recording.cli_common import configure_pacer

    configure_pacer(settings)
    for name in dict.fromkeys(names or registry.default_names()):
        context = ActionContext(settings, metrics_registry=metrics.registry)
        try:
            action = registry.create(name, context)
            prepare = getattr(action, "prepare", None)
            if callable(prepare):
                prepare()
        except UnknownAction as exc:
            raise click.UsageError(str(exc)) from None
        except ActionDisabled as exc:
            if explicit:
                raise click.UsageError(f"cannot run {name!r}: {exc}") from None
            log.warning("action disabled: %s", exc, extra={"handler": name})
            continue
        except ConfigError:
            raise
        except Exception as exc:  # a factory refusing its configuration (bad link, sink...)
            raise ActionBuildError(f"cannot build action {name!r}: {exc}") from exc
        runners.append(
            ActionRunner(
                action,
                runner_config(settings, name, instance_id, session_timeout_ms),
                metrics=metrics,
                stop=stop,
                tables=list(context.tables.values()),
                liveness=liveness,
            )
        )
    return runners


@click.command("handlers")
@click.argument("names", nargs=-1)
@click.option(
    "--instance-id",
    default=None,
    help="Identifies this instance in transactional ids: unique among running instances "
    "of an action, stable across its restarts. Default: the host name.",
)
@click.option(
    "--plugin",
    "plugins",
    multiple=True,
    metavar="NAME=MODULE:FACTORY",
    help="Register an extra action: FACTORY(context) -> Action, run when NAME is given.",
)
@click.option(
    "--session-timeout-ms",
    type=click.IntRange(min=1000),
    default=45_000,
    show_default=True,
    help="How long a crashed instance keeps its partitions before the group reassigns them "
    "(within the broker's group.min/max.session.timeout.ms).",
)
@click.option(
    "--metrics-host",
    default=None,
    help="Address of /metrics and /healthz [default: AGORA_HANDLERS_METRICS_HOST, else "
    "127.0.0.1; a container scraped from outside sets 0.0.0.0] (port: "
    "AGORA_HANDLERS_METRICS_PORT, 0 = off).",
)
def handlers_command(
    names: tuple[str, ...],
    instance_id: str | None,
    plugins: tuple[str, ...],
    session_timeout_ms: int,
    metrics_host: str | None,
) -> None:
    """Run actions (restart, whiteboard, notify, echo) on the events topic until SIGTERM."""
    registry = default_registry()
    for plugin in plugins:
        name, sep, target = plugin.partition("=")
        if not sep or not name or ":" not in target:
            raise click.BadParameter(
                f"{plugin!r}: expected NAME=MODULE:FACTORY", param_hint="--plugin"
            )
        registry.register(name, target, default=False)
    settings = HandlerSettings()
    configure_json_logging(settings.log_level)
    configure_tracing("agora-events-handlers")  # off unless OTEL_* variables ask for it
    stop = threading.Event()
    metrics = RuntimeMetrics()
    ProcessCollector(registry=metrics.registry)
    PlatformCollector(registry=metrics.registry)
    liveness = Liveness(settings.max_poll_interval_ms / 1000, settings.health_file)
    try:
        runners = build_runners(
            settings, registry, names,
            instance_id=instance_id or socket.gethostname(),
            session_timeout_ms=session_timeout_ms,
            metrics=metrics, liveness=liveness, stop=stop,
        )
    except ConfigError as exc:
        log.error("cannot load the rules file: %s", exc)
        sys.exit(EXIT_USAGE)
    except ActionBuildError as exc:
        log.error("%s", exc)
        sys.exit(EXIT_USAGE)
    if not runners:
        log.error("no action to run: every default action is disabled by the configuration")
        sys.exit(EXIT_USAGE)
    server = None
    if settings.metrics_port:
        host = metrics_host or settings.metrics_host
        server = HealthServer(metrics.registry, liveness, host, settings.metrics_port)
        server.start()
    try:
        code = supervise(runners, stop, settings.shutdown_timeout_s)
    finally:
        if server is not None:
            server.close()
    sys.exit(code)
