"""The real window against the real server, with bots as the other offices."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt

from siakdesk.core.agenda import AgendaClient
from siakdesk.core.chat import ChatClient, ChatLog, LocalChatStore
from siakdesk.core.events import SessionState
from siakdesk.netlab.inprocess import LinkEmulator
from tests.ui.conftest import FakeDevices, UiMeeting

RunUi = Callable[[Coroutine[Any, Any, None]], None]


async def until(predicate: Callable[[], bool], seconds: float = 15) -> None:
    """Wait until the window reaches a state; it gets there through many Qt events and
    asyncio tasks with no one signal to wait for, so this looks every 50 ms, bounded."""
    async with asyncio.timeout(seconds):
        while not predicate():  # noqa: ASYNC110
            await asyncio.sleep(0.05)


def test_configured_window_joins_and_shows_everyone(run_ui: RunUi) -> None:
    async def body() -> None:
        async with UiMeeting() as meeting:
            minas = await meeting.bot("Minas")
            window = meeting.window()
            assert window.configured
            assert await window.join(window.request_from_settings())
            assert window.stack.currentWidget() is window.meeting_view
            kandis = await meeting.bot("Kandis")

            view = window.meeting_view
            await until(lambda: {t.info.name for t in view.tiles.values()} == {"Minas", "Kandis"})
            await until(lambda: all(t.frames_shown > 3 for t in view.tiles.values()))
            assert view.self_tile is not None and view.self_tile.info.name == "Bupati Siak"
            assert view.status.text() == "In the meeting · 3 participants"
            await until(lambda: view.self_tile is not None and view.self_tile.frames_shown > 0)
            # the others really receive the window's camera and microphone
            await minas.wait_until(
                lambda b: (
                    "Bupati Siak" in b.received
                    and b.received["Bupati Siak"].video_frames > 5
                    and b.received["Bupati Siak"].video_ident_ok
                )
            )
            assert minas.received["Bupati Siak"].audio_frames > 0

            await kandis.close()
            await until(lambda: {t.info.name for t in view.tiles.values()} == {"Minas"})
            assert view.status.text() == "In the meeting · 2 participants"

    run_ui(body())


def test_join_screen_when_not_configured(qtbot: Any, run_ui: RunUi) -> None:
    async def body() -> None:
        async with UiMeeting() as meeting:
            minas = await meeting.bot("Minas")
            window = meeting.window(server_url="", display_name="")
            assert not window.configured
            assert window.stack.currentWidget() is window.join_screen
            screen = window.join_screen
            qtbot.mouseClick(screen.join_button, Qt.MouseButton.LeftButton)
            assert "name or your office" in screen.error.text()

            screen.server.setText("rapat.siakkab.go.id")
            screen.name.setText("Sekcam Kandis")
            qtbot.mouseClick(screen.join_button, Qt.MouseButton.LeftButton)
            assert "https://host:port" in screen.error.text()

            screen.server.setText(meeting.url)
            screen.passcode.setText("0000")
            qtbot.mouseClick(screen.join_button, Qt.MouseButton.LeftButton)
            await until(lambda: "Wrong passcode" in screen.error.text())
            assert window.stack.currentWidget() is screen and window.session is None

            screen.passcode.setText("1234")
            qtbot.mouseClick(screen.join_button, Qt.MouseButton.LeftButton)
            await until(
                lambda: window.session is not None and window.session.state is SessionState.JOINED
            )
            await minas.wait_until(lambda b: "Sekcam Kandis" in b.received)

    run_ui(body())


def test_mute_camera_and_leave_reach_the_others(qtbot: Any, run_ui: RunUi) -> None:
    async def body() -> None:
        async with UiMeeting() as meeting:
            minas = await meeting.bot("Minas")
            window = meeting.window()
            assert await window.join(window.request_from_settings())
            view = window.meeting_view
            me = window.session.participant_id if window.session else None
            assert me is not None
            await until(lambda: me in minas.session.roster)

            qtbot.mouseClick(view.mute_button, Qt.MouseButton.LeftButton)
            await until(lambda: minas.session.roster[me].audio_muted)
            assert view.mute_button.text() == "Unmute"
            view.shortcuts["camera"].activated.emit()  # Ctrl+E
            await until(lambda: minas.session.roster[me].video_muted)
            assert view.self_tile is not None and view.self_tile.info.video_muted

            qtbot.mouseClick(view.leave_button, Qt.MouseButton.LeftButton)
            await until(lambda: me not in minas.session.roster)
            await until(lambda: window.session is None and window.mixer is None)
            assert window.stack.currentWidget() is window.join_screen
            assert view.tiles == {} and view.self_tile is None

    run_ui(body())


def test_a_pc_without_camera_joins_with_audio(run_ui: RunUi) -> None:
    async def body() -> None:
        async with UiMeeting() as meeting:
            minas = await meeting.bot("Minas")
            window = meeting.window(FakeDevices(camera=False))
            assert await window.join(window.request_from_settings())
            assert not window.meeting_view.camera_button.isEnabled()
            assert window.meeting_view.mute_button.isEnabled()
            await minas.wait_until(
                lambda b: (
                    "Bupati Siak" in b.received and b.received["Bupati Siak"].audio_frames > 20
                )
            )
            assert minas.received["Bupati Siak"].video_frames == 0

    run_ui(body())


def test_active_speaker_and_speaker_view(run_ui: RunUi) -> None:
    async def body() -> None:
        async with UiMeeting() as meeting:
            await meeting.bot("Minas")
            await meeting.bot("Kandis", send_audio=False)
            window = meeting.window()
            assert await window.join(window.request_from_settings())
            view = window.meeting_view
            await until(lambda: len(view.tiles) == 2)
            # only Minas makes a sound: the mixer hears her and her tile lights up
            await until(lambda: view.active_speaker is not None)
            assert [t.info.name for t in view.tiles.values() if t.speaking] == ["Minas"]
            view.view_button.toggle()
            item = view.grid.itemAtPosition(0, 0)
            main = item.widget() if item is not None else None
            assert main is not None and main.accessibleName() == "Minas"

    run_ui(body())


def test_indonesian_by_default(indonesian: Any, run_ui: RunUi) -> None:
    async def body() -> None:
        async with UiMeeting() as meeting:
            window = meeting.window(server_url="")
            window.retranslate()
            window.meeting_view.retranslate()
            window.join_screen.retranslate()
            assert window.join_screen.join_button.text() == "Gabung ke rapat"
            assert window.meeting_view.leave_button.text() == "Keluar"
            assert window.windowTitle() == "SiakDesk · Rapat Kabupaten Siak"

    run_ui(body())


def test_room_mode_uses_larger_type(run_ui: RunUi) -> None:
    async def body() -> None:
        async with UiMeeting() as meeting:
            normal = meeting.window(server_url="")
            room = meeting.window(server_url="", room_mode=True)
            assert room.meeting_view.scale > normal.meeting_view.scale
            assert room.meeting_view.font().pointSizeF() > normal.meeting_view.font().pointSizeF()

    run_ui(body())


def test_lost_links_show_a_banner_and_a_reconnecting_tile(run_ui: RunUi) -> None:
    async def body() -> None:
        async with UiMeeting() as meeting:
            bot_link, window_link = LinkEmulator(), LinkEmulator()
            minas = await meeting.bot("Minas", link=bot_link)
            window = meeting.window()
            window.link = window_link
            assert await window.join(window.request_from_settings())
            view = window.meeting_view
            await until(lambda: len(view.tiles) == 1)
            (tile,) = view.tiles.values()
            await until(lambda: tile.frames_shown > 3)

            # another office loses its link: its tile says so instead of freezing
            bot_link.cut()
            await until(lambda: tile.reconnecting, seconds=8)
            assert tile.image is None
            bot_link.restore()
            await until(lambda: not tile.reconnecting and tile.image is not None, seconds=15)
            assert minas.session.reconnects == 1

            # our own link goes: the banner counts the attempts, then goes away by itself
            window_link.cut()
            await until(lambda: view.banner.isVisible(), seconds=8)
            await until(lambda: view.reconnect_attempt >= 2, seconds=8)
            assert view.banner.text().startswith("Reconnecting... attempt ")
            assert "last media" in view.banner.text()
            assert view.status.text() == "Connection lost; getting back in by itself"
            window_link.restore()
            await until(lambda: not view.banner.isVisible(), seconds=10)
            assert view.status.text() == "In the meeting · 2 participants · reconnects: 1"
            await until(lambda: tile.frames_shown > 3 and tile.image is not None)

    run_ui(body())


def test_chat_and_agenda_panels_against_the_server(tmp_path: Path, run_ui: RunUi) -> None:
    async def body() -> None:
        async with UiMeeting() as meeting:
            minas = await meeting.bot("Minas")
            minas_chat = ChatClient(minas.session, ChatLog(LocalChatStore()))
            minas_agenda = AgendaClient(minas.session, LocalChatStore())
            window = meeting.window(host_passcode="bupati")
            assert await window.join(window.request_from_settings())
            chat, agenda = window.chat_panel, window.agenda_panel
            assert window.chat_dock.isVisible() and window.agenda_dock.isVisible()

            # chat both ways, in the server's order, in the panel's list
            chat.input.setText("Selamat pagi, para camat")
            chat.send_button.click()
            await until(
                lambda: [m.text for m in minas_chat.log.messages] == ["Selamat pagi, para camat"]
            )
            await minas_chat.send("Pagi, Pak Bupati")
            await until(lambda: chat.list.count() == 2)
            assert chat.list.item(0).text().startswith("You")
            assert chat.list.item(1).text().startswith("Minas · Kecamatan Minas")
            assert chat.list.item(1).text().endswith("Pagi, Pak Bupati")
            # hidden panel: what arrives is unread, and the dock's title says how much
            window.chat_dock.hide()
            await minas_chat.send("Laporan siap")
            await until(lambda: window.chat_dock.windowTitle() == "Chat (1 new)")
            window.chat_dock.show()
            await until(lambda: window.chat_dock.windowTitle() == "Chat")

            # the host's agenda: template, next, everyone sees the current item and timer
            assert agenda.host_box.isVisibleTo(agenda)
            agenda.template_button.click()
            await until(lambda: len(minas_agenda.items) == 16 and agenda.list.count() == 16)
            agenda.next_button.click()
            await until(lambda: getattr(minas_agenda.current, "id", None) == "opening")
            await until(lambda: agenda.current.text().startswith("Now: Pembukaan oleh Bupati"))
            assert agenda.list.item(0).text().startswith("▶ Pembukaan oleh Bupati")
            agenda.list.setCurrentRow(3)
            agenda.up_button.click()
            await until(lambda: minas_agenda.items[2].title == "Laporan Kecamatan Kandis")
            # private notes for the selected item, kept locally
            agenda.list.setCurrentRow(1)
            agenda.notes.setPlainText("tanya soal titik api")
            assert window.agenda is not None
            assert window.agenda.note(agenda.selected_id) == "tanya soal titik api"

            target = tmp_path / "kehadiran.csv"
            window.choose_export_path = lambda: target
            assert await window.export_attendance() == target
            rows = list(csv.DictReader(io.StringIO(target.read_text(encoding="utf-8-sig"))))
            assert {r["office"] for r in rows} == {"Kecamatan Minas", "Bupati Siak"}
            minas_chat.close()
            minas_agenda.close()

    run_ui(body())


def test_a_member_sees_the_agenda_without_host_controls(run_ui: RunUi) -> None:
    async def body() -> None:
        async with UiMeeting() as meeting:
            window = meeting.window()
            assert await window.join(window.request_from_settings())
            agenda = window.agenda_panel
            assert not agenda.host_box.isVisibleTo(agenda)
            assert agenda.current.text() == "No agenda yet"

    run_ui(body())


def test_device_settings_preview_and_switch_mid_meeting(run_ui: RunUi) -> None:
    async def body() -> None:
        async with UiMeeting() as meeting:
            minas = await meeting.bot("Minas")
            window = meeting.window()
            assert await window.join(window.request_from_settings())
            session = window.session
            assert session is not None
            old_camera = session.local["video"].source
            await until(lambda: window.meeting_view.mic_level.value() > 0)
            await until(lambda: window.meeting_view.quality.text() == "● Connection good")

            settings = asyncio.ensure_future(window.open_device_settings())
            await until(lambda: window.device_dialog is not None)
            dialog = window.device_dialog
            assert dialog is not None
            assert dialog.camera.count() == 1 and dialog.camera.isEnabled()
            # the preview shows the camera's picture and the microphone's level
            await until(lambda: dialog.frames_shown > 2 and dialog.level.value() > 0)
            dialog.accept()
            assert await settings

            assert session.local["video"].source is not old_camera
            assert old_camera.readyState == "ended"
            # the others keep receiving the (new) camera
            before = minas.frames_from("Bupati Siak")[1]
            await minas.wait_until(lambda b: b.frames_from("Bupati Siak")[1] > before + 10)

    run_ui(body())
