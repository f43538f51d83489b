"""Which actions exist and how to build them.

A factory takes an :class:`ActionContext` (settings, rules file, clock, read-only tables)
and returns an :class:`handlers.action_contract.Action`, or raises :class:`ActionDisabled` when the
configuration does not allow it (e.g. no credentials): ``agora-events handlers`` with no
names then skips it with a log line, and naming it explicitly is an error.

The default registry names ``restart``, ``whiteboard`` and ``notify`` (started by default)
and ``echo`` (built in, only when named). Factories are imported on first use, so
starting one action never imports the others' dependencies. Action packages plug in with
a module-level ``create_action(context) -> Action``; see :func:`default_registry`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry

from handlers.action_contract import Action, TableView
from handlers.config import RulesConfig, load_rules
from handlers.echo import ECHO, EchoAction
from handlers.runtime.state import Table
from handlers.settings import HandlerSettings
from webhook.shared.clock import Clock, SystemClock


class ActionDisabled(Exception):
    """The action cannot run with this configuration; the message says what is missing."""


class UnknownAction(LookupError):
    """No action of that name is registered."""


@dataclass
class ActionContext:
    """What a factory may use. Tables it opens are loaded and refreshed by the runner of
    the action it builds (one context per action). ``metrics_registry``: where an action
    registers metrics of its own (the process's ``/metrics``; ``None``: not exported)."""

    settings: HandlerSettings
    clock: Clock = field(default_factory=SystemClock)
    rules_config: RulesConfig | None = None
    tables: dict[str, Table] = field(default_factory=dict)
    metrics_registry: CollectorRegistry | None = None

    @property
    def rules(self) -> RulesConfig:
        """The rules file (``AGORA_EVENTS_CONFIG``), loaded on first use."""
        if self.rules_config is None:
            self.rules_config = load_rules(self.settings.config_path)
        return self.rules_config

    def table(self, topic: str) -> TableView:
        """A live read-only view of the compacted ``topic`` (key text -> JSON object)."""
        return self.tables.setdefault(topic, Table(topic))


ActionFactory = Callable[[ActionContext], Action[Any]]


@dataclass(frozen=True, slots=True)
class _Entry:
    factory: ActionFactory | str
    default: bool


class ActionRegistry:
    """Names to factories. A factory may be given as ``"module:attribute"`` (lazy)."""

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}

    def register(self, name: str, factory: ActionFactory | str, *, default: bool = True) -> None:
        self._entries[name] = _Entry(factory, default)

    def names(self) -> list[str]:
        return sorted(self._entries)

    def default_names(self) -> list[str]:
        return sorted(n for n, e in self._entries.items() if e.default)

    def create(self, name: str, context: ActionContext) -> Action[Any]:
        """Build the action; raises :class:`UnknownAction` or :class:`ActionDisabled`."""
        entry = self._entries.get(name)
        if entry is None:
            raise UnknownAction(
                f"unknown action {name!r}; expected one of: {', '.join(self.names())}"
            )
        factory = _resolve(name, entry.factory)
        action = factory(context)
        if getattr(action, "name", None) != name:
            raise TypeError(
                f"factory of {name!r} built an action named {getattr(action, 'name', None)!r}"
            )
        return action


def _resolve(name: str, factory: ActionFactory | str) -> ActionFactory:
    if not isinstance(factory, str):
        return factory
    module_name, _, attribute = factory.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and module_name.startswith(exc.name):
            raise ActionDisabled(f"action {name!r} is not part of this build ({factory})") from None
        raise
    resolved: ActionFactory = getattr(module, attribute)
    return resolved


def _echo(_context: ActionContext) -> Action[Any]:
    return EchoAction()


def _whiteboard(context: ActionContext) -> Action[Any]:
    from handlers.whiteboard.action import build_whiteboard_action, session_links
    from handlers.whiteboard.tokens import TokenConfigError

    settings = context.settings
    try:
        return build_whiteboard_action(
            settings,
            context.rules.whiteboard,
            links_lookup=session_links(context.table(settings.topics.sessions)),
            clock=context.clock,
        )
    except TokenConfigError as exc:
        raise ActionDisabled(f"whiteboard: {exc}") from None


def default_registry() -> ActionRegistry:
    """restart, whiteboard, notify (default set) and echo (only when named)."""
    registry = ActionRegistry()
    registry.register("restart", "handlers.recording.restart_setup:create_action")
    registry.register("whiteboard", _whiteboard)
    registry.register("notify", "handlers.notify.action:create_action")
    registry.register(ECHO, _echo, default=False)
    return registry
