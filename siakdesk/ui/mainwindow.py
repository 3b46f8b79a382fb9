"""The application window: the join screen or the meeting, and what connects them.

The window drives a :class:`MeetingSession` and renders its events (through a
:class:`SessionAdapter`); it never talks to the network itself. It owns the
session, the audio mixer and the local devices for as long as it is in a
meeting, and releases all of them when it leaves.
"""

from __future__ import annotations

import logging
import time

from PySide6.QtCore import QTimer, Signal
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import QMainWindow, QStackedWidget, QWidget
from qasync import asyncClose, asyncSlot

from siakdesk.core import config
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
from siakdesk.ui.joinscreen import JoinRequest, JoinScreen
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
    ) -> None:
        super().__init__(parent)
        self.settings = settings
        self.devices = devices
        self.remember = remember
        self.session: MeetingSession | None = None
        self.adapter: SessionAdapter | None = None
        self.mixer: AudioMixer | None = None
        #: an emulated link for the window's session (the network lab; None: the real network)
        self.link: LinkTap | None = None
        self._self_frame: object | None = None

        self.stack = QStackedWidget(self)
        self.join_screen = JoinScreen(self.stack)
        self.meeting_view = MeetingView(self.stack)
        self.stack.addWidget(self.join_screen)
        self.stack.addWidget(self.meeting_view)
        self.setCentralWidget(self.stack)
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
        self.meeting_view.muteToggled.connect(self.on_mute_toggled)
        self.meeting_view.cameraToggled.connect(self.on_camera_toggled)
        self.meeting_view.leaveRequested.connect(self.on_leave_requested)
        self.ticker.timeout.connect(self.on_tick)

    def retranslate(self) -> None:
        self.setWindowTitle(self.tr("SiakDesk · Siak Regency meeting"))

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
        session = MeetingSession(
            SessionConfig(
                endpoint, request.room, name, request.office, request.passcode, link=self.link
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
        self.stack.setCurrentWidget(self.meeting_view)
        self.meeting_view.set_self(
            ParticipantInfo("self", name, request.office),
            has_audio="audio" in session.local,
            has_video="video" in session.local,
        )
        self.ticker.start()
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
        if session is not None and session.last_media_at is not None:
            self.meeting_view.set_media_silence(time.monotonic() - session.last_media_at)
        if session is not None and tile is not None and "video" in session.local:
            frame = session.local["video"].last_frame
            if frame is not None and frame is not self._self_frame and not tile.info.video_muted:
                self._self_frame = frame
                tile.show_frame(frame)  # type: ignore[arg-type]

    @asyncClose
    async def closeEvent(self, event: QCloseEvent) -> None:
        await self.leave()
        self.closed.emit()
