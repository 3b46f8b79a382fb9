"""What the chat and the agenda clients share: they follow one session's events,
may start short tasks of their own, and tell their listeners (the panels) when
they changed."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from siakdesk.core.events import SessionEvent
from siakdesk.core.meetingsession import MeetingSession

ChangeListener = Callable[[], None]


class SessionPart:
    def __init__(self, session: MeetingSession) -> None:
        self.session = session
        self._listeners: list[ChangeListener] = []
        self._tasks: set[asyncio.Task[object]] = set()
        self._remove = session.add_listener(self._on_event)

    def add_listener(self, listener: ChangeListener) -> Callable[[], None]:
        """Call ``listener`` after every change; returns a function that removes it."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def close(self) -> None:
        """Stop following the session and end the tasks started for it."""
        self._remove()
        for task in self._tasks:
            task.cancel()

    def _changed(self) -> None:
        for listener in tuple(self._listeners):
            listener()

    def _spawn(self, coroutine: Coroutine[Any, Any, object]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _on_event(self, event: SessionEvent) -> None:
        raise NotImplementedError
