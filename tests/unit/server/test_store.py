"""The server's SQLite record: participants, resume tokens and attendance."""

from __future__ import annotations

from pathlib import Path

from siakdesk.server.store import Store, StoredParticipant


def test_tokens_are_kept_hashed_and_found_after_reopening(tmp_path: Path) -> None:
    path = tmp_path / "meetings.sqlite3"
    store = Store(path)
    minas = StoredParticipant("p1", "siak", "Camat Minas", "Kecamatan Minas", "member")
    store.add_participant(minas, "secret-token")
    store.attendance_opened(minas, at=100.0)
    store.close()
    assert b"secret-token" not in path.read_bytes()

    reopened = Store(path)
    assert reopened.find_by_token("siak", "secret-token") == minas
    assert reopened.find_by_token("other-room", "secret-token") is None
    assert reopened.find_by_token("siak", "wrong") is None
    assert reopened.open_attendance("siak") == ["p1"]


def test_a_resume_is_one_attendance_with_a_reconnect(tmp_path: Path) -> None:
    store = Store(tmp_path / "m.sqlite3")
    minas = StoredParticipant("p1", "siak", "Camat Minas", "Kecamatan Minas", "member")
    store.add_participant(minas, "t")
    store.attendance_opened(minas, at=100.0)
    assert store.attendance_resumed("p1")
    assert store.attendance_resumed("p1")
    store.attendance_closed("p1", at=160.0)
    assert not store.attendance_resumed("p1")  # nothing open to continue
    (record,) = store.attendance("siak")
    assert (record.joined, record.left, record.reconnects) == (100.0, 160.0, 2)
