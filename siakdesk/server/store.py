"""What the meeting server keeps across restarts, in one SQLite file.

The server is the authority for a meeting: who took part (and how to let them
resume), when each office was present, the chat log and the agenda.  All of it
lives in one SQLite database, so a restarted server carries on where it left
off and a regency IT person can copy one file to keep the record.

Writes are small (a row per join, leave or message) and go through one
connection in WAL mode with ``synchronous=NORMAL``: a commit costs tens of
microseconds here, so they run on the event loop thread rather than paying for
a thread hop on every message.  ``:memory:`` gives a store that lives as long as
the process (tests, the in-process demo).

Resume tokens are stored as SHA-256 digests only: a copy of the database does
not let anyone take over a participant.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
import time
from collections.abc import Iterator
from pathlib import Path

from siakdesk.core.sqlitedb import open_database

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS participants (
    id TEXT PRIMARY KEY,
    room TEXT NOT NULL,
    name TEXT NOT NULL,
    office TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL DEFAULT 'member',
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS attendance (
    id INTEGER PRIMARY KEY,
    participant_id TEXT NOT NULL REFERENCES participants(id),
    room TEXT NOT NULL,
    name TEXT NOT NULL,
    office TEXT NOT NULL,
    joined REAL NOT NULL,
    left REAL,
    reconnects INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS attendance_room ON attendance(room, joined);
CREATE TABLE IF NOT EXISTS chat (
    room TEXT NOT NULL,
    seq INTEGER NOT NULL,
    id TEXT NOT NULL,
    participant_id TEXT NOT NULL,
    name TEXT NOT NULL,
    office TEXT NOT NULL,
    text TEXT NOT NULL,
    ts REAL NOT NULL,
    PRIMARY KEY (room, seq),
    UNIQUE (room, id)
);
CREATE TABLE IF NOT EXISTS agenda (
    room TEXT PRIMARY KEY,
    items TEXT NOT NULL,
    version INTEGER NOT NULL,
    current_started REAL
);
CREATE TABLE IF NOT EXISTS actions (
    room TEXT NOT NULL,
    id TEXT NOT NULL,
    PRIMARY KEY (room, id)
);
"""


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclasses.dataclass(frozen=True)
class StoredParticipant:
    id: str
    room: str
    name: str
    office: str
    role: str


@dataclasses.dataclass(frozen=True)
class ChatRow:
    seq: int
    id: str
    participant_id: str
    name: str
    office: str
    text: str
    ts: float


@dataclasses.dataclass(frozen=True)
class AgendaRow:
    items_json: str
    version: int
    current_started: float | None


@dataclasses.dataclass(frozen=True)
class AttendanceRecord:
    participant_id: str
    name: str
    office: str
    joined: float
    left: float | None
    reconnects: int


class Store:
    """The server's SQLite database; one per server process."""

    def __init__(self, path: str | Path = ":memory:") -> None:
        self.path = str(path)
        self._db = open_database(path)
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise RuntimeError(
                f"{self.path} was written by a newer SiakDesk server (schema {version})"
            )
        self._db.executescript(_SCHEMA)
        self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def close(self) -> None:
        self._db.close()

    # -- participants --------------------------------------------------------

    def add_participant(self, participant: StoredParticipant, token: str) -> None:
        self._db.execute(
            "INSERT INTO participants (id, room, name, office, token_hash, role, created)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                participant.id,
                participant.room,
                participant.name,
                participant.office,
                token_digest(token),
                participant.role,
                time.time(),
            ),
        )

    def find_by_token(self, room: str, token: str) -> StoredParticipant | None:
        row = self._db.execute(
            "SELECT id, room, name, office, role FROM participants"
            " WHERE token_hash = ? AND room = ?",
            (token_digest(token), room),
        ).fetchone()
        return StoredParticipant(*row) if row else None

    def set_role(self, participant_id: str, role: str) -> None:
        self._db.execute("UPDATE participants SET role = ? WHERE id = ?", (role, participant_id))

    # -- attendance -----------------------------------------------------------

    def attendance_opened(self, participant: StoredParticipant, at: float | None = None) -> None:
        """``participant`` entered the meeting (not a resume: that is one attendance)."""
        self._db.execute(
            "INSERT INTO attendance (participant_id, room, name, office, joined)"
            " VALUES (?, ?, ?, ?, ?)",
            (
                participant.id,
                participant.room,
                participant.name,
                participant.office,
                at or time.time(),
            ),
        )

    def attendance_resumed(self, participant_id: str) -> bool:
        """Count a reconnect on the open attendance; False if there is none to continue."""
        cursor = self._db.execute(
            "UPDATE attendance SET reconnects = reconnects + 1"
            " WHERE participant_id = ? AND left IS NULL",
            (participant_id,),
        )
        return cursor.rowcount > 0

    def attendance_closed(self, participant_id: str, at: float | None = None) -> None:
        self._db.execute(
            "UPDATE attendance SET left = ? WHERE participant_id = ? AND left IS NULL",
            (at or time.time(), participant_id),
        )

    def open_attendance(self, room: str) -> list[str]:
        """Participants of ``room`` whose attendance has not ended (after a restart, say)."""
        rows = self._db.execute(
            "SELECT participant_id FROM attendance WHERE room = ? AND left IS NULL", (room,)
        )
        return [r[0] for r in rows]

    def attendance(self, room: str) -> list[AttendanceRecord]:
        rows = self._db.execute(
            "SELECT participant_id, name, office, joined, left, reconnects FROM attendance"
            " WHERE room = ? ORDER BY joined, id",
            (room,),
        )
        return [AttendanceRecord(*row) for row in rows]

    # -- chat -------------------------------------------------------------------

    def chat_find(self, room: str, message_id: str) -> ChatRow | None:
        row = self._db.execute(
            "SELECT seq, id, participant_id, name, office, text, ts FROM chat"
            " WHERE room = ? AND id = ?",
            (room, message_id),
        ).fetchone()
        return ChatRow(*row) if row else None

    def chat_append(
        self, room: str, message_id: str, participant: StoredParticipant, text: str
    ) -> ChatRow:
        """Store a message as the room's next; one transaction, so ``seq`` has no gaps."""
        with self._transaction():
            last = self._db.execute(
                "SELECT COALESCE(MAX(seq), 0) FROM chat WHERE room = ?", (room,)
            ).fetchone()[0]
            row = ChatRow(
                last + 1,
                message_id,
                participant.id,
                participant.name,
                participant.office,
                text,
                time.time(),
            )
            self._db.execute(
                "INSERT INTO chat (room, seq, id, participant_id, name, office, text, ts)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (room, row.seq, row.id, row.participant_id, row.name, row.office, row.text, row.ts),
            )
        return row

    def chat_after(self, room: str, after_seq: int, limit: int) -> list[ChatRow]:
        rows = self._db.execute(
            "SELECT seq, id, participant_id, name, office, text, ts FROM chat"
            " WHERE room = ? AND seq > ? ORDER BY seq LIMIT ?",
            (room, after_seq, limit),
        )
        return [ChatRow(*row) for row in rows]

    # -- agenda and host actions -------------------------------------------------

    def agenda(self, room: str) -> AgendaRow | None:
        row = self._db.execute(
            "SELECT items, version, current_started FROM agenda WHERE room = ?", (room,)
        ).fetchone()
        return AgendaRow(*row) if row else None

    def save_agenda(self, room: str, agenda: AgendaRow, action_id: str) -> None:
        """Store the agenda and remember ``action_id`` as applied, atomically."""
        with self._transaction():
            self._db.execute(
                "INSERT INTO agenda (room, items, version, current_started) VALUES (?, ?, ?, ?)"
                " ON CONFLICT(room) DO UPDATE SET items = excluded.items,"
                " version = excluded.version, current_started = excluded.current_started",
                (room, agenda.items_json, agenda.version, agenda.current_started),
            )
            self._db.execute("INSERT INTO actions (room, id) VALUES (?, ?)", (room, action_id))

    def action_applied(self, room: str, action_id: str) -> bool:
        row = self._db.execute(
            "SELECT 1 FROM actions WHERE room = ? AND id = ?", (room, action_id)
        ).fetchone()
        return row is not None

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")
