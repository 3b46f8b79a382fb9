"""One participant in the grid: their video, or their initials, with name and office."""

from __future__ import annotations

import asyncio
import contextlib

import av
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from siakdesk.core.protocol import ParticipantInfo
from siakdesk.media.synthetic import identity_of


def initials(name: str) -> str:
    words = [w for w in name.replace("-", " ").split() if w[:1].isalnum()]
    if not words:
        return "?"
    if len(words) == 1:
        return words[0][:2].upper()
    return (words[0][0] + words[-1][0]).upper()


def frame_to_image(frame: av.VideoFrame) -> QImage:
    array = frame.to_ndarray(format="rgb24")
    height, width = array.shape[:2]
    return QImage(array.data, width, height, 3 * width, QImage.Format.Format_RGB888).copy()


class ParticipantTile(QWidget):
    """Draws itself: the latest picture scaled to fit, or a coloured disc with initials."""

    def __init__(
        self, info: ParticipantInfo, is_self: bool = False, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.info = info
        self.is_self = is_self
        self.speaking = False
        self.image: QImage | None = None
        self.frames_shown = 0
        self.scale = 1.0
        self._video_task: asyncio.Task[None] | None = None
        self._video_track: MediaStreamTrack | None = None
        self.setMinimumSize(160, 90)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setAccessibleName(info.name)

    # -- state ---------------------------------------------------------------

    @property
    def reconnecting(self) -> bool:
        return self.info.connection == "reconnecting"

    @property
    def video_paused(self) -> bool:
        """The server paused this video for our link (see siakdesk.server.downlink)."""
        return bool(getattr(self._video_track, "paused", False))

    def update_info(self, info: ParticipantInfo) -> None:
        self.info = info
        if info.video_muted or self.reconnecting or self.video_paused:
            self.image = None  # never a frozen picture of someone who is not there
        self.update()

    def set_speaking(self, speaking: bool) -> None:
        if speaking != self.speaking:
            self.speaking = speaking
            self.update()

    def set_scale(self, scale: float) -> None:
        """Larger type for a meeting room, readable from across the room."""
        self.scale = scale
        self.update()

    @property
    def has_video(self) -> bool:
        return self._video_task is not None

    def attach_video(self, track: MediaStreamTrack) -> None:
        """Show ``track``'s pictures from now on (the tile owns the reading task)."""
        self.detach_video()
        self._video_track = track
        self._video_task = asyncio.ensure_future(self._pump(track))

    def detach_video(self) -> None:
        if self._video_task is not None:
            self._video_task.cancel()
            self._video_task = None
        self._video_track = None
        self.image = None
        self.update()

    def show_frame(self, frame: av.VideoFrame) -> None:
        self.image = frame_to_image(frame)
        self.frames_shown += 1
        self.update()

    async def _pump(self, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                if (
                    isinstance(frame, av.VideoFrame)
                    and not self.info.video_muted
                    and not self.reconnecting
                ):
                    self.show_frame(frame)

    async def release(self) -> None:
        """Stop showing video and end the reading task."""
        task, self._video_task = self._video_task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    # -- drawing -------------------------------------------------------------

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        area = QRectF(self.rect())
        painter.fillRect(area, QColor("#1f2329"))
        if self.image is not None and not self.info.video_muted and not self.video_paused:
            scaled = self.image.size().scaled(self.size(), Qt.AspectRatioMode.KeepAspectRatio)
            target = QRectF(
                (self.width() - scaled.width()) / 2,
                (self.height() - scaled.height()) / 2,
                scaled.width(),
                scaled.height(),
            )
            painter.drawImage(target, self.image)
        else:
            self._paint_initials(painter, area)
        if self.reconnecting:
            painter.fillRect(area, QColor(0, 0, 0, 140))  # dimmed: not live
        self._paint_label(painter, area)
        if self.speaking:
            painter.setPen(QPen(QColor("#3ddc84"), 4 * self.scale))
            painter.drawRoundedRect(area.adjusted(2, 2, -2, -2), 6, 6)
        painter.end()

    def _paint_initials(self, painter: QPainter, area: QRectF) -> None:
        diameter = min(area.width(), area.height()) * 0.45
        disc = QRectF(
            area.center().x() - diameter / 2, area.center().y() - diameter / 2, diameter, diameter
        )
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(*identity_of(self.info.name).colour))
        painter.drawEllipse(disc)
        font = QFont(self.font())
        font.setPixelSize(max(10, int(diameter * 0.38)))
        font.setBold(True)
        painter.setFont(font)
        painter.setPen(QColor("white"))
        painter.drawText(disc, Qt.AlignmentFlag.AlignCenter, initials(self.info.name))

    def _paint_label(self, painter: QPainter, area: QRectF) -> None:
        font = QFont(self.font())
        font.setPixelSize(max(11, int(14 * self.scale)))
        painter.setFont(font)
        line = font.pixelSize() + 10
        band = QRectF(area.left(), area.bottom() - line, area.width(), line)
        painter.fillRect(band, QColor(0, 0, 0, 150))
        text = self.info.name
        if self.is_self:
            text = self.tr("{name} (you)").format(name=text)
        if self.info.office:
            text = f"{text} · {self.info.office}"
        if self.info.audio_muted:
            text = self.tr("{label} · mic off").format(label=text)
        if self.reconnecting:
            text = self.tr("{label} · reconnecting...").format(label=text)
        elif self.video_paused and not self.info.video_muted:
            text = self.tr("{label} · video paused (weak link)").format(label=text)
        painter.setPen(QColor("white"))
        painter.drawText(
            band.adjusted(8, 0, -8, 0),
            Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft,
            painter.fontMetrics().elidedText(
                text, Qt.TextElideMode.ElideRight, int(band.width() - 16)
            ),
        )
