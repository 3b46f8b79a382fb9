"""The meeting: a grid of participant tiles, a control bar and a status line.

Grid view shows everyone in equal tiles (columns = ceil(sqrt(n))); speaker view
gives the active speaker (or, when nobody speaks, the first remote participant)
most of the space and puts the others in a strip below it.
"""

from __future__ import annotations

import math

import msgspec
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from siakdesk.core.events import SessionState
from siakdesk.core.protocol import ParticipantInfo
from siakdesk.core.remotetrack import RemoteTrack
from siakdesk.ui.participanttile import ParticipantTile


class MeetingView(QWidget):
    muteToggled = Signal(bool)  # True: mute the microphone
    cameraToggled = Signal(bool)  # True: turn the camera off
    leaveRequested = Signal()
    devicesRequested = Signal()
    #: "hemat data" switched on (True) or off
    dataSaverToggled = Signal(bool)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.tiles: dict[str, ParticipantTile] = {}
        self.self_tile: ParticipantTile | None = None
        self.speaker_view = False
        self.active_speaker: str | None = None
        self.scale = 1.0
        self._state = SessionState.IDLE
        self._state_detail = ""

        self.status = QLabel(self)
        self.status.setObjectName("status")
        #: what the user sees while the session gets back into the meeting by itself
        self.banner = QLabel(self)
        self.banner.setObjectName("reconnectBanner")
        self.banner.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.banner.setWordWrap(True)
        self.banner.setStyleSheet(
            "#reconnectBanner { background: #8a5a00; color: white; padding: 8px;"
            " font-weight: bold; }"
        )
        self.banner.hide()
        self.reconnect_attempt = 0
        self.reconnects = 0
        self.media_silent_s: float | None = None
        self.grid_host = QWidget(self)
        self.grid = QGridLayout(self.grid_host)
        self.grid.setSpacing(6)
        self.grid.setContentsMargins(6, 6, 6, 6)

        self.mute_button = QPushButton(self)
        self.mute_button.setCheckable(True)
        self.camera_button = QPushButton(self)
        self.camera_button.setCheckable(True)
        self.view_button = QPushButton(self)
        self.view_button.setCheckable(True)
        self.devices_button = QPushButton(self)
        self.data_saver_button = QPushButton(self)
        self.data_saver_button.setCheckable(True)
        self.leave_button = QPushButton(self)
        self.leave_button.setObjectName("leave")
        #: the microphone's level, so a user sees at once that the office is heard
        self.mic_level = QProgressBar(self)
        self.mic_level.setRange(0, 100)
        self.mic_level.setTextVisible(False)
        self.mic_level.setFixedWidth(90)
        self.mic_level.setMaximumHeight(12)
        #: the link, as the session measures it: good, weak or lost
        self.quality = QLabel(self)
        self.quality.setObjectName("quality")

        controls = QHBoxLayout()
        controls.addWidget(self.quality)
        controls.addStretch(1)
        controls.addWidget(self.mic_level)
        for button in (
            self.mute_button,
            self.camera_button,
            self.view_button,
            self.devices_button,
            self.data_saver_button,
            self.leave_button,
        ):
            button.setMinimumHeight(40)
            controls.addWidget(button)
        controls.addStretch(1)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 8)
        layout.addWidget(self.status)
        layout.addWidget(self.banner)
        layout.addWidget(self.grid_host, 1)
        layout.addLayout(controls)

        self.shortcuts = {
            "mute": QShortcut(QKeySequence("Ctrl+D"), self),
            "camera": QShortcut(QKeySequence("Ctrl+E"), self),
            "view": QShortcut(QKeySequence("Ctrl+T"), self),
            "leave": QShortcut(QKeySequence("Ctrl+Shift+Q"), self),
        }
        self._connect_signals()
        self.retranslate()
        self.set_state(SessionState.IDLE)

    def _connect_signals(self) -> None:
        self.mute_button.toggled.connect(self.on_mute_toggled)
        self.camera_button.toggled.connect(self.on_camera_toggled)
        self.view_button.toggled.connect(self.on_view_toggled)
        self.leave_button.clicked.connect(self.leaveRequested)
        self.devices_button.clicked.connect(self.devicesRequested)
        self.data_saver_button.toggled.connect(self.dataSaverToggled)
        self.shortcuts["mute"].activated.connect(self.mute_button.toggle)
        self.shortcuts["camera"].activated.connect(self.camera_button.toggle)
        self.shortcuts["view"].activated.connect(self.view_button.toggle)
        self.shortcuts["leave"].activated.connect(self.leave_button.click)

    def retranslate(self) -> None:
        muted, camera_off = self.mute_button.isChecked(), self.camera_button.isChecked()
        self.mute_button.setText(self.tr("Unmute") if muted else self.tr("Mute"))
        self.mute_button.setToolTip(self.tr("Microphone on or off (Ctrl+D)"))
        self.camera_button.setText(
            self.tr("Start camera") if camera_off else self.tr("Stop camera")
        )
        self.camera_button.setToolTip(self.tr("Camera on or off (Ctrl+E)"))
        self.view_button.setText(
            self.tr("Grid view") if self.view_button.isChecked() else self.tr("Speaker view")
        )
        self.view_button.setToolTip(self.tr("Enlarge whoever is speaking (Ctrl+T)"))
        self.data_saver_button.setText(self.tr("Data saver"))
        self.data_saver_button.setToolTip(
            self.tr("Send video no larger than 320x180, to save the data quota")
        )
        self.devices_button.setText(self.tr("Devices"))
        self.devices_button.setToolTip(self.tr("Choose camera, microphone and speaker"))
        self.mic_level.setToolTip(self.tr("Microphone level"))
        self.leave_button.setText(self.tr("Leave"))
        self.leave_button.setToolTip(self.tr("Leave the meeting (Ctrl+Shift+Q)"))

    # -- slots -----------------------------------------------------------------

    def on_mute_toggled(self, muted: bool) -> None:
        self.retranslate()
        if self.self_tile is not None:
            info = msgspec.structs.replace(self.self_tile.info, audio_muted=muted)
            self.self_tile.update_info(info)
        self.muteToggled.emit(muted)

    def on_camera_toggled(self, off: bool) -> None:
        self.retranslate()
        if self.self_tile is not None:
            info = msgspec.structs.replace(self.self_tile.info, video_muted=off)
            self.self_tile.update_info(info)
        self.cameraToggled.emit(off)

    def on_view_toggled(self, speaker_view: bool) -> None:
        self.speaker_view = speaker_view
        self.retranslate()
        self.relayout()

    # -- participants ------------------------------------------------------------

    def set_self(self, info: ParticipantInfo, has_audio: bool, has_video: bool) -> ParticipantTile:
        self.self_tile = ParticipantTile(info, is_self=True, parent=self.grid_host)
        self.self_tile.set_scale(self.scale)
        self.mute_button.setEnabled(has_audio)
        self.camera_button.setEnabled(has_video)
        self.relayout()
        return self.self_tile

    def add_participant(self, info: ParticipantInfo) -> ParticipantTile:
        tile = self.tiles.get(info.id)
        if tile is None:
            tile = ParticipantTile(info, parent=self.grid_host)
            tile.set_scale(self.scale)
            self.tiles[info.id] = tile
            self.relayout()
        return tile

    def update_participant(self, info: ParticipantInfo) -> None:
        tile = self.tiles.get(info.id)
        if tile is not None:
            tile.update_info(info)

    async def remove_participant(self, participant_id: str) -> None:
        tile = self.tiles.pop(participant_id, None)
        if tile is not None:
            await tile.release()
            self.grid.removeWidget(tile)
            tile.hide()
            tile.deleteLater()
            if self.active_speaker == participant_id:
                self.active_speaker = None
            self.relayout()

    def attach_track(self, track: RemoteTrack) -> None:
        if track.kind == "video":
            self.add_participant(track.participant).attach_video(track)

    def detach_track(self, track: RemoteTrack) -> None:
        tile = self.tiles.get(track.participant.id)
        if tile is not None and track.kind == "video":
            tile.detach_video()

    def set_active_speaker(self, participant_id: str | None) -> None:
        if participant_id == self.active_speaker:
            return
        self.active_speaker = participant_id
        for pid, tile in self.tiles.items():
            tile.set_speaking(pid == participant_id)
        if self.speaker_view:
            self.relayout()

    def set_scale(self, scale: float) -> None:
        self.scale = scale
        font = self.font()
        font.setPointSizeF(max(9.0, 10 * scale))
        self.setFont(font)
        for tile in self.all_tiles():
            tile.set_scale(scale)

    def all_tiles(self) -> list[ParticipantTile]:
        tiles = list(self.tiles.values())
        if self.self_tile is not None:
            tiles.append(self.self_tile)
        return tiles

    def relayout(self) -> None:
        self._show_state()  # the participant count changes with the tiles
        while self.grid.count():
            self.grid.takeAt(0)
        for row in range(self.grid.rowCount()):
            self.grid.setRowStretch(row, 0)
        tiles = self.all_tiles()
        if not tiles:
            return
        if self.speaker_view and len(tiles) > 1:
            main = self.tiles.get(self.active_speaker or "") or next(
                iter(self.tiles.values()), tiles[0]
            )
            others = [t for t in tiles if t is not main]
            self.grid.addWidget(main, 0, 0, 1, max(1, len(others)))
            for column, tile in enumerate(others):
                self.grid.addWidget(tile, 1, column)
            self.grid.setRowStretch(0, 4)
            self.grid.setRowStretch(1, 1)
        else:
            columns = math.ceil(math.sqrt(len(tiles)))
            for index, tile in enumerate(tiles):
                self.grid.addWidget(tile, index // columns, index % columns)
                self.grid.setRowStretch(index // columns, 1)
        for tile in tiles:
            tile.show()

    # -- status ------------------------------------------------------------------

    def set_state(self, state: SessionState, detail: str = "") -> None:
        if state is SessionState.RECONNECTING and self._state is not state:
            self.reconnects += 1
            self.reconnect_attempt = 0
        self._state, self._state_detail = state, detail
        self._show_state()

    def set_reconnect_attempt(self, attempt: int) -> None:
        self.reconnect_attempt = attempt
        self._show_state()

    def set_quality(self, silent_s: float | None) -> None:
        """A simple indicator from how long ago media last arrived."""
        if self._state is not SessionState.JOINED or silent_s is None:
            text, colour = "", "#777777"
        elif silent_s < 1.0:
            text, colour = self.tr("● Connection good"), "#1e8e3e"
        elif silent_s < 3.0:
            text, colour = self.tr("● Connection weak"), "#c77700"
        else:
            text, colour = self.tr("● No media arriving"), "#b00020"
        self.quality.setText(text)
        self.quality.setStyleSheet(f"#quality {{ color: {colour}; padding-left: 8px; }}")

    def set_media_silence(self, seconds: float | None) -> None:
        """Seconds since media last arrived (shown while reconnecting)."""
        self.media_silent_s = seconds
        if self._state is SessionState.RECONNECTING:
            self._show_banner()

    def _show_banner(self) -> None:
        if self._state is not SessionState.RECONNECTING:
            self.banner.hide()
            return
        if self.reconnect_attempt:
            lines = [self.tr("Reconnecting... attempt {n}").format(n=self.reconnect_attempt)]
        else:
            lines = [self.tr("Reconnecting...")]
        if self.media_silent_s is not None:
            lines.append(
                self.tr("last media {seconds} s ago").format(seconds=round(self.media_silent_s))
            )
        lines.append(self.tr("connection lost {count} times so far").format(count=self.reconnects))
        self.banner.setText(" · ".join(lines))
        self.banner.setToolTip(self._state_detail)
        self.banner.show()

    def _show_state(self) -> None:
        texts = {
            SessionState.IDLE: self.tr("Not connected"),
            SessionState.CONNECTING: self.tr("Connecting to the server..."),
            SessionState.JOINING: self.tr("Joining the meeting..."),
            SessionState.JOINED: self.tr("In the meeting · {count} participants"),
            SessionState.RECONNECTING: self.tr("Connection lost; getting back in by itself"),
            SessionState.LEFT: self.tr("You left the meeting"),
            SessionState.FAILED: self.tr("Connection lost: {detail}"),
        }
        text = texts[self._state].format(count=len(self.tiles) + 1, detail=self._state_detail)
        if self._state is SessionState.JOINED and self.reconnects:
            text += " · " + self.tr("reconnects: {count}").format(count=self.reconnects)
        self.status.setText(text)
        self._show_banner()
        self.status.setAlignment(Qt.AlignmentFlag.AlignCenter)

    async def clear(self) -> None:
        self.reconnects = self.reconnect_attempt = 0
        self.media_silent_s = None
        for pid in list(self.tiles):
            await self.remove_participant(pid)
        if self.self_tile is not None:
            await self.self_tile.release()
            self.grid.removeWidget(self.self_tile)
            self.self_tile.hide()
            self.self_tile.deleteLater()
            self.self_tile = None
