"""The PC's camera, microphone and speaker, as aiortc tracks and a playback sink.

A missing device is normal (a PC without a camera joins with audio only): the
``open_*`` methods return ``None`` and log why, they never raise.  Tests and
the demo substitute :class:`DeviceProvider` subclasses with synthetic media.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import fractions
import logging
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import av
import numpy as np
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError

from siakdesk.media.synthetic import (
    AUDIO_FRAME_SAMPLES,
    AUDIO_RATE,
    SyntheticVideoTrack,
    ToneTrack,
    render_card,
)

logger = logging.getLogger(__name__)

VIDEO_SIZE = (640, 360)
VIDEO_FPS = 15


class CameraTrack(MediaStreamTrack):
    """An OpenCV camera, read on a worker thread, 640x360 at 15 fps.

    When the camera disappears mid-meeting the track keeps going with a
    placeholder card and tries to reopen the camera every few seconds, so the
    meeting goes on and the picture comes back by itself.
    """

    kind = "video"

    def __init__(
        self,
        index: int = 0,
        reopen_interval: float = 3.0,
        open_capture: Callable[[int], Any] | None = None,
    ) -> None:
        """``open_capture`` opens a ``cv2.VideoCapture``-like device (tests pass a fake)."""
        super().__init__()
        import cv2

        if open_capture is None:
            if sys.platform == "linux" and not Path(f"/dev/video{index}").exists():
                raise OSError(f"there is no /dev/video{index}")
            cv2.setLogLevel(2)  # type: ignore[attr-defined]  # errors only: no camera is normal
            open_capture = cv2.VideoCapture
        self._cv2 = cv2
        self._open_capture = open_capture
        self.index = index
        self._capture = open_capture(index)
        if not self._capture.isOpened():
            self._capture.release()
            raise OSError(f"camera {index} cannot be opened")
        self._capture.set(cv2.CAP_PROP_FRAME_WIDTH, VIDEO_SIZE[0])
        self._capture.set(cv2.CAP_PROP_FRAME_HEIGHT, VIDEO_SIZE[1])
        self._placeholder = render_card("Kamera tidak tersedia", *VIDEO_SIZE)
        self._reopen_interval = reopen_interval
        self._failed_at: float | None = None
        self._start = time.monotonic()
        self._index = 0
        self._lock = threading.Lock()
        self.available = True

    def _read(self) -> np.ndarray | None:
        with self._lock:
            if self._failed_at is not None:
                if time.monotonic() - self._failed_at < self._reopen_interval:
                    return None
                self._capture.release()
                self._capture = self._open_capture(self.index)
            ok, image = self._capture.read() if self._capture.isOpened() else (False, None)
            if not ok or image is None:
                self._failed_at = time.monotonic()
                return None
            self._failed_at = None
            image = self._cv2.resize(image, VIDEO_SIZE)
            return self._cv2.cvtColor(image, self._cv2.COLOR_BGR2RGB)

    async def recv(self) -> av.VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        pts = self._index * 90000 // VIDEO_FPS
        delay = self._start + self._index / VIDEO_FPS - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        self._index += 1
        image = await asyncio.get_running_loop().run_in_executor(None, self._read)
        self.available = image is not None
        frame = av.VideoFrame.from_ndarray(
            self._placeholder if image is None else image, format="rgb24"
        )
        frame.pts = pts
        frame.time_base = fractions.Fraction(1, 90000)
        return frame

    def stop(self) -> None:
        super().stop()
        with self._lock:
            self._capture.release()


class MicrophoneTrack(MediaStreamTrack):
    """The default (or chosen) input device, 48 kHz mono, 20 ms frames."""

    kind = "audio"

    def __init__(self, device: int | str | None = None) -> None:
        super().__init__()
        import sounddevice

        self._event_loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[np.ndarray] = asyncio.Queue(maxsize=50)
        self._pts = 0
        self.level = 0.0
        self._stream = sounddevice.InputStream(
            device=device,
            channels=1,
            samplerate=AUDIO_RATE,
            blocksize=AUDIO_FRAME_SAMPLES,
            dtype="int16",
            callback=self._callback,
        )
        self._stream.start()

    def _callback(self, data: np.ndarray, frames: int, time_info: object, status: object) -> None:
        block = data[:, 0].copy()
        self._event_loop.call_soon_threadsafe(self._offer, block)

    def _offer(self, block: np.ndarray) -> None:
        if self._queue.full():
            self._queue.get_nowait()  # the meeting is behind: drop the oldest, not the newest
        self._queue.put_nowait(block)

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        block = await self._queue.get()
        self.level = float(np.sqrt(np.mean(block.astype(np.float32) ** 2)) / 32768)
        frame = av.AudioFrame.from_ndarray(block.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = AUDIO_RATE
        frame.pts = self._pts
        frame.time_base = fractions.Fraction(1, AUDIO_RATE)
        self._pts += block.size
        return frame

    def stop(self) -> None:
        super().stop()
        self._stream.stop()
        self._stream.close()


class AudioSink:
    """Where mixed remote audio goes: ``start(pull)`` calls ``pull(n)`` for n samples."""

    def start(self, pull: Callable[[int], np.ndarray]) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError


class SpeakerSink(AudioSink):
    """The default (or chosen) output device through PortAudio."""

    def __init__(self, device: int | str | None = None) -> None:
        import sounddevice

        self._sounddevice = sounddevice
        self._device = device
        self._stream: object | None = None

    def start(self, pull: Callable[[int], np.ndarray]) -> None:
        def callback(out: np.ndarray, frames: int, time_info: object, status: object) -> None:
            out[:, 0] = pull(frames)

        stream = self._sounddevice.OutputStream(
            device=self._device,
            channels=1,
            samplerate=AUDIO_RATE,
            blocksize=AUDIO_FRAME_SAMPLES,
            dtype="int16",
            callback=callback,
        )
        stream.start()
        self._stream = stream

    def stop(self) -> None:
        if self._stream is not None:
            self._stream.stop()  # type: ignore[attr-defined]
            self._stream.close()  # type: ignore[attr-defined]
            self._stream = None


@dataclasses.dataclass(frozen=True)
class Device:
    """One choice in the device settings: ``key`` is what the provider opens it by."""

    key: int | str
    label: str


def list_cameras(max_index: int = 6) -> list[Device]:
    """Cameras OpenCV can open.  On Linux the ``/dev/video*`` nodes (opening each would
    light every camera up); elsewhere OpenCV indices are probed, which takes a moment."""
    if sys.platform == "linux":
        nodes = sorted(Path("/dev").glob("video[0-9]*"), key=lambda p: int(p.name[5:]))
        return [Device(int(p.name[5:]), _linux_camera_name(p)) for p in nodes]
    import cv2

    found = []
    for index in range(max_index):
        capture = cv2.VideoCapture(index)
        try:
            if capture.isOpened():
                found.append(Device(index, f"Camera {index + 1}"))
        finally:
            capture.release()
    return found


def _linux_camera_name(node: Path) -> str:
    name_file = Path("/sys/class/video4linux") / node.name / "name"
    try:
        return f"{name_file.read_text().strip()} ({node.name})"
    except OSError:
        return node.name


def list_audio_devices(kind: str) -> list[Device]:
    """Input (``kind="input"``) or output devices of the default host API, by name."""
    try:
        import sounddevice

        devices = sounddevice.query_devices()
        default_api = sounddevice.default.hostapi
    except Exception as exc:  # PortAudio missing or broken: no choice, not a crash
        logger.info("cannot list audio devices: %s", exc)
        return []
    channels = "max_input_channels" if kind == "input" else "max_output_channels"
    return [
        Device(str(d["name"]), str(d["name"]))
        for d in devices
        if d[channels] > 0 and d["hostapi"] == default_api
    ]


class DeviceProvider:
    """Opens this PC's devices; ``None`` where there is none (logged, never raised).

    ``camera``, ``microphone`` and ``speaker`` are what the user chose (an
    OpenCV index, PortAudio device names); ``None``/empty: the system's default.
    """

    def __init__(
        self,
        camera: int = 0,
        microphone: int | str | None = None,
        speaker: int | str | None = None,
    ) -> None:
        self.camera_index = camera
        self.microphone_device = microphone or None
        self.speaker_device = speaker or None

    def with_choice(self, camera: int, microphone: str, speaker: str) -> DeviceProvider:
        """The same provider, opening the given devices ('' for the default)."""
        chosen = copy.copy(self)
        chosen.camera_index = camera
        chosen.microphone_device = microphone or None
        chosen.speaker_device = speaker or None
        return chosen

    def cameras(self) -> list[Device]:
        return list_cameras()

    def microphones(self) -> list[Device]:
        return list_audio_devices("input")

    def speakers(self) -> list[Device]:
        return list_audio_devices("output")

    def open_camera(self) -> MediaStreamTrack | None:
        try:
            return CameraTrack(self.camera_index)
        except (OSError, ImportError) as exc:
            logger.info("no camera: %s", exc)
            return None

    def open_microphone(self) -> MediaStreamTrack | None:
        try:
            return MicrophoneTrack(self.microphone_device)
        except Exception as exc:  # PortAudio reports a missing device in several ways
            logger.info("no microphone: %s", exc)
            return None

    def open_speaker(self) -> AudioSink | None:
        try:
            import sounddevice

            sounddevice.query_devices(kind="output")
        except Exception as exc:
            logger.info("no speaker: %s", exc)
            return None
        return SpeakerSink(self.speaker_device)


class SyntheticDevices(DeviceProvider):
    """Made-up devices for tests and benchmarks: a name card for a camera, a tone for a
    microphone (either may be left out, like a PC without one), and the given speaker."""

    def __init__(
        self,
        name: str,
        camera: bool = True,
        microphone: bool = True,
        video_size: tuple[int, int] = (320, 180),
        speaker: AudioSink | None = None,
    ) -> None:
        super().__init__()
        self.name = name
        self.has_camera = camera
        self.has_microphone = microphone
        self.video_size = video_size
        self.speaker = speaker

    def open_camera(self) -> MediaStreamTrack | None:
        if not self.has_camera:
            return None
        return SyntheticVideoTrack(self.name, *self.video_size, fps=VIDEO_FPS)

    def open_microphone(self) -> MediaStreamTrack | None:
        return ToneTrack(self.name) if self.has_microphone else None

    def open_speaker(self) -> AudioSink | None:
        return self.speaker

    def cameras(self) -> list[Device]:
        return [Device(0, f"{self.name} (synthetic)")] if self.has_camera else []

    def microphones(self) -> list[Device]:
        return [Device("tone", f"{self.name} tone (synthetic)")] if self.has_microphone else []

    def speakers(self) -> list[Device]:
        return [Device("silent", "Silent (synthetic)")] if self.speaker is not None else []
