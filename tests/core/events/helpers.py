"""A test subscriber plugin: declares durable test events and records what it handles."""

from __future__ import annotations

from core.plugin import EventType, hookimpl

EVENT = "testing.thing.happened"
QUICK = "testing.thing.noted"  # not durable: today's in-process behaviour


class Declares:
    @hookimpl
    def register_events(self):
        return [EventType(EVENT, "A durable test event", durable=True),
                EventType(QUICK, "A non-durable test event")]


class Subscriber:
    """Handles events, failing the first ``fail_times`` calls for events it is told to."""

    def __init__(self, fail_times: int = 0, fail_ids: set[int] | None = None) -> None:
        self.fail_times = fail_times
        self.fail_ids = fail_ids
        self.calls: list[tuple[int | None, str, dict]] = []
        self.handled: list[int | None] = []

    @hookimpl
    async def on_event(self, rapport, event):
        self.calls.append((event.id, event.name, dict(event.payload)))
        if self.fail_times and (self.fail_ids is None or event.id in self.fail_ids):
            self.fail_times -= 1
            raise RuntimeError("subscriber down")
        self.handled.append(event.id)


def with_subscribers(rapport, **subscribers: Subscriber) -> None:
    """Register the declaring plugin and named subscribers on ``rapport`` (before first use)."""
    rapport.pm.register(Declares(), name="testing_declares")
    for name, subscriber in subscribers.items():
        rapport.pm.register(subscriber, name=name)
