from __future__ import annotations

from handlers.runtime.rebalance import RecordingListener, fold

P0, P1, P2 = ("t", 0), ("t", 1), ("t", 2)


def test_partitions_given_back_keep_their_work() -> None:
    change = fold([("revoked", frozenset({P0, P1})), ("assigned", frozenset({P0}))], frozenset())
    assert change.dropped == {P1}
    assert change.suspended == frozenset()
    assert change.assigned


def test_revoked_partitions_stay_suspended_until_the_join_completes() -> None:
    first = fold([("revoked", frozenset({P0, P1}))], frozenset())
    assert first.suspended == {P0, P1}
    assert first.dropped == frozenset()
    assert not first.assigned
    second = fold([("assigned", frozenset({P1, P2}))], first.suspended)
    assert second.dropped == {P0}
    assert second.suspended == frozenset()


def test_lost_partitions_are_dropped_at_once() -> None:
    change = fold([("lost", frozenset({P0})), ("assigned", frozenset({P0}))], frozenset())
    assert change.dropped == {P0}


def test_the_listener_records_events_in_order() -> None:
    from kafka import TopicPartition

    listener = RecordingListener()
    listener.on_partitions_revoked([TopicPartition("t", 0)])
    listener.on_partitions_assigned([TopicPartition("t", 1)])
    assert listener.take() == [("revoked", frozenset({P0})), ("assigned", frozenset({P1}))]
    assert listener.take() == []
