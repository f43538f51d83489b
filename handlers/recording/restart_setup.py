"""Building the restart action for ``agora-events handlers`` from the settings and the
rules file: the Cloud Recording client, the session registry and a check of every
profile and of the App Certificate, so a misconfiguration disables the action at start
rather than failing the first restart.
"""

from __future__ import annotations

import os

from handlers.action_catalog import ActionContext, ActionDisabled
from handlers.recording.client import CloudRecordingClient, RecordingApi
from handlers.recording.errors import RecordingNotConfigured
from handlers.recording.metrics import RestartMetrics
from handlers.recording.restart import RestartAction
from handlers.recording.session_registry import (
    SessionWriter,
    TableSessions,
    allowed_references,
    check_profile,
    raw_rules,
)
from handlers.recording.tokens import TokenError, build_recording_token


def create_action(context: ActionContext) -> RestartAction:
    """The restart action of ``agora-events handlers``. Raises ``ActionDisabled`` without
    Cloud Recording credentials, with an unusable App Certificate, or with a profile that
    stores a credential in clear (the registry would have to store it)."""
    settings = context.settings
    try:
        client = CloudRecordingClient.from_settings(settings.agora)
    except RecordingNotConfigured as exc:
        raise ActionDisabled(f"restart: {exc}") from None
    try:
        return _build(context, client)
    except BaseException:
        client.close()
        raise


def _build(context: ActionContext, client: RecordingApi) -> RestartAction:
    settings = context.settings
    assert settings.agora.app_id is not None  # checked by the client's from_settings
    rules = context.rules  # resolves references: fails early on an unset variable
    profiles = raw_rules(settings.config_path).recording
    certificate = settings.agora.app_certificate
    allowed = allowed_references(profiles)
    for profile in profiles.profiles:
        # The same checks as a real start, with references left unresolved.
        try:
            check_profile(profile, env=os.environ, allowed=allowed,
                          with_token=certificate is not None)
        except ValueError as exc:
            raise ActionDisabled(f"restart: profile {profile.name!r}: {exc}") from None
    if certificate is not None:
        try:
            build_recording_token(settings.agora.app_id, certificate, channel="check",
                                  uid="1", valid_for_s=60)
        except TokenError as exc:
            raise ActionDisabled(f"restart: AGORA_APP_CERTIFICATE: {exc}") from None
    topics = settings.topics
    client_config = settings.kafka.client_config()
    sessions = TableSessions(context.table(topics.sessions),
                             lambda: SessionWriter(client_config, topics.sessions, warm=True))
    return RestartAction(
        client, sessions=sessions, profiles=profiles, rules=rules.restart, topics=topics,
        app_id=settings.agora.app_id, app_certificate=certificate, clock=context.clock,
        metrics=RestartMetrics(context.metrics_registry),
    )
