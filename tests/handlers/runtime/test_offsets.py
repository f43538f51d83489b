from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from handlers.runtime.offsets import OffsetTracker

P0 = ("events", 0)
P1 = ("events", 1)


def test_in_order_finishes_commit_one_past_the_last() -> None:
    tracker = OffsetTracker()
    for offset in (5, 6, 7):
        tracker.track(P0, offset)
        tracker.finish(P0, offset)
    assert tracker.committable() == {P0: 8}


def test_an_unfinished_offset_holds_the_commit_point() -> None:
    tracker = OffsetTracker()
    for offset in (10, 11, 13):  # gaps are normal (transaction markers, compaction)
        tracker.track(P0, offset)
    tracker.finish(P0, 11)
    tracker.finish(P0, 13)
    assert tracker.committable() == {P0: 10}
    assert tracker.unfinished(P0) == 1
    tracker.finish(P0, 10)
    assert tracker.committable() == {P0: 14}


def test_only_partitions_whose_point_moved_are_reported() -> None:
    tracker = OffsetTracker()
    tracker.track(P0, 0)
    tracker.track(P1, 0)
    tracker.finish(P0, 0)
    tracker.finish(P1, 0)
    tracker.mark_committed(tracker.committable())
    assert tracker.committable() == {}
    assert tracker.committed("events", 0) == 1
    tracker.track(P1, 1)
    tracker.finish(P1, 1)
    assert tracker.committable() == {P1: 2}


def test_nothing_finished_commits_nothing() -> None:
    tracker = OffsetTracker()
    tracker.track(P0, 3)
    assert tracker.committable() == {P0: 3}  # the first unfinished, i.e. no progress
    tracker.mark_committed({P0: 3})
    assert tracker.committable() == {}


def test_misuse_is_an_error_naming_the_offset() -> None:
    tracker = OffsetTracker()
    tracker.track(P0, 4)
    with pytest.raises(ValueError, match=r"offset 4 of .* tracked after 4"):
        tracker.track(P0, 4)
    with pytest.raises(KeyError, match="offset 9"):
        tracker.finish(P0, 9)


def test_forgotten_partitions_disappear() -> None:
    tracker = OffsetTracker()
    tracker.track(P0, 0)
    tracker.track(P1, 0)
    tracker.forget([P0])
    assert tracker.partitions() == [P1]
    tracker.clear()
    assert tracker.committable() == {}


@given(
    st.lists(st.integers(min_value=1, max_value=3), min_size=1, max_size=40),
    st.data(),
)
def test_the_commit_point_never_passes_an_unfinished_offset(
    gaps: list[int], data: st.DataObject
) -> None:
    offsets = []
    offset = 0
    for gap in gaps:
        offset += gap
        offsets.append(offset)
    tracker = OffsetTracker()
    for o in offsets:
        tracker.track(P0, o)
    order = data.draw(st.permutations(offsets))
    count = data.draw(st.integers(min_value=0, max_value=len(order)))
    for o in order[:count]:
        tracker.finish(P0, o)
    unfinished = set(order[count:])
    expected = min(unfinished) if unfinished else offsets[-1] + 1
    assert tracker.committable() == {P0: expected}
