"""Echo cancellation, noise suppression and gain control on the microphone path.

Office PCs play the meeting on speakers and pick it up again with a webcam
microphone; without echo cancellation every office hears itself back. This uses
libwebrtc's audio processing module, shipped as a wheel in the ``livekit``
package (``livekit.rtc.AudioProcessingModule``, 10 ms frames): the capture side
(:meth:`AudioProcessor.process_capture`) is cleaned with what the speaker played
(:meth:`AudioProcessor.process_playback`, fed by the mixer).
"""

from __future__ import annotations

import fractions
import threading

import av
import numpy as np
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError
from livekit import rtc

from siakdesk.media.resampling import AUDIO_RATE, MonoResampler

FRAME_10MS = AUDIO_RATE // 100
#: What the speaker-to-microphone path typically adds on a PC (output + input buffers).
DEFAULT_DELAY_MS = 50


class AudioProcessor:
    """One APM shared by the playback (device thread) and capture (event loop) sides."""

    def __init__(
        self,
        echo_cancellation: bool = True,
        noise_suppression: bool = True,
        auto_gain_control: bool = True,
        delay_ms: int = DEFAULT_DELAY_MS,
    ) -> None:
        self._apm = rtc.AudioProcessingModule(
            echo_cancellation=echo_cancellation,
            noise_suppression=noise_suppression,
            high_pass_filter=True,
            auto_gain_control=auto_gain_control,
        )
        self._apm.set_stream_delay_ms(delay_ms)
        self._lock = threading.Lock()
        self._playback_rest = np.zeros(0, dtype=np.int16)
        self._capture_rest = np.zeros(0, dtype=np.int16)

    def process_playback(self, samples: np.ndarray) -> None:
        """Tell the canceller what the speaker plays now (mono int16, 48 kHz, any length)."""
        with self._lock:
            pending = np.concatenate([self._playback_rest, samples.astype(np.int16)])
            whole = pending.size - pending.size % FRAME_10MS
            for start in range(0, whole, FRAME_10MS):
                chunk = pending[start : start + FRAME_10MS]
                self._apm.process_reverse_stream(
                    rtc.AudioFrame(chunk.tobytes(), AUDIO_RATE, 1, FRAME_10MS)
                )
            self._playback_rest = pending[whole:]

    def process_capture(self, samples: np.ndarray) -> np.ndarray:
        """The microphone's samples with echo and noise removed (same length, may lag 10 ms)."""
        with self._lock:
            pending = np.concatenate([self._capture_rest, samples.astype(np.int16)])
            whole = pending.size - pending.size % FRAME_10MS
            cleaned = []
            for start in range(0, whole, FRAME_10MS):
                frame = rtc.AudioFrame(
                    pending[start : start + FRAME_10MS].tobytes(), AUDIO_RATE, 1, FRAME_10MS
                )
                self._apm.process_stream(frame)
                cleaned.append(np.frombuffer(bytes(frame.data), dtype=np.int16))
            self._capture_rest = pending[whole:]
        out = np.concatenate(cleaned) if cleaned else np.zeros(0, dtype=np.int16)
        if out.size < samples.size:  # the first call may hold back a partial 10 ms
            out = np.concatenate([np.zeros(samples.size - out.size, dtype=np.int16), out])
        return out[: samples.size]


class ProcessedMicrophone(MediaStreamTrack):
    """A microphone track whose frames go through an :class:`AudioProcessor` first."""

    kind = "audio"

    def __init__(self, source: MediaStreamTrack, processor: AudioProcessor) -> None:
        super().__init__()
        self.source = source
        self.processor = processor
        self._resampler = MonoResampler()

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        frame = await self.source.recv()
        assert isinstance(frame, av.AudioFrame)
        pts = frame.pts
        samples = self._resampler.samples(frame)
        cleaned = self.processor.process_capture(samples)
        result = av.AudioFrame.from_ndarray(cleaned.reshape(1, -1), format="s16", layout="mono")
        result.sample_rate = AUDIO_RATE
        result.pts = pts
        result.time_base = fractions.Fraction(1, AUDIO_RATE)
        return result

    def stop(self) -> None:
        super().stop()
        self.source.stop()
