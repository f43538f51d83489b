from __future__ import annotations

import pytest

from webhook.freshness import StaleNotification, check_fresh


def test_zero_tolerance_disables_the_check() -> None:
    check_fresh(notify_ms=0, now_ms=10**13, tolerance_ms=0)


def test_within_tolerance_passes() -> None:
    check_fresh(notify_ms=1_000_000, now_ms=1_000_000 + 299_999, tolerance_ms=300_000)


def test_old_notification_is_stale() -> None:
    with pytest.raises(StaleNotification) as err:
        check_fresh(notify_ms=1_000_000, now_ms=1_000_000 + 300_001, tolerance_ms=300_000)
    assert err.value.skew_ms == 300_001


def test_future_notification_is_stale_too() -> None:
    with pytest.raises(StaleNotification):
        check_fresh(notify_ms=2_000_000, now_ms=1_000_000, tolerance_ms=60_000)
