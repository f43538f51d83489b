"""Notes: state entries written outside the transaction, durable when ``save`` returns."""

from __future__ import annotations

from support.runtime_brokers import RuntimeTestBroker

from handlers.runtime.notes import StateNotes
from handlers.runtime.state import StateStore


def test_a_saved_note_is_in_the_actions_state_for_the_next_reader(
    broker: RuntimeTestBroker,
) -> None:
    names = broker.topics()
    config = broker.clients
    notes = StateNotes(config, names.state, "whiteboard", timeout_s=30)
    try:
        notes.save("answer/class-1", {"screenshots": ["a.png"], "status": 201})
        notes.save("answer/class-1", {"screenshots": ["b.png"], "status": 201})
    finally:
        notes.close()
    # A fresh process (after a crash) reads the state topic: it sees the last note, under
    # the action's namespace only.
    mine, other = StateStore(names.state, "whiteboard"), StateStore(names.state, "notify")
    mine.start(config, timeout_s=30)
    other.start(config, timeout_s=30)
    try:
        assert mine.get("answer/class-1") == {"screenshots": ["b.png"], "status": 201}
        assert other.get("answer/class-1") is None
    finally:
        mine.close()
        other.close()
