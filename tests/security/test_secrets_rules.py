"""Attack 6 (secrets): ``send --secret`` put the NCS secret in ``ps``; the secret list split
silently on commas and had no minimum length."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from webhook.cli import main
from webhook.secrets import MIN_SECRET_LENGTH, SecretListError, parse_secret_list
from webhook.settings import WebhookSettings

GOOD = "a-good-ncs-secret-1"
NEXT = "the-next-ncs-secret-2"


def test_send_has_no_secret_option_and_reads_a_file(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["send", "http://127.0.0.1:1/ncs", "--event", "40",
                                       "--secret", GOOD])
    assert result.exit_code == 2
    assert "No such option '--secret'" in result.output
    short = tmp_path / "short"
    short.write_text("tiny-value\n")
    result = CliRunner().invoke(main, ["send", "http://127.0.0.1:1/ncs", "--event", "40",
                                       "--secret-file", str(short)], env={"AGORA_NCS_SECRET": ""})
    assert result.exit_code == 2
    assert f"at least {MIN_SECRET_LENGTH} expected" in result.output
    assert "tiny-value" not in result.output


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (f"{GOOD},", "secret 2 of 2 is empty"),
        (f"{GOOD},,{NEXT}", "secret 2 of 3 is empty"),
        ("tooshort", "secret 1 of 1 is 8 characters long; at least 16 expected"),
        (f"{GOOD},{GOOD}", "the same secret is listed twice"),
        (",".join([GOOD + str(i) for i in range(5)]), "5 secrets given; at most 4 expected"),
    ],
)
def test_secret_list_rules(raw: str, message: str) -> None:
    with pytest.raises(SecretListError, match=message):
        parse_secret_list(raw)


def test_rotation_keeps_order_and_whitespace_is_ignored() -> None:
    assert parse_secret_list(f" {GOOD} ,\\t{NEXT}".replace("\\t", "\t")) == [GOOD, NEXT]


def test_the_webhook_refuses_a_bad_list_without_echoing_it() -> None:
    with pytest.raises(ValidationError) as err:
        WebhookSettings(AGORA_NCS_SECRET="weak-secret")
    text = str(err.value)
    assert "at least 16 expected" in text
    # pydantic prints the input; the webhook command prints errors without it (serve.py).
    errors = err.value.errors(include_input=False)
    assert "weak-secret" not in str(errors)
