from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from werkzeug.datastructures import Headers

from webhook.shared.signature import (
    V1_HEADER,
    V2_HEADER,
    SignatureError,
    SignatureFailure,
    sign_v1,
    sign_v2,
    signature_headers,
    verify,
)

# Agora's published example (signature-verification page): secret "secret" and this body.
AGORA_BODY = (
    b'{"eventMs":1560408533119,"eventType":10,"noticeId":"4eb720f0-8da7-11e9-a43e-53f411c2761f",'
    b'"notifyMs":1560408533119,"payload":{"a":"1","b":2},"productId":1}'
)
AGORA_SHA1 = "033c62f40f687675f17f0f41f91a40c71c0f134c"
AGORA_SHA256 = "6d3320c60b11101395b7fc8f9068748808a0aa1bfa064438e39d1bc2c7d74d99"


def test_known_answer_sha256() -> None:
    assert sign_v2(AGORA_BODY, "secret") == AGORA_SHA256
    assert verify(AGORA_BODY, {V2_HEADER: AGORA_SHA256}, ["secret"]).header == V2_HEADER


def test_known_answer_sha1() -> None:
    assert sign_v1(AGORA_BODY, "secret") == AGORA_SHA1
    assert verify(AGORA_BODY, {V1_HEADER: AGORA_SHA1}, ["secret"]).header == V1_HEADER


def test_v2_preferred_when_both_present() -> None:
    match = verify(AGORA_BODY, signature_headers(AGORA_BODY, "secret"), ["secret"])
    assert match.header == V2_HEADER


def test_header_lookup_is_case_insensitive_with_werkzeug_headers() -> None:
    headers = Headers([("agora-signature-v2", AGORA_SHA256)])
    assert verify(AGORA_BODY, headers, ["secret"]).secret_index == 0


def test_uppercase_hex_is_accepted() -> None:
    assert verify(AGORA_BODY, {V2_HEADER: AGORA_SHA256.upper()}, ["secret"]).header == V2_HEADER


def test_rotation_matches_any_active_secret_and_reports_its_position() -> None:
    body = b'{"x":1}'
    headers = {V2_HEADER: sign_v2(body, "new")}
    assert verify(body, headers, ["old", "new"]).secret_index == 1


def test_missing_signature_is_rejected() -> None:
    with pytest.raises(SignatureError) as err:
        verify(AGORA_BODY, {}, ["secret"])
    assert err.value.reason is SignatureFailure.MISSING


def test_malformed_signature_is_rejected() -> None:
    with pytest.raises(SignatureError) as err:
        verify(AGORA_BODY, {V2_HEADER: "not-hex" * 9 + "z"}, ["secret"])
    assert err.value.reason is SignatureFailure.MALFORMED


def test_wrong_length_signature_is_rejected() -> None:
    # A SHA1-length digest in the V2 header is malformed, not a downgrade path.
    with pytest.raises(SignatureError) as err:
        verify(AGORA_BODY, {V2_HEADER: AGORA_SHA1}, ["secret"])
    assert err.value.reason is SignatureFailure.MALFORMED


def test_wrong_secret_is_rejected() -> None:
    with pytest.raises(SignatureError) as err:
        verify(AGORA_BODY, {V2_HEADER: AGORA_SHA256}, ["other"])
    assert err.value.reason is SignatureFailure.MISMATCH


def test_v1_is_not_consulted_when_v2_is_present_but_wrong() -> None:
    headers = {V2_HEADER: "0" * 64, V1_HEADER: AGORA_SHA1}
    with pytest.raises(SignatureError) as err:
        verify(AGORA_BODY, headers, ["secret"])
    assert err.value.reason is SignatureFailure.MISMATCH
    assert err.value.header == V2_HEADER


def test_error_message_never_contains_the_secret() -> None:
    with pytest.raises(SignatureError) as err:
        verify(AGORA_BODY, {V2_HEADER: "0" * 64}, ["s3cr3t-value"])
    assert "s3cr3t-value" not in str(err.value)


@settings(max_examples=300, deadline=None)
@given(body=st.binary(min_size=1, max_size=512), data=st.data())
def test_any_changed_body_byte_is_rejected(body: bytes, data: st.DataObject) -> None:
    signature = sign_v2(body, "secret")
    index = data.draw(st.integers(0, len(body) - 1))
    flip = data.draw(st.integers(1, 255))
    tampered = body[:index] + bytes([body[index] ^ flip]) + body[index + 1 :]
    with pytest.raises(SignatureError):
        verify(tampered, {V2_HEADER: signature}, ["secret"])


@settings(max_examples=300, deadline=None)
@given(body=st.binary(max_size=256), data=st.data())
def test_any_changed_signature_character_is_rejected(body: bytes, data: st.DataObject) -> None:
    signature = sign_v2(body, "secret")
    index = data.draw(st.integers(0, len(signature) - 1))
    replacement = data.draw(
        st.sampled_from("0123456789abcdef").filter(lambda c: c != signature[index])
    )
    tampered = signature[:index] + replacement + signature[index + 1 :]
    with pytest.raises(SignatureError):
        verify(body, {V2_HEADER: tampered}, ["secret"])
