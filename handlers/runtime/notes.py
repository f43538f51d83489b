"""Notes: state entries an action writes *outside* the runner's transaction.

The runner publishes an action's state updates in the transaction that commits the
consumed offsets, so a crash before that commit forgets them and the record is handled
again. That is right for everything ``run`` can redo, but not for the answer of a remote
call that must not be made twice: an action saves that answer as a note right after the
call (durable when :meth:`StateNotes.save` returns), and the state key of the note,
``<action>/<key>`` on the state topic like any state entry, is visible to ``decide`` on
the next attempt, after a crash or on another instance after a rebalance. The action
deletes the note (``None`` in ``Effects.state``) in the transaction that publishes what
the answer produced.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from handlers.runtime.state import encode_json_object

if TYPE_CHECKING:
    from handlers.runtime.client_protocols import ClientFactory

log = logging.getLogger(__name__)


class Notes(Protocol):
    """Saves a note durably (raises when it could not be saved)."""

    def save(self, key: str, value: Mapping[str, Any]) -> None: ...


class StateNotes:
    """Writes ``<action>/<key>`` entries to the state topic with an ``acks=all``
    producer; ``save`` returns once acknowledged.

    The producer is created and connected in the background from the start: the first
    save must not spend a connection set-up between a call and its note (a crash in that
    window repeats the call)."""

    def __init__(self, clients: ClientFactory | Mapping[str, Any], topic: str, action: str,
                 timeout_s: float = 10.0) -> None:
        self._clients = clients  # a factory, or a kafka-python client configuration
        self._topic = topic
        self._prefix = f"{action}/"  # the runner's namespace (StateStore)
        self._timeout_s = timeout_s
        self._producer: Any = None
        self._lock = threading.Lock()
        threading.Thread(target=self._warm, name=f"{self._prefix}notes", daemon=True).start()

    def save(self, key: str, value: Mapping[str, Any]) -> None:
        self._connected().send(self._topic, key=(self._prefix + key).encode(),
                               value=encode_json_object(value)).get(timeout=self._timeout_s)

    def close(self) -> None:
        with self._lock:
            if self._producer is not None:
                self._producer.close(timeout=self._timeout_s)
                self._producer = None

    def _connected(self) -> Any:
        with self._lock:
            if self._producer is None:
                from handlers.runtime.clients import client_factory

                producer = client_factory(self._clients).durable_producer(
                    f"{self._prefix}notes")
                try:
                    producer.partitions_for(self._topic)  # metadata now, not at the first save
                except BaseException:
                    producer.close(timeout=0)
                    raise
                self._producer = producer
            return self._producer

    def _warm(self) -> None:
        try:
            self._connected()
        except Exception:  # the first save tries again and raises
            log.warning("cannot connect the notes producer yet", exc_info=True)
