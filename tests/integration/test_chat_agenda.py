"""Chat, agenda and attendance against the real server: nothing typed is lost."""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import io
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from siakdesk.bot import Bot, BotConfig
from siakdesk.core.agenda import SIAK_KECAMATAN, AgendaClient
from siakdesk.core.chat import ChatClient, ChatLog, LocalChatStore
from siakdesk.core.events import ServerError, SessionState
from siakdesk.core.meetingsession import SessionConfig
from siakdesk.core.protocol import MAX_CHAT_CHARS, AgendaNext, AttendanceExport
from siakdesk.netlab.inprocess import LinkEmulator
from siakdesk.server.config import RoomConfig, ServerConfig
from tests.conftest import RunningServer, start_server
from tests.integration.test_reconnect import FAST, until, wait_state


class Office:
    """A bot with chat and agenda, as the desktop app has them."""

    def __init__(self, bot: Bot, store_path: Path | str = ":memory:") -> None:
        self.bot = bot
        self.store = LocalChatStore(store_path)
        self.chat = ChatClient(bot.session, ChatLog(self.store))
        self.agenda = AgendaClient(bot.session, self.store)

    def texts(self) -> list[str]:
        return [m.text for m in self.chat.log.messages]

    async def until(self, predicate: Callable[[], bool], within: float = 15) -> None:
        await until(self.bot, predicate, within)

    async def close(self) -> None:
        self.chat.close()
        self.agenda.close()
        await self.bot.close()
        self.store.close()


class ChatRoom:
    """The real server with a SQLite file, and offices in its room ``siak``."""

    def __init__(self, config: ServerConfig, server: RunningServer) -> None:
        self.config = config
        self.server = server
        self.offices: list[Office] = []

    async def office(self, name: str, **options: Any) -> Office:
        session = SessionConfig(
            endpoint=self.server.endpoint(),
            room="siak",
            name=name,
            office=f"Kecamatan {name}",
            reconnect=FAST,
            **options,
        )
        office = Office(Bot(BotConfig(session=session, send_video=False)))
        await office.bot.start()
        self.offices.append(office)
        return office

    async def restart(self) -> None:
        await self.server.runner.cleanup()
        port = int(self.server.url.rsplit(":", 1)[1])
        self.server = await start_server(dataclasses.replace(self.config, port=port))


@pytest.fixture
async def room(tmp_path: Path) -> AsyncIterator[ChatRoom]:
    config = ServerConfig(
        port=0,
        rooms=(RoomConfig("siak", host_passcode="bupati-2026"),),
        database=str(tmp_path / "server.sqlite3"),
        heartbeat_timeout=1.5,
    )
    chat_room = ChatRoom(config, await start_server(config))
    yield chat_room
    for office in chat_room.offices:
        await office.close()
    await chat_room.server.runner.cleanup()


async def test_messages_typed_while_the_link_is_down_arrive_exactly_once(room: ChatRoom) -> None:
    link = LinkEmulator()
    minas = await room.office("Minas")
    siak = await room.office("Siak", link=link)
    await siak.chat.send("Selamat pagi")
    await minas.until(lambda: minas.texts() == ["Selamat pagi"])

    link.cut()
    await wait_state(siak.bot, SessionState.RECONNECTING, within=5)
    typed = [f"laporan {n}" for n in range(5)]
    for text in typed:
        await siak.chat.send(text)
    assert [p.text for p in siak.chat.log.pending] == typed  # kept, shown as sending
    await minas.chat.send("Siak, terdengar?")
    link.restore()

    expected = ["Selamat pagi", *typed, "Siak, terdengar?"]
    await minas.until(lambda: sorted(minas.texts()) == sorted(expected))
    await siak.until(lambda: sorted(siak.texts()) == sorted(expected) and not siak.chat.log.pending)
    assert minas.texts() == siak.texts()  # one order, the server's
    assert len(set(minas.texts())) == len(minas.texts())
    stored = room.server.meeting.store.chat_after("siak", 0, 100)
    assert [r.text for r in stored] == minas.texts()
    assert minas.chat.unread == 6  # Siak's greeting and five reports; not its own message


async def test_a_server_restart_loses_nothing_acknowledged(room: ChatRoom) -> None:
    minas = await room.office("Minas")
    kandis = await room.office("Kandis")
    for n in range(10):
        await minas.chat.send(f"pesan {n}")
    await minas.until(lambda: len(minas.texts()) == 10 and not minas.chat.log.pending)
    await room.restart()
    await kandis.chat.send("setelah restart")
    await wait_state(kandis.bot, SessionState.JOINED, within=10)
    await kandis.until(lambda: len(kandis.texts()) == 11 and not kandis.chat.log.pending)
    assert kandis.texts() == [*(f"pesan {n}" for n in range(10)), "setelah restart"]
    await minas.until(lambda: minas.texts() == kandis.texts())


async def test_two_offices_sending_at_once_see_the_same_order(room: ChatRoom) -> None:
    minas = await room.office("Minas")
    kandis = await room.office("Kandis")
    await asyncio.gather(
        *(minas.chat.send(f"M{n}") for n in range(20)),
        *(kandis.chat.send(f"K{n}") for n in range(20)),
    )
    await minas.until(lambda: len(minas.texts()) == 40)
    await kandis.until(lambda: len(kandis.texts()) == 40)
    assert minas.texts() == kandis.texts()
    assert [m.seq for m in minas.chat.log.messages] == list(range(1, 41))


async def test_a_late_joiner_gets_the_history_and_a_too_long_message_is_refused(
    room: ChatRoom,
) -> None:
    minas = await room.office("Minas")
    await minas.chat.send("agenda dimulai jam 9")
    with pytest.raises(ValueError, match="limit"):
        await minas.chat.send("x" * (MAX_CHAT_CHARS + 1))
    with pytest.raises(ValueError, match="empty"):
        await minas.chat.send("   ")
    # nothing bad was kept, nothing good was lost
    assert [p.text for p in minas.chat.log.pending] in ([], ["agenda dimulai jam 9"])
    late = await room.office("Dayun")
    await late.until(lambda: late.texts() == ["agenda dimulai jam 9"])


async def test_host_runs_the_roll_call_and_exports_attendance(room: ChatRoom) -> None:
    bupati = await room.office("Bupati", host_passcode="bupati-2026")
    minas = await room.office("Minas")
    assert bupati.agenda.is_host and not minas.agenda.is_host

    await bupati.agenda.use_template()
    await minas.until(lambda: len(minas.agenda.items) == len(SIAK_KECAMATAN) + 2)
    titles = [i.title for i in minas.agenda.items]
    assert titles[0] == "Pembukaan oleh Bupati" and "Laporan Kecamatan Minas" in titles
    await bupati.agenda.move("kec-siak", -10)  # the host puts Siak first after the opening
    await minas.until(lambda: minas.agenda.items[1].id == "kec-siak")
    await bupati.agenda.next_item()
    await minas.until(lambda: minas.agenda.current is not None)
    assert minas.agenda.current is not None and minas.agenda.current.id == "opening"
    await bupati.agenda.next_item()
    await minas.until(
        lambda: minas.agenda.current is not None and minas.agenda.current.id == "kec-siak"
    )
    elapsed = minas.agenda.elapsed()
    assert elapsed is not None and 0 <= elapsed < 5
    assert [i.status for i in minas.agenda.items[:3]] == ["done", "current", "pending"]
    await bupati.until(lambda: bupati.agenda.pending_actions == 0)

    # members may not change it: the UI does not offer it, the server refuses it anyway
    with pytest.raises(PermissionError):
        await minas.agenda.next_item()
    errors: list[ServerError] = []
    minas.bot.session.add_listener(
        lambda e: errors.append(e) if isinstance(e, ServerError) else None
    )

    await minas.bot.session.send(AgendaNext(id="sneaky-action"))
    await minas.bot.session.send(AttendanceExport())
    await minas.until(lambda: len(errors) == 2)
    assert {e.code for e in errors} == {"not_host"}
    assert "only the meeting's host" in errors[0].message

    # private notes stay on this PC
    minas.agenda.set_note("kec-minas", "siapkan data titik api")
    assert minas.agenda.note("kec-minas") == "siapkan data titik api"

    await bupati.agenda.request_attendance()
    await bupati.until(lambda: bupati.agenda.attendance_csv is not None)
    rows = list(csv.DictReader(io.StringIO(bupati.agenda.attendance_csv or "")))
    assert [r["office"] for r in rows] == ["Kecamatan Bupati", "Kecamatan Minas"]
    assert all(r["left"] == "" and float(r["minutes_present"]) >= 0 for r in rows)
