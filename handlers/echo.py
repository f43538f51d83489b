"""``echo``: a built-in action that accepts every event and does nothing else.

Its only output is the runtime's ``ok`` outcome on the actions topic, which makes it the
smallest end-to-end check of a deployment (``agora-events handlers echo``) and the
baseline of the runtime's throughput benchmark. Never started unless named.
"""

from __future__ import annotations

from dataclasses import dataclass

from handlers.action_contract import Effects, Received, StateView

ECHO = "echo"


@dataclass(frozen=True, slots=True)
class EchoCommand:
    notice_id: str
    cname: str | None


class EchoAction:
    """``decide`` returns a command for every event; ``run`` has no effect."""

    name = ECHO

    def decide(self, event: Received, state: StateView) -> EchoCommand:
        return EchoCommand(notice_id=event.notification.notice_id, cname=event.key)

    def run(self, command: EchoCommand) -> Effects:
        return Effects()
