"""The TOML rules file (``AGORA_EVENTS_CONFIG``): recording profiles, restart limits,
whiteboard links, alert sinks and rules.

Users write this file by hand, so errors name the key and what was expected. ``${NAME}``
in any string is replaced by the environment variable ``NAME`` at load time; a missing
variable is an error that names the variable, never its value.
"""

from __future__ import annotations

import fnmatch
import os
import tomllib
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from handlers.references import RULES_FILE, ReferenceProblem, resolve
from handlers.urls import check_http_url


class ConfigError(Exception):
    """The rules file is missing, not TOML, refers to an unset variable, or fails the schema."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _matches(patterns: list[str], cname: str) -> bool:
    return any(fnmatch.fnmatchcase(cname, p) for p in patterns)


class RecordingProfile(_Strict):
    name: str
    # No default: a profile names the channels it covers (a catch-all would also match
    # the console's health-check channel and every channel of other applications).
    cnames: list[str] = Field(min_length=1)
    mode: Literal["individual", "mix", "web"]
    uid: str
    backup_uid: str
    client_request: dict[str, Any] = Field(default_factory=dict)
    acquire_client_request: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _distinct_uids(self) -> RecordingProfile:
        if self.uid == self.backup_uid:
            raise ValueError("uid and backup_uid must differ (restarts alternate between them)")
        return self

    def matches(self, cname: str) -> bool:
        return _matches(self.cnames, cname)


class RecordingRules(_Strict):
    profiles: list[RecordingProfile] = Field(default_factory=list)
    allow_references: list[str] = Field(default_factory=list)
    """Variables that registry records may reference (besides those the profiles use)."""
    # Cloud Recording REST calls per second for this process. Agora's limit is per App ID
    # across every instance: with N instances, give each the App ID's QPS / N.
    qps: float = Field(default=10.0, gt=0)

    def profile_for(self, cname: str) -> RecordingProfile | None:
        """First profile whose cname patterns match, as the rules file documents."""
        return next((p for p in self.profiles if p.matches(cname)), None)

    def profile_named(self, name: str) -> RecordingProfile | None:
        return next((p for p in self.profiles if p.name == name), None)


class RestartRules(_Strict):
    max_restarts: int = Field(default=3, ge=0)
    window_s: int = Field(default=600, gt=0)
    failover_grace_s: int = Field(default=90, ge=0)


class ReconcilerRules(_Strict):
    interval_s: int = Field(default=120, ge=0)
    retain_finished_s: int = Field(default=604_800, ge=0)


class WhiteboardLink(_Strict):
    cnames: list[str]
    room_uuid: str
    path: str = "/"
    width: int = Field(default=1280, gt=0)
    height: int = Field(default=720, gt=0)
    region: str | None = None
    on_events: list[int] = Field(default_factory=lambda: [11])

    def matches(self, cname: str) -> bool:
        return _matches(self.cnames, cname)


class WhiteboardRules(_Strict):
    links: list[WhiteboardLink] = Field(default_factory=list)

    def link_for(self, cname: str) -> WhiteboardLink | None:
        return next((link for link in self.links if link.matches(cname)), None)


class AlertSink(_Strict):
    name: str
    kind: Literal["webhook", "slack", "pagerduty"]
    url: str | None = None
    secret: str | None = None
    routing_key: str | None = None
    timeout_s: float = Field(default=5.0, gt=0)

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str | None) -> str | None:
        return None if url is None else check_http_url(url)

    @model_validator(mode="after")
    def _kind_fields(self) -> AlertSink:
        if self.kind in ("webhook", "slack") and not self.url:
            raise ValueError(f"sink {self.name!r}: kind {self.kind!r} needs url")
        if self.kind == "pagerduty" and not self.routing_key:
            raise ValueError(f"sink {self.name!r}: kind 'pagerduty' needs routing_key")
        return self


class AlertRule(_Strict):
    name: str
    events: list[int] = Field(default_factory=list)
    outcomes: list[str] = Field(default_factory=list)
    where: dict[str, Any] = Field(default_factory=dict)
    sinks: list[str]
    severity: Literal["critical", "error", "warning", "info"] = "error"


class AlertRules(_Strict):
    sinks: list[AlertSink] = Field(default_factory=list)
    rules: list[AlertRule] = Field(default_factory=list)

    @model_validator(mode="after")
    def _known_sinks(self) -> AlertRules:
        names = {s.name for s in self.sinks}
        for rule in self.rules:
            unknown = sorted(set(rule.sinks) - names)
            if unknown:
                raise ValueError(f"alert rule {rule.name!r} names unknown sinks {unknown}")
        return self


class RulesConfig(_Strict):
    recording: RecordingRules = Field(default_factory=RecordingRules)
    restart: RestartRules = Field(default_factory=RestartRules)
    reconciler: ReconcilerRules = Field(default_factory=ReconcilerRules)
    whiteboard: WhiteboardRules = Field(default_factory=WhiteboardRules)
    alerts: AlertRules = Field(default_factory=AlertRules)


def _substitute(value: Any, env: Mapping[str, str], where: str) -> Any:
    # The project's one resolver (handlers.references); never the service's credentials.
    try:
        return resolve(value, env, where, RULES_FILE)
    except ReferenceProblem as exc:
        raise ConfigError(str(exc)) from None


def parse_rules(text: str, env: Mapping[str, str], source: str = "<rules>",
                sections: Collection[str] | None = None) -> RulesConfig:
    """Parse TOML text into :class:`RulesConfig`; raises :class:`ConfigError`.

    ``sections``: only these top-level tables are read (the others keep their defaults)."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    if sections is not None:
        raw = {name: table for name, table in raw.items() if name in sections}
    resolved = _substitute(raw, env, source)
    try:
        return RulesConfig.model_validate(resolved)
    except ValidationError as exc:
        # Report locations and messages only: input values may hold resolved secrets.
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(top)'}: {err['msg']}"
            for err in exc.errors(include_input=False, include_url=False)
        )
        raise ConfigError(f"{source}: {problems}") from None


def load_rules(path: Path | None, env: Mapping[str, str] | None = None, *,
               sections: Collection[str] | None = None) -> RulesConfig:
    """Load the rules file, or the built-in defaults when no path is configured;
    ``sections`` as in :func:`parse_rules`."""
    if path is None:
        return RulesConfig()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read rules file: {exc.strerror}") from None
    return parse_rules(text, os.environ if env is None else env, str(path), sections)
