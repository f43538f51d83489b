import base64
import hashlib
import hmac
import json
import urllib.parse

import pytest
from pydantic import SecretStr

from handlers.settings import WhiteboardSettings
from handlers.whiteboard.tokens import (
    GeneratedSdkToken,
    StaticToken,
    TokenConfigError,
    sdk_token,
    token_source,
)
from webhook.shared.clock import FakeClock

AK = "AKexample"
SK = "SKexample-secret"
NONCE = "6d1c3a40-0cf9-11ec-b3b8-d5ea7d1eca69"
NOW_MS = 1_700_000_000_000

# Self-computed vectors: no published example exists for fixed inputs. They were produced
# by netless-io/netless-token python/netless_token.py itself, run with uuid.uuid1 and
# time.time pinned to NONCE and NOW_MS, and match this implementation byte for byte.
ADMIN_10_MIN = (
    "NETLESSSDK_YWs9QUtleGFtcGxlJm5vbmNlPTZkMWMzYTQwLTBjZjktMTFlYy1iM2I4LWQ1ZWE3ZDFlY2E2OSZyb2xl"
    "PTAmZXhwaXJlQXQ9MTcwMDAwMDYwMDAwMCZzaWc9YzU0MWI0OTk3ZGRiYTQ2MDU1NGYyMjNlZTNmMjIyODBkNzMx"
    "MDM0Y2QxNjJiZDBhMmY3Nzk4OWU1Y2VlMmM2Nw"
)
WRITER_NO_EXPIRY = (
    "NETLESSSDK_YWs9QUtleGFtcGxlJm5vbmNlPTZkMWMzYTQwLTBjZjktMTFlYy1iM2I4LWQ1ZWE3ZDFlY2E2OSZyb2xl"
    "PTEmc2lnPTE1YTFhMmQyMWNkYmJjNTE5OGFmMWRmMzdmMjc2ZjA4MWIyMDAxZDNhNjFmMjkwMGMwYWMxNzhlZGMw"
    "MTcyMWE"
)


def decode(token: str) -> dict[str, str]:
    assert token.startswith("NETLESSSDK_")
    encoded = token.removeprefix("NETLESSSDK_")
    assert "=" not in encoded
    query = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    return dict(urllib.parse.parse_qsl(query, strict_parsing=True))


def test_known_output_admin_with_lifespan() -> None:
    token = sdk_token(AK, SK, lifespan_ms=600_000, role="admin", nonce=NONCE, now_ms=NOW_MS)
    assert token == ADMIN_10_MIN


def test_known_output_writer_without_expiry() -> None:
    token = sdk_token(AK, SK, lifespan_ms=0, role="writer", nonce=NONCE, now_ms=NOW_MS)
    assert token == WRITER_NO_EXPIRY


def test_decoded_fields_and_signature() -> None:
    fields = decode(
        sdk_token(AK, SK, lifespan_ms=600_000, role="reader", nonce=NONCE, now_ms=NOW_MS)
    )
    sig = fields.pop("sig")
    assert fields == {"ak": AK, "nonce": NONCE, "role": "2", "expireAt": str(NOW_MS + 600_000)}
    signed = json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()
    assert sig == hmac.new(SK.encode(), signed, hashlib.sha256).hexdigest()


def test_no_expire_at_for_zero_lifespan() -> None:
    fields = decode(sdk_token(AK, SK, lifespan_ms=0, role="admin", nonce=NONCE, now_ms=NOW_MS))
    assert "expireAt" not in fields


def test_hmac_primitive_matches_reference_test_vector() -> None:
    # Published in netless-io/netless-token golang/token_test.go (hmac256("netless", "key")).
    digest = hmac.new(b"key", b"netless", hashlib.sha256).hexdigest()
    assert digest == "4b007294b9ebeccb96fb1ef30c843b9894d6323375e042b1ef2775978225ca7f"


def test_bad_role_and_lifespan_are_named() -> None:
    with pytest.raises(ValueError, match="role"):
        sdk_token(AK, SK, lifespan_ms=0, role="owner", nonce=NONCE, now_ms=NOW_MS)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="lifespan_ms"):
        sdk_token(AK, SK, lifespan_ms=-1, role="admin", nonce=NONCE, now_ms=NOW_MS)


def test_generator_uses_clock_and_fresh_nonce() -> None:
    nonces = iter(["n-1", "n-2"])
    clock = FakeClock(now_ms=NOW_MS)
    source = GeneratedSdkToken(AK, SecretStr(SK), lifespan_ms=1000, clock=clock,
                               nonce=lambda: next(nonces))
    first = decode(source.token())
    clock.advance(5)
    second = decode(source.token())
    assert (first["nonce"], first["expireAt"]) == ("n-1", str(NOW_MS + 1000))
    assert (second["nonce"], second["expireAt"]) == ("n-2", str(NOW_MS + 6000))
    assert first["role"] == "0"


def test_configured_token_wins_over_access_keys() -> None:
    settings = WhiteboardSettings(token=SecretStr("NETLESSSDK_static"), access_key=AK,
                                  secret_access_key=SecretStr(SK))
    source = token_source(settings)
    assert isinstance(source, StaticToken)
    assert source.token() == "NETLESSSDK_static"


def test_access_keys_generate_tokens() -> None:
    settings = WhiteboardSettings(access_key=AK, secret_access_key=SecretStr(SK))
    fields = decode(token_source(settings).token())
    assert fields["ak"] == AK


def test_no_credentials_is_a_clear_error() -> None:
    with pytest.raises(TokenConfigError, match="WHITEBOARD_TOKEN"):
        token_source(WhiteboardSettings(access_key=AK))
