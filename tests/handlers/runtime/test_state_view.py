from __future__ import annotations

import json

from handlers.runtime.state import CompactedView, StateStore, Table


def test_only_newer_entries_replace_older_ones() -> None:
    view = CompactedView()
    assert view.apply("k", 0, 10, {"v": 2})
    assert not view.apply("k", 0, 9, {"v": 1})  # an older record read late
    assert view.get("k") == {"v": 2}
    assert view.apply("k", 0, 11, None)
    assert view.get("k") is None
    assert len(view) == 0


def test_a_table_skips_records_it_cannot_read() -> None:
    table = Table("sessions")
    table.observe(b"c1", b'{"sid": "a"}', 0, 1)
    table.observe(b"c1", b"not json", 0, 2)
    table.observe(b"c1", b"[1, 2]", 0, 3)
    table.observe(b"\xff", b"{}", 0, 4)
    table.observe(None, b"{}", 0, 5)
    assert dict(table.items()) == {"c1": {"sid": "a"}}


def test_the_state_store_sees_staged_updates_until_abort() -> None:
    store = StateStore("state", "restart")
    store.observe(b"restart/a", b'{"n": 1}', 0, 0)
    store.observe(b"notify/a", b'{"n": 99}', 0, 1)  # another action's namespace
    assert store.get("a") == {"n": 1}
    records = store.stage({"a": {"n": 2}, "b": None})
    assert [(r.topic, r.key) for r in records] == [("state", b"restart/a"), ("state", b"restart/b")]
    assert json.loads(records[0].value or b"") == {"n": 2}
    assert records[1].value is None  # a tombstone
    assert store.get("a") == {"n": 2}
    store.abort()
    assert store.get("a") == {"n": 1}


def test_committed_updates_come_back_through_observe() -> None:
    store = StateStore("state", "restart")
    (record,) = store.stage({"a": {"n": 3}})
    store.observe(record.key, record.value, 0, 7)
    store.committed()
    assert store.get("a") == {"n": 3}
    store.observe(b"restart/a", b'{"n": 1}', 0, 2)  # read from the topic afterwards
    assert store.get("a") == {"n": 3}
