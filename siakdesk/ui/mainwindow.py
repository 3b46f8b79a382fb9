"""The application window: the join screen or the meeting, and what connects them.

The window drives a :class:`MeetingSession` and renders its events (through a
:class:`SessionAdapter`); it never talks to the network itself. It owns the
session, the audio mixer, the local devices, and the chat and agenda clients
with their local SQLite store for as long as it is in a meeting, and releases
all of them when it leaves.  Chat and agenda are docked beside the grid.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable
from pathlib import Path

import av
import platformdirs
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (
    QDialog,
    QDockWidget,
    QFileDialog,
    QMainWindow,
    QStackedWidget,
    QWidget,
)
from qasync import asyncClose, asyncSlot

from siakdesk.core import config
from siakdesk.core.agenda import AgendaClient
from siakdesk.core.chat import ChatClient, ChatLog, LocalChatStore
from siakdesk.core.config import Settings
from siakdesk.core.events import StateChanged
from siakdesk.core.link import LinkTap
from siakdesk.core.meetingsession import JoinError, MeetingSession, SessionConfig
from siakdesk.core.protocol import ParticipantInfo
from siakdesk.core.remotetrack import RemoteTrack
from siakdesk.core.signaling import ServerEndpoint
from siakdesk.media.audiomixer import AudioMixer
from siakdesk.media.audioprocessing import AudioProcessor, ProcessedMicrophone
from siakdesk.media.devices import DeviceProvider
from siakdesk.ui.agendapanel import AgendaPanel, write_attendance
from siakdesk.ui.chatpanel import ChatPanel
from siakdesk.ui.devicedialog import DeviceDialog, level_of, level_percent
from siakdesk.ui.joinscreen import JoinRequest, JoinScreen
from siakdesk.ui.keepawake import KeepAwake
from siakdesk.ui.meetingview import MeetingView
from siakdesk.ui.sessionadapter import SessionAdapter

logger = logging.getLogger(__name__)

# Type size and tile labels in room mode, readable from across a meeting room.
ROOM_MODE_SCALE = 1.6


class MainWindow(QMainWindow):
    # the window was closed and everything it owned released
    closed = Signal()

    def __init__(
        self,
        settings: Settings,
        devices: DeviceProvider,
        remember: bool = True,
        parent: QWidget | None = None,
        data_dir: Path | None = None,
    ) -> None:
        super().__init__(parent)
        self.settings = settings
        #: where the local chat copy and notes live; None and not remembering: memory only
        self.data_dir = data_dir
        if data_dir is None and remember:
            self.data_dir = Path(platformdirs.user_data_dir("siakdesk", appauthor=False))
        self.devices = devices
        self.remember = remember
        self.session: MeetingSession | None = None
        self.adapter: SessionAdapter | None = None
        self.mixer: AudioMixer | None = None
        #: an emulated link for the window's session (the network lab; None: the real network)
        self.link: LinkTap | None = None
        self.chat_store: LocalChatStore | None = None
        self.chat: ChatClient | None = None
        self.agenda: AgendaClient | None = None
        #: asks where to save the attendance CSV (a file dialog; tests answer themselves)
        self.choose_export_path: Callable[[], Path | None] = self._ask_export_path
        self._self_frame: object | None = None
        self._processor: AudioProcessor | None = None
        #: the OS is asked not to sleep or blank the screen during a meeting
        self.keep_awake = KeepAwake()
        self.device_dialog: DeviceDialog | None = None

        self.stack = QStackedWidget(self)
        self.join_screen = JoinScreen(self.stack)
        self.meeting_view = MeetingView(self.stack)
        self.stack.addWidget(self.join_screen)
        self.stack.addWidget(self.meeting_view)
        self.setCentralWidget(self.stack)
        self.chat_panel = ChatPanel(self)
        self.chat_dock = QDockWidget(self)
        self.chat_dock.setObjectName("chatDock")
        self.chat_dock.setWidget(self.chat_panel)
        self.agenda_panel = AgendaPanel(self)
        self.agenda_dock = QDockWidget(self)
        self.agenda_dock.setObjectName("agendaDock")
        self.agenda_dock.setWidget(self.agenda_panel)
        for dock in (self.agenda_dock, self.chat_dock):
            dock.setFeatures(
                QDockWidget.DockWidgetFeature.DockWidgetClosable
                | QDockWidget.DockWidgetFeature.DockWidgetMovable
            )
            self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)
            dock.hide()  # shown in a meeting
        self.resize(1100, 700)
        if settings["room_mode"]:
            self.meeting_view.set_scale(ROOM_MODE_SCALE)

        self.ticker = QTimer(self)
        self.ticker.setInterval(150)
        self._connect_signals()
        self.retranslate()
        self.join_screen.fill(
            settings["server_url"],
            settings["room"],
            settings["passcode"],
            settings["display_name"],
            settings["office"],
        )

    def _connect_signals(self) -> None:
        self.join_screen.joinRequested.connect(self.on_join_requested)
        self.join_screen.devicesRequested.connect(self.on_devices_requested)
        self.meeting_view.muteToggled.connect(self.on_mute_toggled)
        self.meeting_view.cameraToggled.connect(self.on_camera_toggled)
        self.meeting_view.leaveRequested.connect(self.on_leave_requested)
        self.meeting_view.devicesRequested.connect(self.on_devices_requested)
        self.meeting_view.data_saver_button.setChecked(bool(self.settings["data_saver"]))
        self.meeting_view.dataSaverToggled.connect(self.on_data_saver_toggled)
        self.ticker.timeout.connect(self.on_tick)
        self.chat_panel.sendRequested.connect(self.on_chat_send)
        self.chat_panel.unreadChanged.connect(self.on_unread_changed)
        self.chat_dock.visibilityChanged.connect(self.chat_panel.set_reading)
        self.agenda_panel.actionRequested.connect(self.on_agenda_action)

    def retranslate(self) -> None:
        self.setWindowTitle(self.tr("SiakDesk · Siak Regency meeting"))
        self.agenda_dock.setWindowTitle(self.tr("Agenda"))
        self.on_unread_changed(self.chat.unread if self.chat is not None else 0)

    @property
    def configured(self) -> bool:
        """Enough configuration to join without asking anything."""
        return bool(
            self.settings["server_url"]
            and (self.settings["display_name"] or self.settings["office"])
        )

    def request_from_settings(self) -> JoinRequest:
        s = self.settings
        return JoinRequest(
            s["server_url"], s["room"], s["passcode"], s["display_name"], s["office"]
        )

    # -- joining and leaving -------------------------------------------------------

    async def join(self, request: JoinRequest) -> bool:
        """Join the meeting ``request`` names; show why not on the join screen if it fails."""
        endpoint = ServerEndpoint(
            request.server_url,
            tls_fingerprint=self.settings["tls_fingerprint"] or None,
            ca_file=self.settings["ca_file"] or None,
        )
        name = request.display_name or request.office
        microphone = self.devices.open_microphone()
        processor = None
        if microphone is not None and self.settings["echo_cancellation"]:
            processor = AudioProcessor()
            microphone = ProcessedMicrophone(microphone, processor)
        self._processor = processor
        session = MeetingSession(
            SessionConfig(
                endpoint,
                request.room,
                name,
                request.office,
                request.passcode,
                host_passcode=self.settings["host_passcode"],
                link=self.link,
                data_saver=self.meeting_view.data_saver_button.isChecked(),
            ),
            audio=microphone,
            video=self.devices.open_camera(),
        )
        self.session = session
        self.adapter = SessionAdapter(session, self)
        self.adapter.stateChanged.connect(self.on_state_changed)
        self.adapter.participantJoined.connect(self.meeting_view.add_participant)
        self.adapter.participantUpdated.connect(self.meeting_view.update_participant)
        self.adapter.participantLeft.connect(self.on_participant_left)
        self.adapter.trackAdded.connect(self.on_track_added)
        self.adapter.trackRemoved.connect(self.on_track_removed)
        self.adapter.reconnectAttempt.connect(self.on_reconnect_attempt)
        self.mixer = AudioMixer(
            self.devices.open_speaker(),
            on_played=processor.process_playback if processor is not None else None,
        )
        self.chat_store = LocalChatStore(self._store_path(request))
        self.chat = ChatClient(session, ChatLog(self.chat_store))
        self.agenda = AgendaClient(session, self.chat_store)
        self.chat_panel.set_client(self.chat)
        self.agenda_panel.set_client(self.agenda)
        self.stack.setCurrentWidget(self.meeting_view)
        self.agenda_dock.show()
        self.chat_dock.show()
        self.meeting_view.set_self(
            ParticipantInfo("self", name, request.office),
            has_audio="audio" in session.local,
            has_video="video" in session.local,
        )
        self.ticker.start()
        self.keep_awake.acquire()
        try:
            await session.join()
        except JoinError as exc:
            await self.leave()
            self.join_screen.show_error(self.describe_error(exc.code, exc.message))
            return False
        if self.remember:
            try:
                config.save_user_values(
                    {
                        "server_url": request.server_url,
                        "room": request.room,
                        "display_name": request.display_name,
                        "office": request.office,
                    }
                )
            except (OSError, ValueError) as exc:
                logger.warning("could not remember the meeting: %s", exc)
        return True

    async def leave(self) -> None:
        """Leave (if in a meeting) and release the session, devices and tiles; idempotent."""
        self.ticker.stop()
        self.keep_awake.release()
        session, self.session = self.session, None
        if self.adapter is not None:
            self.adapter.detach()
            self.adapter.deleteLater()
            self.adapter = None
        if session is not None:
            await session.leave()
            for track in session.local.values():
                track.stop()
        if self.mixer is not None:
            await self.mixer.close()
            self.mixer = None
        self.chat_panel.set_client(None)
        self.agenda_panel.set_client(None)
        for client in (self.chat, self.agenda):
            if client is not None:
                client.close()
        self.chat = self.agenda = None
        if self.chat_store is not None:
            self.chat_store.close()
            self.chat_store = None
        self.chat_dock.hide()
        self.agenda_dock.hide()
        await self.meeting_view.clear()
        self.stack.setCurrentWidget(self.join_screen)
        self.join_screen.set_busy(False)

    def describe_error(self, code: str, message: str) -> str:
        texts = {
            "wrong_passcode": self.tr("Wrong passcode for this room."),
            "unknown_room": self.tr("There is no such room on this server."),
            "room_full": self.tr("The room is full."),
            "unreachable": self.tr("Cannot reach the server. Check the address and the network."),
            "tls": self.tr("The server's certificate is not trusted."),
            "timeout": self.tr("The server did not answer in time."),
        }
        return texts.get(code, self.tr("Could not join: {reason}").format(reason=message))

    # -- slots ---------------------------------------------------------------------

    @asyncSlot(object)
    async def on_join_requested(self, request: JoinRequest) -> None:
        await self.join(request)

    @asyncSlot()
    async def on_leave_requested(self) -> None:
        await self.leave()

    @asyncSlot(bool)
    async def on_mute_toggled(self, muted: bool) -> None:
        if self.session is not None:
            await self.session.set_muted("audio", muted)

    @asyncSlot(bool)
    async def on_camera_toggled(self, off: bool) -> None:
        if self.session is not None:
            await self.session.set_muted("video", off)

    def on_state_changed(self, event: StateChanged) -> None:
        self.meeting_view.set_state(event.new, event.reason)

    def _store_path(self, request: JoinRequest) -> str:
        """One local chat file per server and room (the same room on another server differs)."""
        if self.data_dir is None:
            return ":memory:"
        key = hashlib.sha256(f"{request.server_url}\n{request.room}".encode()).hexdigest()[:16]
        return str(self.data_dir / "chat" / f"{request.room}-{key}.sqlite3")

    @asyncSlot(str)
    async def on_chat_send(self, text: str) -> None:
        if self.chat is None:
            return
        try:
            await self.chat.send(text)
        except ValueError as exc:
            self.chat_panel.show_error(self.tr("Not sent: {reason}").format(reason=exc))

    def on_unread_changed(self, unread: int) -> None:
        title = self.tr("Chat")
        if unread:
            title = self.tr("Chat ({count} new)").format(count=unread)
        self.chat_dock.setWindowTitle(title)

    @asyncSlot(str, str)
    async def on_agenda_action(self, action: str, item_id: str) -> None:
        agenda = self.agenda
        if agenda is None:
            return
        try:
            if action == "template":
                await agenda.use_template()
            elif action == "next":
                await agenda.next_item()
            elif action in ("up", "down") and item_id:
                await agenda.move(item_id, -1 if action == "up" else 1)
            elif action == "export":
                await self.export_attendance()
        except PermissionError:
            self.agenda_panel.current.setText(self.tr("Only the host can change the agenda."))

    async def export_attendance(self) -> Path | None:
        """Fetch the attendance CSV from the server and save it where the host says."""
        agenda = self.agenda
        if agenda is None:
            return None
        agenda.attendance_csv = None
        arrived = asyncio.Event()
        remove = agenda.add_listener(lambda: arrived.set() if agenda.attendance_csv else None)
        await agenda.request_attendance()
        try:
            await asyncio.wait_for(arrived.wait(), 10)
        except TimeoutError:
            self.agenda_panel.current.setText(self.tr("The server did not send the attendance."))
            return None
        finally:
            remove()
        path = self.choose_export_path()
        if path is None or agenda.attendance_csv is None:
            return None
        write_attendance(path, agenda.attendance_csv)
        return path

    def _ask_export_path(self) -> Path | None:
        name, _ = QFileDialog.getSaveFileName(
            self, self.tr("Save attendance"), "kehadiran.csv", self.tr("CSV files (*.csv)")
        )
        return Path(name) if name else None

    @asyncSlot()
    async def on_devices_requested(self) -> None:
        await self.open_device_settings()

    async def open_device_settings(self) -> bool:
        """The device dialog with its live preview; apply what the user chose."""
        if self.device_dialog is not None:
            self.device_dialog.raise_()
            return False
        dialog = DeviceDialog(self.devices, self)
        self.device_dialog = dialog
        finished: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        def on_finished(result: int) -> None:
            if not finished.done():
                finished.set_result(result)

        dialog.finished.connect(on_finished)
        dialog.open()
        dialog.start_preview()
        try:
            result = await finished
        finally:
            await dialog.stop_preview()
            self.device_dialog = None
            dialog.deleteLater()
        if result != QDialog.DialogCode.Accepted:
            return False
        await self.apply_devices(*dialog.choice())
        return True

    async def apply_devices(self, camera: int, microphone: str, speaker: str) -> None:
        """Use these devices from now on, in the meeting too, and remember them."""
        self.devices = self.devices.with_choice(camera, microphone, speaker)
        session = self.session
        if session is not None:
            gates = session.local
            if "video" in gates:
                track = self.devices.open_camera()
                if track is not None:
                    gates["video"].replace_source(track)
            if "audio" in gates:
                mic = self.devices.open_microphone()
                if mic is not None:
                    if self._processor is not None:
                        mic = ProcessedMicrophone(mic, self._processor)
                    gates["audio"].replace_source(mic)
            if self.mixer is not None:
                self.mixer.set_sink(self.devices.open_speaker())
        if self.remember:
            try:
                config.save_user_values(
                    {"camera": camera, "microphone": microphone, "speaker": speaker}
                )
            except (OSError, ValueError) as exc:
                logger.warning("could not remember the devices: %s", exc)

    def on_data_saver_toggled(self, on: bool) -> None:
        """Data saver ("hemat data"): applies to the meeting at once and is remembered."""
        if self.session is not None:
            self.session.set_data_saver(on)
        if self.remember:
            try:
                config.save_user_values({"data_saver": on})
            except (OSError, ValueError) as exc:
                logger.warning("could not remember the data saver: %s", exc)

    def on_reconnect_attempt(self, attempt: int, reason: str) -> None:
        self.meeting_view.set_reconnect_attempt(attempt)

    def on_track_added(self, track: RemoteTrack) -> None:
        if track.kind == "video":
            self.meeting_view.attach_track(track)
        elif self.mixer is not None:
            self.meeting_view.add_participant(track.participant)
            self.mixer.add(track.participant.id, track)

    def on_track_removed(self, track: RemoteTrack) -> None:
        if track.kind == "video":
            self.meeting_view.detach_track(track)
        elif self.mixer is not None:
            self.mixer.remove(track.participant.id)

    @asyncSlot(object, str)
    async def on_participant_left(self, info: ParticipantInfo, reason: str) -> None:
        if self.mixer is not None:
            self.mixer.remove(info.id)
        await self.meeting_view.remove_participant(info.id)

    def on_tick(self) -> None:
        """Active speaker, self-view and the reconnect banner, a few times a second."""
        if self.mixer is not None:
            self.meeting_view.set_active_speaker(self.mixer.loudest())
        session, tile = self.session, self.meeting_view.self_tile
        silent = None
        if session is not None and session.last_media_at is not None:
            silent = time.monotonic() - session.last_media_at
            self.meeting_view.set_media_silence(silent)
        self.meeting_view.set_quality(silent)
        audio = session.local.get("audio") if session is not None else None
        level = 0
        if audio is not None and not audio.muted and isinstance(audio.last_frame, av.AudioFrame):
            level = level_percent(level_of(audio.last_frame))
        self.meeting_view.mic_level.setValue(level)
        self.agenda_panel.tick()
        if session is not None and tile is not None and "video" in session.local:
            frame = session.local["video"].last_frame
            if frame is not None and frame is not self._self_frame and not tile.info.video_muted:
                self._self_frame = frame
                tile.show_frame(frame)  # type: ignore[arg-type]

    @asyncClose
    async def closeEvent(self, event: QCloseEvent) -> None:
        await self.leave()
        self.closed.emit()
