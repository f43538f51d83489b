"""Requests from registry records and profiles: ``${NAME}`` references checked against the
request policy (:mod:`handlers.references`), validated with their references unresolved,
then resolved in memory for one send; profiles checked at start-up the same way."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from handlers.config import RecordingProfile, RecordingRules, RulesConfig, load_rules
from handlers.recording.schema import SessionRecord, utc_from_ms
from handlers.recording.validation import validate_acquire, validate_start
from handlers.references import (
    ReferenceProblem,
    check,
    names,
    request_policy,
    resolve,
)

references = names
"""The environment variable names referenced anywhere in a JSON value."""


def resolve_references(value: Any, env: Mapping[str, str], where: str = "clientRequest",
                       allowed: frozenset[str] | set[str] | None = None) -> Any:
    """A copy of a request's JSON value with every ``${NAME}`` replaced by ``env[NAME]``
    (:func:`handlers.references.resolve` under the request policy: only ``allowed``
    names, only as the whole value of credential fields; ``allowed`` None: the names the
    value itself uses, for values the operator wrote).

    Call it right before sending; never store or log the result. Raises
    :class:`MissingReference` or :class:`ReferenceRefused` naming the variable and the
    field, never a value."""
    policy = request_policy(names(value) if allowed is None else allowed)
    return resolve(value, env, where, policy)


def allowed_references(rules: RecordingRules) -> frozenset[str]:
    """The variables registry records may reference: ``[recording]
    allow_references`` plus every name the profiles use (the operator wrote them)."""
    used: set[str] = set(rules.allow_references)
    for profile in rules.profiles:
        used |= names(profile.client_request) | names(profile.acquire_client_request)
    return frozenset(used)


class KeepReferences(Mapping[str, str]):
    """An environment in which every variable "is set" to its own reference.

    ``handlers.config.parse_rules(text, KeepReferences())`` loads the rules file with
    ``${NAME}`` left as written: what profiles give to the registry."""

    def __getitem__(self, key: str) -> str:
        return "${" + key + "}"

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str)

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def raw_rules(path: Path | None) -> RulesConfig:
    """The rules file's ``[recording]`` table with ``${NAME}`` references kept as written
    (profiles as the registry stores them). Raises ``ConfigError``; the built-in defaults
    without a path."""
    # Only the recording table: references elsewhere (a sink URL given as ${NAME}) are
    # checked where they are resolved.
    return load_rules(path, KeepReferences(), sections=("recording",))


def check_profile(profile: RecordingProfile, *, env: Mapping[str, str],
                  allowed: frozenset[str] | set[str], with_token: bool) -> None:
    """What a real start from ``profile`` checks, without resolving anything: the record
    shape, every reference (allowed, set in ``env``), and the start and acquire requests
    with their references and a token placeholder. Raises ``ValueError`` naming the
    field (run at start-up, so a profile Agora would refuse is found before a restart
    needs it)."""
    # signals.HEALTH_CHECK_UID: callbacks with it are never acted on, so a recorder using
    # it could never be restarted.
    for name, uid in (("uid", profile.uid), ("backup_uid", profile.backup_uid)):
        if uid == "12121212":
            raise ValueError(f"{name}: 12121212 is the uid of the console's health check, "
                             "whose callbacks are never acted on; choose another")
    record = SessionRecord(
        cname="profile-check", mode=profile.mode, profile=profile.name, task=profile.name,
        uid=profile.uid, backup_uid=profile.backup_uid, status="running",
        client_request=profile.client_request,
        acquire_client_request=profile.acquire_client_request, updated_at=utc_from_ms(0))
    policy = request_policy(allowed)
    try:
        check(record.client_request, "client_request", policy, env)
        check(record.acquire_client_request, "acquire_client_request", policy, env)
    except ReferenceProblem as exc:
        raise ValueError(str(exc)) from None
    request, acquire = _completed(record, dict(record.client_request),
                                  dict(record.acquire_client_request),
                                  TOKEN_PLACEHOLDER if with_token else None)
    for uid in (profile.uid, profile.backup_uid):
        validate_start(record.mode, request, cname=record.cname, uid=uid)
        validate_acquire(record.cname, uid, acquire, mode=record.mode)


TOKEN_PLACEHOLDER = "${RTC_TOKEN}"  # noqa: S105 - a placeholder, not a credential
"""Stands for the minted RTC token while a request is validated."""


def prepare_requests(
    record: SessionRecord,
    uid: str,
    *,
    env: Mapping[str, str],
    app_id: str,
    certificate: SecretStr | None,
    allowed: frozenset[str] | set[str],
    token_valid_s: int = 24 * 3600,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The start and acquire clientRequests to send for ``record`` with ``uid``:
    references resolved from ``env`` (only ``allowed`` names, only as whole credential
    values, :mod:`handlers.references`), a fresh RTC token when ``certificate`` is set,
    ``scene`` 1 for web mode, ``startParameter`` (if used) equal to the start request.
    Keep the result in memory only.

    Validation runs on the request with its references and a token placeholder, before
    anything is resolved, so no error can carry a secret. Raises
    :class:`ReferenceProblem`, ``tokens.TokenError`` or ``validation.RequestInvalid``
    (each names the field, never a secret value)."""
    from handlers.recording.tokens import build_recording_token

    policy = request_policy(allowed)
    check(record.client_request, "client_request", policy, env)
    check(record.acquire_client_request, "acquire_client_request", policy, env)
    request = _completed(record, dict(record.client_request), dict(record.acquire_client_request),
                         TOKEN_PLACEHOLDER if certificate is not None else None)
    validate_start(record.mode, request[0], cname=record.cname, uid=uid)
    validate_acquire(record.cname, uid, request[1], mode=record.mode)
    token = build_recording_token(app_id, certificate, channel=record.cname, uid=uid,
                                  valid_for_s=token_valid_s) if certificate is not None else None
    return _completed(
        record, resolve(record.client_request, env, "client_request", policy),
        resolve(record.acquire_client_request, env, "acquire_client_request", policy), token)


def _completed(record: SessionRecord, request: dict[str, Any], acquire: dict[str, Any],
               token: str | None) -> tuple[dict[str, Any], dict[str, Any]]:
    if token is not None:
        request["token"] = token
    if record.mode == "web":
        acquire.setdefault("scene", 1)
    if "startParameter" in acquire:
        acquire["startParameter"] = request  # Agora: must equal what start sends
    return request, acquire


