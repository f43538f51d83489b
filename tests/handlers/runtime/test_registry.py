from __future__ import annotations

from typing import Any

import pytest

from handlers.action_catalog import (
    ActionContext,
    ActionDisabled,
    ActionRegistry,
    UnknownAction,
    default_registry,
)
from handlers.echo import EchoAction
from handlers.settings import HandlerSettings


@pytest.fixture
def context() -> ActionContext:
    return ActionContext(HandlerSettings())


def test_the_default_set_and_echo(context: ActionContext) -> None:
    registry = default_registry()
    assert registry.default_names() == ["notify", "restart", "whiteboard"]
    assert registry.names() == ["echo", "notify", "restart", "whiteboard"]
    assert isinstance(registry.create("echo", context), EchoAction)


def test_unknown_names_list_the_known_ones(context: ActionContext) -> None:
    with pytest.raises(UnknownAction, match="unknown action 'x'; expected one of: echo, "):
        default_registry().create("x", context)


def test_a_factory_module_that_is_missing_disables_the_action(context: ActionContext) -> None:
    registry = ActionRegistry()
    registry.register("later", "handlers.not_written_yet:create_action")
    with pytest.raises(ActionDisabled, match="'later' is not part of this build"):
        registry.create("later", context)


def test_factories_plug_in_and_must_build_the_named_action(context: ActionContext) -> None:
    registry = ActionRegistry()
    registry.register("mine", lambda ctx: EchoAction(), default=False)
    with pytest.raises(TypeError, match="factory of 'mine' built an action named 'echo'"):
        registry.create("mine", context)
    assert registry.default_names() == []


def test_a_lazy_target_resolves_to_a_factory(context: ActionContext) -> None:
    registry = ActionRegistry()
    registry.register("slow", "support.runtime_helpers:slow_echo_factory")
    action: Any = registry.create("slow", context)
    assert action.name == "slow"


def test_tables_are_shared_per_topic(context: ActionContext) -> None:
    first = context.table("agora.recording.sessions")
    assert context.table("agora.recording.sessions") is first
    assert list(context.tables) == ["agora.recording.sessions"]
