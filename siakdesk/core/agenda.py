"""The meeting's agenda as a client sees it, the host's actions on it, and private notes.

The server holds the agenda (:class:`~siakdesk.core.protocol.Agenda`, whole, on
join and after every change).  The host changes it with actions that carry an
id; an action not yet acknowledged is sent again after a reconnect and the
server applies each id once.  Everyone's timer for the current item counts from
the server's start time, corrected by the offset between the server's clock and
ours, so offices with a wrong PC clock see the same minutes.

Private notes per item are kept only in the local store.
"""

from __future__ import annotations

import time
import uuid

import msgspec

from siakdesk.core.chat import LocalChatStore
from siakdesk.core.events import Admitted, ServerError, ServerMessage, SessionEvent
from siakdesk.core.meetingsession import MeetingSession
from siakdesk.core.protocol import (
    ActionAck,
    Agenda,
    AgendaItem,
    AgendaNext,
    AgendaSet,
    AttendanceCsv,
    AttendanceExport,
    Message,
)
from siakdesk.core.sessionpart import SessionPart

#: The 14 kecamatan of Siak regency, for the roll-call template (alphabetical; the host reorders).
SIAK_KECAMATAN = (
    "Bunga Raya",
    "Dayun",
    "Kandis",
    "Kerinci Kanan",
    "Koto Gasib",
    "Lubuk Dalam",
    "Mempura",
    "Minas",
    "Pusako",
    "Sabak Auh",
    "Siak",
    "Sungai Apit",
    "Sungai Mandau",
    "Tualang",
)


def roll_call_template(minutes_each: int = 3) -> list[AgendaItem]:
    """The regency roll call: the regent opens, each kecamatan reports, the regent closes."""
    items = [AgendaItem(id="opening", title="Pembukaan oleh Bupati", planned_minutes=5)]
    for name in SIAK_KECAMATAN:
        items.append(
            AgendaItem(
                id=f"kec-{name.lower().replace(' ', '-')}",
                title=f"Laporan Kecamatan {name}",
                presenter_office=f"Kecamatan {name}",
                planned_minutes=minutes_each,
            )
        )
    items.append(AgendaItem(id="closing", title="Arahan dan penutup", planned_minutes=5))
    return items


class AgendaClient(SessionPart):
    def __init__(self, session: MeetingSession, store: LocalChatStore) -> None:
        self.store = store
        self.agenda = Agenda(items=[])
        self.clock_offset = 0.0  # server time - our time
        self.attendance_csv: str | None = None
        self._pending: dict[str, Message] = {}
        super().__init__(session)

    @property
    def is_host(self) -> bool:
        return self.session.role == "host"

    @property
    def items(self) -> list[AgendaItem]:
        return list(self.agenda.items)

    @property
    def current(self) -> AgendaItem | None:
        return next((i for i in self.agenda.items if i.status == "current"), None)

    def elapsed(self) -> float | None:
        """Seconds since the current item started, on the server's clock."""
        if self.agenda.current_started is None or self.current is None:
            return None
        return max(0.0, time.time() + self.clock_offset - self.agenda.current_started)

    @property
    def pending_actions(self) -> int:
        return len(self._pending)

    # -- host actions ------------------------------------------------------------

    async def set_items(self, items: list[AgendaItem]) -> None:
        action = AgendaSet(id=uuid.uuid4().hex, items=items)
        self._require_host()
        # shown at once (the host's next edit builds on it); the server's copy follows
        self.agenda = msgspec.structs.replace(self.agenda, items=list(items))
        await self._act(action)

    async def use_template(self) -> None:
        await self.set_items(roll_call_template())

    async def next_item(self) -> None:
        self._require_host()
        await self._act(AgendaNext(id=uuid.uuid4().hex))

    async def move(self, item_id: str, offset: int) -> None:
        """Move an item up (-1) or down (+1)."""
        items = self.items
        index = next((n for n, i in enumerate(items) if i.id == item_id), None)
        if index is None or not 0 <= index + offset < len(items):
            return
        items.insert(index + offset, items.pop(index))
        await self.set_items(items)

    async def request_attendance(self) -> None:
        await self.session.send(AttendanceExport())

    def _require_host(self) -> None:
        if not self.is_host:
            raise PermissionError("only the meeting's host may change the agenda")

    async def _act(self, action: AgendaSet | AgendaNext) -> None:
        self._pending[action.id] = action
        self._changed()
        await self.session.send(action)

    # -- notes --------------------------------------------------------------------

    def note(self, item_id: str) -> str:
        return self.store.note(item_id)

    def set_note(self, item_id: str, text: str) -> None:
        self.store.set_note(item_id, text)

    # -- events -------------------------------------------------------------------

    def _on_event(self, event: SessionEvent) -> None:
        if isinstance(event, Admitted):
            self._spawn(self._resend())
        elif isinstance(event, ServerError) and event.code == "not_host":
            self._pending.clear()  # the server says we are not the host: retrying cannot help
            self._changed()
        elif isinstance(event, ServerMessage):
            message = event.message
            if isinstance(message, Agenda):
                self.agenda = message
                if message.server_time:
                    self.clock_offset = message.server_time - time.time()
                self._changed()
            elif isinstance(message, ActionAck):
                if self._pending.pop(message.id, None) is not None:
                    self._changed()
            elif isinstance(message, AttendanceCsv):
                self.attendance_csv = message.csv
                self._changed()

    async def _resend(self) -> None:
        for action in list(self._pending.values()):
            if not await self.session.send(action):
                return
