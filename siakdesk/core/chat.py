"""Chat that survives bad links: a local copy, an outbox, and resync after every reconnect.

The rules (``../shared/DESIGN.md``: nothing typed is ever lost):

* every message gets an id on the client before anything else happens, and is
  written to the local SQLite outbox at once; it leaves the outbox only when the
  server acknowledges that id (``chat_ack``) or relays it (``chat_message``);
* after every (re)admission the client asks for what it missed
  (``chat_history`` after the last sequence number it holds without a gap) and
  sends the whole outbox again, oldest first; the server stores an id once, so a
  resend that crossed its ack is harmless;
* the order of the chat is the server's ``seq``, the same for everyone; own
  messages not yet acknowledged are shown after it, marked as sending.

:class:`ChatLog` is that logic over a :class:`LocalChatStore`, with no
networking (the property-based test drives it directly); :class:`ChatClient`
binds it to a :class:`~siakdesk.core.meetingsession.MeetingSession`.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import uuid
from pathlib import Path

from siakdesk.core.events import Admitted, ServerMessage, SessionEvent
from siakdesk.core.meetingsession import MeetingSession
from siakdesk.core.protocol import (
    ChatAck,
    ChatHistory,
    ChatHistoryReply,
    ChatMessage,
    ChatSend,
)
from siakdesk.core.sessionpart import SessionPart
from siakdesk.core.sqlitedb import open_database

logger = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    participant_id TEXT NOT NULL,
    name TEXT NOT NULL,
    office TEXT NOT NULL,
    text TEXT NOT NULL,
    ts REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS outbox (
    position INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    text TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS notes (
    item_id TEXT PRIMARY KEY,
    text TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""


@dataclasses.dataclass(frozen=True)
class Pending:
    """An own message the server has not acknowledged yet."""

    id: str
    text: str
    created: float


class LocalChatStore:
    """The client's SQLite copy of one room's chat, its outbox and private agenda notes."""

    def __init__(self, path: str | Path = ":memory:") -> None:
        self.path = str(path)
        self._db = open_database(path)
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def add_message(self, message: ChatMessage) -> bool:
        """Keep ``message`` unless it is known (by seq or id); True if it was new."""
        cursor = self._db.execute(
            "INSERT OR IGNORE INTO messages (seq, id, participant_id, name, office, text, ts)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                message.seq,
                message.id,
                message.participant_id,
                message.name,
                message.office,
                message.text,
                message.ts,
            ),
        )
        return cursor.rowcount > 0

    def messages(self) -> list[ChatMessage]:
        rows = self._db.execute(
            "SELECT seq, id, participant_id, name, office, text, ts FROM messages ORDER BY seq"
        )
        return [
            ChatMessage(
                seq=r[0], id=r[1], participant_id=r[2], name=r[3], office=r[4], text=r[5], ts=r[6]
            )
            for r in rows
        ]

    def contiguous_seq(self) -> int:
        """The highest ``n`` such that messages 1..n are all here."""
        row = self._db.execute(
            "SELECT MIN(seq) FROM (SELECT seq FROM messages UNION SELECT 0)"
            " WHERE seq + 1 NOT IN (SELECT seq FROM messages)"
        ).fetchone()
        return int(row[0])

    def queue(self, pending: Pending) -> None:
        self._db.execute(
            "INSERT INTO outbox (id, text, created) VALUES (?, ?, ?)",
            (pending.id, pending.text, pending.created),
        )

    def outbox(self) -> list[Pending]:
        rows = self._db.execute("SELECT id, text, created FROM outbox ORDER BY position")
        return [Pending(*row) for row in rows]

    def unqueue(self, message_id: str) -> bool:
        return self._db.execute("DELETE FROM outbox WHERE id = ?", (message_id,)).rowcount > 0

    def note(self, item_id: str) -> str:
        row = self._db.execute("SELECT text FROM notes WHERE item_id = ?", (item_id,)).fetchone()
        return str(row[0]) if row else ""

    def set_note(self, item_id: str, text: str) -> None:
        self._db.execute(
            "INSERT INTO notes (item_id, text) VALUES (?, ?)"
            " ON CONFLICT(item_id) DO UPDATE SET text = excluded.text",
            (item_id, text),
        )

    def meta(self, key: str, default: str = "") -> str:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return str(row[0]) if row else default

    def set_meta(self, key: str, value: str) -> None:
        self._db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?)"
            " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )


class ChatLog:
    """The outbox/ack/dedupe rules over a store; no networking."""

    def __init__(self, store: LocalChatStore) -> None:
        self.store = store

    def compose(self, text: str) -> ChatSend:
        """A new message, in the outbox before anything is sent; ValueError if not valid."""
        message = ChatSend(id=uuid.uuid4().hex, text=text)  # validates length and emptiness
        self.store.queue(Pending(message.id, message.text, time.time()))
        return message

    def to_send(self) -> list[ChatSend]:
        """Everything still unacknowledged, oldest first (sent again after a reconnect)."""
        return [ChatSend(id=p.id, text=p.text) for p in self.store.outbox()]

    def history_request(self) -> ChatHistory:
        return ChatHistory(after_seq=self.store.contiguous_seq())

    def on_ack(self, ack: ChatAck) -> bool:
        """The server stored one of ours; True if it left the outbox now."""
        return self.store.unqueue(ack.id)

    def on_message(self, message: ChatMessage) -> bool:
        """A stored message (live or from history); True if the view changed."""
        unqueued = self.store.unqueue(message.id)
        return self.store.add_message(message) or unqueued

    @property
    def messages(self) -> list[ChatMessage]:
        return self.store.messages()

    @property
    def pending(self) -> list[Pending]:
        return self.store.outbox()


class ChatClient(SessionPart):
    """Binds a :class:`ChatLog` to a meeting session: live relay, acks, resync, unread count."""

    def __init__(self, session: MeetingSession, log: ChatLog) -> None:
        self.log = log
        self.unread = 0
        self.reading = False  # the panel is open and the user sees new messages
        super().__init__(session)

    async def send(self, text: str) -> None:
        """Queue ``text`` (kept even if the link is down) and send it if we can.

        Raises ValueError for an empty or too long message, before anything is kept.
        """
        message = self.log.compose(text)
        self._changed()
        await self.session.send(message)

    def mark_read(self) -> None:
        self.unread = 0
        self._changed()

    def _on_event(self, event: SessionEvent) -> None:
        if isinstance(event, Admitted):
            self._spawn(self._resync())
        elif isinstance(event, ServerMessage):
            message = event.message
            if isinstance(message, ChatMessage):
                self._take([message])
            elif isinstance(message, ChatAck):
                if self.log.on_ack(message):
                    self._changed()
            elif isinstance(message, ChatHistoryReply):
                self._take(message.messages)
                if not message.complete:
                    self._spawn(self.session.send(self.log.history_request()))

    def _take(self, messages: list[ChatMessage]) -> None:
        """Messages from the server, live or from history: keep the new, count the unread."""
        fresh = [m for m in messages if self.log.on_message(m)]
        if not fresh:
            return
        if not self.reading:
            me = self.session.participant_id
            self.unread += sum(1 for m in fresh if m.participant_id != me)
        self._changed()

    async def _resync(self) -> None:
        """After (re)admission: fetch what was missed, send what was not acknowledged."""
        await self.session.send(self.log.history_request())
        for message in self.log.to_send():
            if not await self.session.send(message):
                return  # the link went again; the next admission sends the rest
