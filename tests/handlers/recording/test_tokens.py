"""Recording-bot RTC tokens: agoraiotools pinned to Agora's published AccessToken2 vectors
(AgoraIO/Tools, python3/test/AccessToken2Test.py), round trips of build_recording_token
decoded with agoraiotools, and refusals."""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pytest
from pydantic import SecretStr

from handlers.recording.tokens import MAX_PRIVILEGE_S, TokenError, build_recording_token

# Quiet for the same reason as in handlers/recording/tokens.py (deprecated modules that the
# package's __init__ imports).
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from agoraiotools.AccessToken2 import (  # type: ignore[import-untyped]
        AccessToken,
        ServiceRtc,
    )

APP_ID = "970CA35de60c44645bbae8a215061b33"
CERTIFICATE = "5CFd2fd1755d40ecb72977518be15d3b"
CHANNEL = "7d72365eb983485397e3e3f9d460bdda"
UID = 2882341273
EXPIRE = 600
ISSUE_TS = 1111111
SALT = 1
JOIN = ServiceRtc.kPrivilegeJoinChannel

# Published expected tokens (test_service_rtc, test_service_rtc_account, test_service_rtc_uid_0).
VECTOR_UID = (
    "007eJxTYBBbsMMnKq7p9Hf/HcIX5kce9b518kCiQgSr5Zrp4X1Tu6UUGCzNDZwdjU1TUs0Mkk1MzExMk5ISUy0SjQxNDcw"
    "Mk4yN3b8IMEQwMTAwMoAwBIL4CgzmKeZGxmamqUmWFsYmFqbGluapxqnGaZYpJmYGSSkpiVwMRhYWRsYmhkbmxgDCaiTj"
)
VECTOR_UID_0 = (
    "007eJxTYLhzZP08Lxa1Pg57+TcXb/3cZ3wi4V6kbpbOog0G2dOYk20UGCzNDZwdjU1TUs0Mkk1MzExMk5ISUy0SjQxNDcw"
    "Mk4yN3b8IMEQwMTAwMoAwBIL4CgzmKeZGxmamqUmWFsYmFqbGluapxqnGaZYpJmYGSSkpiQwMADacImo="
)


@dataclass(frozen=True, slots=True)
class Decoded:
    """Every field of a one-service RTC AccessToken2 except the signature."""

    app_id: str
    issue_ts: int
    expire: int
    salt: int
    channel: str
    uid: int | str  # decoded: always the string form ("" = any uid)
    privileges: Mapping[int, int]


def _fixed_token(fields: Decoded, certificate: str) -> str:
    """Build with agoraiotools and a pinned salt, as its own tests do."""
    token = AccessToken(fields.app_id, certificate, issue_ts=fields.issue_ts, expire=fields.expire)
    token._AccessToken__salt = fields.salt
    rtc = ServiceRtc(fields.channel, fields.uid)
    for privilege, expire in fields.privileges.items():
        rtc.add_privilege(privilege, expire)
    token.add_service(rtc)
    built: str = token.build()
    return built


def _decode(token: str) -> Decoded:
    parsed: Any = AccessToken()
    assert parsed.from_string(token)
    services = parsed._AccessToken__service
    assert set(services) == {ServiceRtc.kServiceType}, "only the RTC service"
    rtc = services[ServiceRtc.kServiceType]
    return Decoded(
        app_id=parsed._AccessToken__app_id.decode(),
        issue_ts=parsed._AccessToken__issue_ts,
        expire=parsed._AccessToken__expire,
        salt=parsed._AccessToken__salt,
        channel=rtc._ServiceRtc__channel_name.decode(),
        uid=rtc._ServiceRtc__uid.decode(),
        privileges=dict(rtc._Service__privileges),
    )


def _signed_with(token: str, certificate: str) -> bool:
    """Whether rebuilding the decoded fields with ``certificate`` gives ``token`` back."""
    return _fixed_token(_decode(token), certificate) == token


def _published(uid: int | str) -> Decoded:
    return Decoded(APP_ID, ISSUE_TS, EXPIRE, SALT, CHANNEL, uid, {JOIN: EXPIRE})


@pytest.mark.parametrize(("uid", "expected"), [
    (UID, VECTOR_UID), (str(UID), VECTOR_UID), (0, VECTOR_UID_0)])
def test_agoraiotools_matches_the_published_vectors(uid: int | str, expected: str) -> None:
    assert _fixed_token(_published(uid), CERTIFICATE) == expected


def test_decoding_the_published_vectors() -> None:
    assert _decode(VECTOR_UID) == _published(str(UID))
    assert _decode(VECTOR_UID_0) == _published("")
    assert _signed_with(VECTOR_UID, CERTIFICATE)
    assert not _signed_with(VECTOR_UID, "0" * 32)


def test_recording_token_round_trip() -> None:
    token = build_recording_token(APP_ID, SecretStr(CERTIFICATE), channel="class-1",
                                  uid="900002", valid_for_s=6 * 3600, issue_ts=1_700_000_000)
    decoded = _decode(token)
    assert (decoded.app_id, decoded.channel, decoded.uid) == (APP_ID, "class-1", "900002")
    assert dict(decoded.privileges) == {JOIN: 6 * 3600}, "join only, no publish privileges"
    assert (decoded.issue_ts, decoded.expire) == (1_700_000_000, 6 * 3600)
    assert 1 <= decoded.salt <= 99_999_999
    assert _signed_with(token, CERTIFICATE)
    assert not _signed_with(token, "0" * 32)


@pytest.mark.parametrize(("uid", "encoded"), [(900002, "900002"), ("900002", "900002"), (0, "")])
def test_uid_forms(uid: int | str, encoded: str) -> None:
    token = build_recording_token(APP_ID, CERTIFICATE, channel="c", uid=uid,
                                  valid_for_s=MAX_PRIVILEGE_S, issue_ts=1_700_000_000)
    assert _decode(token).uid == encoded
    assert _decode(token).privileges == {JOIN: MAX_PRIVILEGE_S}


def test_random_salt_and_current_time_by_default() -> None:
    before = int(time.time())
    first = build_recording_token(APP_ID, CERTIFICATE, channel="c", uid=1, valid_for_s=60)
    second = build_recording_token(APP_ID, CERTIFICATE, channel="c", uid=1, valid_for_s=60)
    after = int(time.time())
    assert first != second, "salts differ"
    assert before <= _decode(first).issue_ts <= after
    assert _signed_with(first, CERTIFICATE)


def test_bad_inputs_name_the_argument_not_the_certificate() -> None:
    with pytest.raises(TokenError, match="app_id"):
        build_recording_token("not-hex", CERTIFICATE, channel="c", uid=1, valid_for_s=60)
    with pytest.raises(TokenError, match="app_certificate") as caught:
        build_recording_token(APP_ID, SecretStr("SECRET-but-short"), channel="c", uid=1,
                              valid_for_s=60)
    assert "SECRET-but-short" not in str(caught.value)
    for valid_for_s in (MAX_PRIVILEGE_S + 1, 0):
        with pytest.raises(TokenError, match="valid_for_s"):
            build_recording_token(APP_ID, CERTIFICATE, channel="c", uid=1,
                                  valid_for_s=valid_for_s)
    for uid in (True, -1, 2**32):
        with pytest.raises(TokenError, match="uid"):
            build_recording_token(APP_ID, CERTIFICATE, channel="c", uid=uid, valid_for_s=60)
    for issue_ts in (0, 2**32):
        with pytest.raises(TokenError, match="issue_ts"):
            build_recording_token(APP_ID, CERTIFICATE, channel="c", uid=1, valid_for_s=60,
                                  issue_ts=issue_ts)
