"""``agora-events config check``: every problem of a rules file and environment, by path.

The handlers refuse a bad configuration at start-up one error at a time; this check lists
them all before a deploy (usable in CI: exit 0 or 2). It parses the file the way the
handlers do (:mod:`handlers.config`), then checks what the schema cannot: recording
profiles against Agora's documented request constraints, references that must resolve,
alert sinks and event types, and whether each action named can be built from the
environment. Messages never carry a resolved ``${NAME}`` value.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from handlers.config import RulesConfig
from webhook.shared.events import EVENT_TYPES

_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True, slots=True)
class Problem:
    """Where (``path``: a rules-file key path, or an environment variable) and what."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


def loc_path(loc: Sequence[str | int]) -> str:
    """``('recording', 'profiles', 0, 'mode')`` -> ``recording.profiles[0].mode``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top)"


class _Resolver:
    """``${NAME}`` substitution that records unset variables instead of stopping at the
    first, and remembers the values it filled in (to keep them out of messages)."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.missing: list[Problem] = []
        self.used: dict[str, str] = {}

    def resolve(self, value: Any, where: list[str | int]) -> Any:
        if isinstance(value, str):

            def replace(match: re.Match[str]) -> str:
                name = match.group(1)
                if name not in self.env:
                    self.missing.append(
                        Problem(loc_path(where), f"environment variable {name} is not set")
                    )
                    return match.group(0)
                self.used[name] = self.env[name]
                return self.env[name]

            return _PLACEHOLDER.sub(replace, value)
        if isinstance(value, dict):
            return {k: self.resolve(v, [*where, k]) for k, v in value.items()}
        if isinstance(value, list):
            return [self.resolve(v, [*where, i]) for i, v in enumerate(value)]
        return value

    def scrub(self, text: str) -> str:
        for name, secret in self.used.items():
            if len(secret) >= 4:
                text = text.replace(secret, "${" + name + "}")
        return text


def check_rules_text(
    text: str, env: Mapping[str, str]
) -> tuple[RulesConfig | None, list[Problem]]:
    """The rules file's problems; the parsed configuration when the schema accepts it."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        return None, [Problem("(file)", f"not valid TOML: {exc}")]
    resolver = _Resolver(env)
    resolved = resolver.resolve(raw, [])
    problems = list(resolver.missing)
    # Section by section, so a mistake in one does not hide the others' problems.
    sections: dict[str, Any] = {}
    for name in resolved:
        if name not in RulesConfig.model_fields:
            known = ", ".join(RulesConfig.model_fields)
            problems.append(Problem(name, f"unknown section; expected one of {known}"))
    for name, spec in RulesConfig.model_fields.items():
        model = spec.annotation
        if name not in resolved or not isinstance(model, type):
            continue
        try:
            sections[name] = model.model_validate(resolved[name])
        except ValidationError as exc:
            for error in exc.errors(include_input=False, include_url=False):
                message = error["msg"].removeprefix("Value error, ")
                problems.append(Problem(loc_path((name, *error["loc"])),
                                        resolver.scrub(message)))
    config = RulesConfig(**sections)
    problems.extend(semantic_problems(config, resolver.scrub))
    if len(sections) < len([n for n in resolved if n in RulesConfig.model_fields]):
        return None, problems
    return config, problems


def semantic_problems(config: RulesConfig, scrub: Any = str) -> list[Problem]:
    """What the schema cannot see: Agora's request rules, duplicates, unknown events."""
    return [
        *_profile_problems(config, scrub),
        *_whiteboard_problems(config),
        *_alert_problems(config),
    ]


def _duplicates(names: Iterable[str]) -> set[str]:
    seen: set[str] = set()
    twice: set[str] = set()
    for name in names:
        (twice if name in seen else seen).add(name)
    return twice


def _profile_problems(config: RulesConfig, scrub: Any) -> list[Problem]:
    from handlers.recording.validation import acquire_problems, start_problems

    problems: list[Problem] = []
    profiles = config.recording.profiles
    twice = _duplicates(p.name for p in profiles)
    for i, profile in enumerate(profiles):
        base = f"recording.profiles[{i}]"
        if profile.name in twice:
            problems.append(Problem(f"{base}.name", f"duplicate profile name {profile.name!r}"))
        # A real channel name stands in for the profile's cname patterns.
        for found in start_problems(profile.mode, profile.client_request, uid=profile.uid):
            path = found.path.replace("clientRequest", f"{base}.client_request", 1)
            path = f"{base}.uid" if found.path == "uid" else path
            problems.append(Problem(path, scrub(found.message)))
        for found in start_problems(profile.mode, {}, uid=profile.backup_uid):
            if found.path == "uid":
                problems.append(Problem(f"{base}.backup_uid", scrub(found.message)))
        for found in acquire_problems(
            "config_check", profile.uid, profile.acquire_client_request, mode=profile.mode
        ):
            if found.path in ("cname", "uid") or found.path.startswith(
                "clientRequest.startParameter"
            ):
                continue  # cname is a pattern here; uid and the start request checked above
            path = found.path.replace("clientRequest", f"{base}.acquire_client_request", 1)
            problems.append(Problem(path, scrub(found.message)))
    return problems


def _whiteboard_problems(config: RulesConfig) -> list[Problem]:
    problems = []
    for i, link in enumerate(config.whiteboard.links):
        if not link.cnames:
            problems.append(Problem(f"whiteboard.links[{i}].cnames", "matches no channel"))
        for j, event in enumerate(link.on_events):
            if event not in EVENT_TYPES:
                problems.append(
                    Problem(f"whiteboard.links[{i}].on_events[{j}]", _unknown_event(event))
                )
    return problems


def _alert_problems(config: RulesConfig) -> list[Problem]:
    problems = []
    for name in sorted(_duplicates(s.name for s in config.alerts.sinks)):
        problems.append(Problem("alerts.sinks", f"duplicate sink name {name!r}"))
    for i, rule in enumerate(config.alerts.rules):
        for j, event in enumerate(rule.events):
            if event not in EVENT_TYPES:
                problems.append(Problem(f"alerts.rules[{i}].events[{j}]", _unknown_event(event)))
        if not rule.events and not rule.outcomes:
            problems.append(
                Problem(f"alerts.rules[{i}]", "names neither events nor outcomes: never fires")
            )
    return problems


def _unknown_event(event: int) -> str:
    known = ", ".join(str(t) for t in sorted(EVENT_TYPES))
    return f"unknown event type {event}; expected one of {known}"


def check_rules_file(path: Path, env: Mapping[str, str]) -> tuple[RulesConfig | None,
                                                                   list[Problem]]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        return None, [Problem(str(path), f"cannot read rules file: {exc.strerror}")]
    return check_rules_text(text, env)


def check_actions(
    names: Sequence[str], settings: Any, rules: RulesConfig
) -> tuple[list[Problem], list[str]]:
    """Build each action as ``agora-events handlers`` would (no broker needed): problems for
    the ones that cannot run, notes for default actions the configuration disables."""
    from handlers.action_catalog import (
        ActionContext,
        ActionDisabled,
        UnknownAction,
        default_registry,
    )

    registry = default_registry()
    explicit = bool(names)
    problems: list[Problem] = []
    notes: list[str] = []
    for name in names or registry.default_names():
        context = ActionContext(settings, rules_config=rules)
        try:
            registry.create(name, context)
        except UnknownAction as exc:
            problems.append(Problem(f"handlers.{name}", str(exc)))
        except ActionDisabled as exc:
            if explicit:
                problems.append(Problem(f"handlers.{name}", f"cannot run: {exc}"))
            else:
                notes.append(f"{name}: disabled ({exc})")
        except Exception as exc:  # noqa: BLE001 - a factory refusing its configuration
            problems.append(Problem(f"handlers.{name}", f"{type(exc).__name__}: {exc}"))
    return problems, notes


def missing_topics(existing: Iterable[str], wanted: Iterable[str]) -> list[Problem]:
    have = set(existing)
    return [
        Problem(f"topic {name}", "does not exist (agora-events topics create)")
        for name in wanted
        if name not in have
    ]
