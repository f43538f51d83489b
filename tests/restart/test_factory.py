"""``create_action``: what ``agora-events handlers`` builds, and when it refuses."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.fake_agora import FakeAgora
from support.restart_env import ENV

from handlers.config import ConfigError
from handlers.recording.restart import RestartAction, create_action
from handlers.registry import ActionContext, ActionDisabled
from handlers.settings import HandlerSettings

PROFILE = """
[[recording.profiles]]
name = "classes"
mode = "individual"
uid = "900001"
backup_uid = "900002"
[recording.profiles.client_request.storageConfig]
vendor = 1
region = 0
bucket = "rec"
accessKey = "${{S3_KEY}}"
secretKey = {secret}

[restart]
max_restarts = 5
"""


@pytest.fixture
def agora_env(monkeypatch: pytest.MonkeyPatch, fake_agora: FakeAgora, tmp_path: Path) -> Path:
    for name, value in {"AGORA_APP_ID": fake_agora.app_id,
                        "AGORA_CUSTOMER_ID": fake_agora.customer_id,
                        "AGORA_CUSTOMER_SECRET": fake_agora.customer_secret,
                        "AGORA_API_BASE": fake_agora.base_url, **ENV}.items():
        monkeypatch.setenv(name, value)
    path = tmp_path / "rules.toml"
    monkeypatch.setenv("AGORA_EVENTS_CONFIG", str(path))
    return path


def build(path: Path, secret: str) -> RestartAction:
    path.write_text(PROFILE.format(secret=secret))
    return create_action(ActionContext(HandlerSettings()))


def test_builds_with_credentials_and_keeps_references(agora_env: Path) -> None:
    action = build(agora_env, '"${S3_SECRET}"')
    try:
        assert action.name == "restart"
        assert action._rules.max_restarts == 5
        profile = action._profiles.profile_named("classes")
        assert profile is not None
        assert profile.client_request["storageConfig"]["secretKey"] == "${S3_SECRET}"
    finally:
        action._api.close()  # type: ignore[attr-defined]


def test_disabled_without_credentials(agora_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AGORA_CUSTOMER_ID")
    with pytest.raises(ActionDisabled, match="set AGORA_CUSTOMER_ID"):
        build(agora_env, '"${S3_SECRET}"')


def test_disabled_by_a_profile_storing_a_secret_in_clear(agora_env: Path) -> None:
    with pytest.raises(ActionDisabled) as caught:
        build(agora_env, '"plain-secret"')
    assert "profile 'classes'" in str(caught.value)
    assert "client_request.storageConfig.secretKey" in str(caught.value)
    assert "plain-secret" not in str(caught.value)


def test_disabled_by_a_malformed_certificate(agora_env: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGORA_APP_CERTIFICATE", "not-hex")
    with pytest.raises(ActionDisabled, match="AGORA_APP_CERTIFICATE"):
        build(agora_env, '"${S3_SECRET}"')


def test_an_unset_variable_is_a_configuration_error(agora_env: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("S3_SECRET")
    with pytest.raises(ConfigError, match="S3_SECRET is not set"):
        build(agora_env, '"${S3_SECRET}"')


def test_the_default_registry_builds_it(agora_env: Path) -> None:
    from handlers.registry import default_registry

    agora_env.write_text(PROFILE.format(secret='"${S3_SECRET}"'))
    action = default_registry().create("restart", ActionContext(HandlerSettings()))
    try:
        assert isinstance(action, RestartAction)
    finally:
        action._api.close()  # type: ignore[attr-defined]
