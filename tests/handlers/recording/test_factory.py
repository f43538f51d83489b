"""``create_action``: what ``agora-events handlers`` builds, and when it refuses."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx
import pytest
from support.rules_files import classes_profile

from handlers.action_catalog import ActionContext, ActionDisabled, default_registry
from handlers.cli import build_runners
from handlers.config import ConfigError
from handlers.recording.commands import Failure, GiveUpCommand
from handlers.recording.restart import RestartAction
from handlers.recording.restart_setup import create_action
from handlers.runtime.health import HealthServer, Liveness
from handlers.runtime.metrics import RuntimeMetrics
from handlers.settings import HandlerSettings
from handlers.testing.agora_recordings import ENV, registered
from handlers.testing.fake_agora import FakeAgora

RESTART = """
[restart]
max_restarts = 5
"""


def rules(secret: str = "${S3_SECRET}") -> str:
    return classes_profile(secret_key=secret) + RESTART


@pytest.fixture
def agora_env(monkeypatch: pytest.MonkeyPatch, fake_agora: FakeAgora, tmp_path: Path) -> Path:
    for name, value in {**fake_agora.env(), **ENV}.items():
        monkeypatch.setenv(name, value)
    path = tmp_path / "rules.toml"
    monkeypatch.setenv("AGORA_EVENTS_CONFIG", str(path))
    return path


def build(path: Path, secret: str) -> RestartAction:
    path.write_text(rules(secret))
    return create_action(ActionContext(HandlerSettings()))


def test_builds_with_credentials_and_keeps_references(agora_env: Path) -> None:
    action = build(agora_env, "${S3_SECRET}")
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
        build(agora_env, "${S3_SECRET}")


def test_disabled_by_a_profile_storing_a_secret_in_clear(agora_env: Path) -> None:
    with pytest.raises(ActionDisabled) as caught:
        build(agora_env, "plain-secret")
    assert "profile 'classes'" in str(caught.value)
    assert "client_request.storageConfig.secretKey" in str(caught.value)
    assert "plain-secret" not in str(caught.value)


def test_disabled_by_a_malformed_certificate(agora_env: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGORA_APP_CERTIFICATE", "not-hex")
    with pytest.raises(ActionDisabled, match="AGORA_APP_CERTIFICATE"):
        build(agora_env, "${S3_SECRET}")


def test_an_unset_variable_is_a_configuration_error(agora_env: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("S3_SECRET")
    with pytest.raises(ConfigError, match="S3_SECRET is not set"):
        build(agora_env, "${S3_SECRET}")


def test_the_default_registry_builds_it(agora_env: Path) -> None:
    agora_env.write_text(rules())
    action = default_registry().create("restart", ActionContext(HandlerSettings()))
    try:
        assert isinstance(action, RestartAction)
    finally:
        action._api.close()  # type: ignore[attr-defined]


def scrape(port: int) -> dict[str, float]:
    """The ``agora_restart_gave_up_total`` samples of the process's ``/metrics``."""
    body = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    samples = {}
    for line in body.splitlines():
        if line.startswith("agora_restart_gave_up_total{"):
            name, value = line.rsplit(" ", 1)
            samples[name.split('reason="')[1].rstrip('"}')] = float(value)
    return samples


def test_give_ups_are_served_on_the_handler_process_metrics(agora_env: Path) -> None:
    agora_env.write_text(rules())
    metrics = RuntimeMetrics()
    liveness = Liveness(60.0)
    (runner,) = build_runners(HandlerSettings(), default_registry(), ("restart",),
                              instance_id="t", metrics=metrics, liveness=liveness,
                              stop=threading.Event())
    action = runner.action
    assert isinstance(action, RestartAction)
    server = HealthServer(metrics.registry, liveness, "127.0.0.1", 0).start()
    try:
        # Every reason is exported at 0 before the first give-up, so increase() sees it.
        assert scrape(server.port) == {"max_restarts": 0.0, "refused": 0.0,
                                       "uid_conflict": 0.0, "invalid_request": 0.0}
        session = registered("class-1", sid="sid-1")
        failure = Failure(cname="class-1", sid="sid-1", uid=None, notice_id="n-1",
                          event_type=11, event_ms=0, reason="session_exit exitStatus 1")
        effects = action.run(GiveUpCommand(failure, session, recent_restarts_ms=(1, 2)))
        assert [dict(o.headers)["outcome"] for o in effects.outputs
                if o.topic == HandlerSettings().topics.actions] == ["gave_up"]
        assert scrape(server.port)["max_restarts"] == 1.0
    finally:
        server.close()
        action._api.close()  # type: ignore[attr-defined]


def test_a_profile_agora_would_refuse_is_found_at_start_up(agora_env: Path) -> None:
    agora_env.write_text(rules().replace(
        'subscribeUidGroup = 0', 'subscribeUidGroup = 9'))
    with pytest.raises(ActionDisabled) as caught:
        create_action(ActionContext(HandlerSettings()))
    assert "profile 'classes'" in str(caught.value)
    assert "recordingConfig.subscribeUidGroup" in str(caught.value)
    assert ENV["S3_SECRET"] not in str(caught.value)


def test_a_profile_referring_to_the_service_credentials_is_refused(agora_env: Path) -> None:
    with pytest.raises((ActionDisabled, ConfigError)) as caught:
        build(agora_env, "${AGORA_CUSTOMER_SECRET}")
    assert "storageConfig.secretKey" in str(caught.value)
    assert "service's own credentials" in str(caught.value)


def test_a_profile_must_name_its_channels(agora_env: Path) -> None:
    agora_env.write_text(rules().replace(
        'cnames = ["class-*"]\n', ''))
    with pytest.raises(ConfigError, match=r"recording\.profiles\.0\.cnames"):
        create_action(ActionContext(HandlerSettings()))


def test_a_profile_may_not_use_the_health_check_uid(agora_env: Path) -> None:
    agora_env.write_text(rules().replace(
        'backup_uid = "900002"', 'backup_uid = "12121212"'))
    with pytest.raises(ActionDisabled, match="backup_uid: 12121212 is the uid of the console"):
        create_action(ActionContext(HandlerSettings()))
