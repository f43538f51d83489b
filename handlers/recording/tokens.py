"""RTC tokens (AccessToken2, version ``"007"``) for the recording bot, built with Agora's
own ``agoraiotools``.

Cloud recording cannot renew its token, so a restarted task gets a fresh one whose
join-channel privilege outlives the recording. Agora caps a token's privileges at 24
hours, which is therefore the longest a token-protected recording can run.

``agoraiotools`` has no type hints and answers bad input with an empty string (or a
``struct.error``), so this module checks the input first and names the bad argument.
"""

from __future__ import annotations

import warnings

from pydantic import SecretStr

# The package's __init__ eagerly imports its deprecated DynamicKey*/SignalingToken modules,
# each warning on import; we use none of them.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from agoraiotools.AccessToken2 import (  # type: ignore[import-untyped]
        AccessToken,
        ServiceRtc,
    )

MAX_PRIVILEGE_S = 24 * 3600
_HEX32_LEN = 32
_U32_MAX = 0xFFFFFFFF


class TokenError(ValueError):
    """Bad token input; the message names the argument and never shows the certificate."""


def _is_hex32(value: str) -> bool:
    if len(value) != _HEX32_LEN:
        return False
    try:
        bytes.fromhex(value)
    except ValueError:
        return False
    return True


def build_recording_token(
    app_id: str,
    app_certificate: SecretStr | str,
    *,
    channel: str,
    uid: int | str,
    valid_for_s: int,
    issue_ts: int | None = None,
) -> str:
    """The recording bot's token: join-channel privilege for ``uid`` in ``channel``, valid
    ``valid_for_s`` seconds after ``issue_ts`` (default: now), the token and the privilege
    alike. The bot only subscribes, so it gets no publish privileges. ``uid`` 0 (the int)
    means any uid, as in Agora's builders. ``valid_for_s`` must cover the whole recording
    and be at most 24 hours (Agora's cap). Raises :class:`TokenError` naming the bad
    argument (app id or certificate not 32 hex digits, uid outside 32 bits, ...)."""
    certificate = (
        app_certificate.get_secret_value()
        if isinstance(app_certificate, SecretStr) else app_certificate
    )
    if not _is_hex32(app_id):
        raise TokenError("app_id must be 32 hexadecimal characters")
    if not _is_hex32(certificate):
        raise TokenError("app_certificate must be 32 hexadecimal characters")
    if not 0 < valid_for_s <= MAX_PRIVILEGE_S:
        raise TokenError(
            f"valid_for_s must be in [1, {MAX_PRIVILEGE_S}] (Agora caps token privileges at "
            f"24 hours); got {valid_for_s}"
        )
    # str(True) would become the account "True"; an int uid is Agora's unsigned 32-bit uid.
    if isinstance(uid, bool) or (isinstance(uid, int) and not 0 <= uid <= _U32_MAX):
        raise TokenError(f"uid must be an int in [0, {_U32_MAX}] or a string; got {uid!r}")
    # agoraiotools reads issue_ts 0 as "now", so 0 cannot be passed through as a time.
    if issue_ts is not None and not 0 < issue_ts <= _U32_MAX:
        raise TokenError(f"issue_ts must be a positive unsigned 32-bit time; got {issue_ts}")

    token = AccessToken(app_id, certificate, issue_ts=issue_ts or 0, expire=valid_for_s)
    rtc = ServiceRtc(channel, uid)
    rtc.add_privilege(ServiceRtc.kPrivilegeJoinChannel, valid_for_s)
    token.add_service(rtc)
    built: str = token.build()
    if not built:  # the library's own input check refused; ours should have caught it
        raise TokenError("agoraiotools refused the token input")
    return built
