"""Device settings: choose camera, microphone and speaker, with a live preview.

The preview is the pre-join check a user expects: the chosen camera's picture
and the chosen microphone's level, from the devices themselves (opened for the
dialog and closed with it).  A PC without a camera or microphone shows that
plainly; it is not an error.
"""

from __future__ import annotations

import asyncio
import contextlib

import av
import numpy as np
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError
from PySide6.QtCore import Qt
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QProgressBar,
    QVBoxLayout,
    QWidget,
)

from siakdesk.media.devices import Device, DeviceProvider
from siakdesk.ui.participanttile import frame_to_image


def level_of(frame: av.AudioFrame) -> float:
    """RMS level of a 16-bit frame, 0..1."""
    samples = frame.to_ndarray().astype(np.float32)
    return float(np.sqrt(np.mean(samples**2)) / 32768) if samples.size else 0.0


def level_percent(level: float) -> int:
    """A meter that moves for speech: -60 dBFS..0 dBFS mapped to 0..100."""
    if level <= 1e-6:
        return 0
    return int(max(0.0, min(100.0, (20 * np.log10(level) + 60) / 60 * 100)))


class DeviceDialog(QDialog):
    def __init__(self, devices: DeviceProvider, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.devices = devices
        self.camera = QComboBox(self)
        self.microphone = QComboBox(self)
        self.speaker = QComboBox(self)
        self.preview = QLabel(self)
        self.preview.setMinimumSize(320, 180)
        self.preview.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.preview.setStyleSheet("background: #1f2329; color: white;")
        self.level = QProgressBar(self)
        self.level.setRange(0, 100)
        self.level.setTextVisible(False)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self
        )
        form = QFormLayout()
        self.camera_label = QLabel(self)
        self.microphone_label = QLabel(self)
        self.speaker_label = QLabel(self)
        self.level_label = QLabel(self)
        form.addRow(self.camera_label, self.camera)
        form.addRow(self.microphone_label, self.microphone)
        form.addRow(self.level_label, self.level)
        form.addRow(self.speaker_label, self.speaker)
        layout = QVBoxLayout(self)
        layout.addWidget(self.preview)
        layout.addLayout(form)
        layout.addWidget(self.buttons)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self._tracks: dict[str, MediaStreamTrack] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self.frames_shown = 0
        self.retranslate()
        self._fill(self.camera, devices.cameras(), devices.camera_index, self.tr("No camera"))
        self._fill(
            self.microphone,
            devices.microphones(),
            devices.microphone_device,
            self.tr("No microphone"),
        )
        self._fill(self.speaker, devices.speakers(), devices.speaker_device, self.tr("No speaker"))
        self.camera.currentIndexChanged.connect(lambda _i: self._preview("video"))
        self.microphone.currentIndexChanged.connect(lambda _i: self._preview("audio"))

    def retranslate(self) -> None:
        self.setWindowTitle(self.tr("Devices"))
        self.camera_label.setText(self.tr("&Camera"))
        self.microphone_label.setText(self.tr("&Microphone"))
        self.level_label.setText(self.tr("Level"))
        self.speaker_label.setText(self.tr("&Speaker"))
        for label, box in (
            (self.camera_label, self.camera),
            (self.microphone_label, self.microphone),
            (self.speaker_label, self.speaker),
        ):
            label.setBuddy(box)

    def _fill(
        self, box: QComboBox, devices: list[Device], chosen: int | str | None, none: str
    ) -> None:
        if not devices:
            box.addItem(none, None)
            box.setEnabled(False)
            return
        for device in devices:
            box.addItem(device.label, device.key)
        index = box.findData(chosen) if chosen is not None else 0
        box.setCurrentIndex(max(0, index))

    def choice(self) -> tuple[int, str, str]:
        """(camera index, microphone name, speaker name) as chosen; '' for the default."""
        camera = self.camera.currentData()
        return (
            int(camera) if isinstance(camera, int) else 0,
            str(self.microphone.currentData() or ""),
            str(self.speaker.currentData() or ""),
        )

    # -- preview -------------------------------------------------------------------

    def start_preview(self) -> None:
        """Open the chosen camera and microphone for the preview (needs a running loop)."""
        self._preview("video")
        self._preview("audio")

    def _preview(self, kind: str) -> None:
        self._stop(kind)
        box = self.camera if kind == "video" else self.microphone
        if box.currentData() is None:
            if kind == "video":
                self.preview.setText(self.tr("No camera: you join with audio only"))
            return
        probe = self.devices.with_choice(*self.choice())
        track = probe.open_camera() if kind == "video" else probe.open_microphone()
        if track is None:
            return
        self._tracks[kind] = track
        self._tasks[kind] = asyncio.ensure_future(self._pump(kind, track))

    async def _pump(self, kind: str, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                if kind == "video" and isinstance(frame, av.VideoFrame):
                    image = frame_to_image(frame)
                    self.preview.setPixmap(
                        QPixmap.fromImage(image).scaled(
                            self.preview.size(),
                            Qt.AspectRatioMode.KeepAspectRatio,
                            Qt.TransformationMode.SmoothTransformation,
                        )
                    )
                    self.frames_shown += 1
                elif isinstance(frame, av.AudioFrame):
                    self.level.setValue(level_percent(level_of(frame)))

    def _stop(self, kind: str) -> None:
        task = self._tasks.pop(kind, None)
        if task is not None:
            task.cancel()
        track = self._tracks.pop(kind, None)
        if track is not None:
            track.stop()

    async def stop_preview(self) -> None:
        tasks = list(self._tasks.values())
        for kind in ("video", "audio"):
            self._stop(kind)
        await asyncio.gather(*tasks, return_exceptions=True)
