"""SiakDesk's Opus profile: speech that survives a 64 kbit/s link.

aiortc's own ``OpusEncoder`` sends stereo at a fixed 96 kbit/s with no
forward error correction: made for good networks.  This encoder sends:

* **mono**, 24 kbit/s constrained VBR by default (16-32 kbit/s settable), ``application=voip``
  (wideband and better: libopus picks the band for the bitrate);
* **in-band FEC** with the expected loss driven by what the receiver reports
  (RTCP ``fraction_lost`` of this stream, fed in by the session with
  :meth:`ProfiledOpusEncoder.set_loss`): the encoder is reopened when the
  loss band changes (2/5/10/20 %), a few milliseconds, no renegotiation;
* **20 ms frames**, and **60 ms** on the worst links (loss >= 10 %, or a bitrate
  of 16 kbit/s or less): a third of the packets and their headers;
* **DTX done here**: the FFmpeg build inside PyAV 18 does not know libopus's
  ``dtx`` option (``CodecContext.options`` still holds it after opening, unlike
  ``fec`` and ``packet_loss``), so silence is detected before encoding (RMS below
  -50 dBFS for 200 ms) and then only one frame in 400 ms is sent, as Opus DTX
  would.  Sequence numbers stay continuous, so the receiver sees no loss.

:func:`install` makes aiortc's ``RTCRtpSender`` use it for ``audio/opus``
(aiortc has no codec registry: it calls ``get_encoder`` from its sender
module, and that one name is wrapped).  The server never encodes, so only
clients install it.
"""

from __future__ import annotations

import dataclasses
import fractions
import logging
from typing import Any

import numpy as np
from aiortc import rtcrtpsender
from aiortc.codecs.base import Encoder
from aiortc.mediastreams import convert_timebase
from av import AudioFrame, AudioResampler, CodecContext
from av.frame import Frame
from av.packet import Packet

logger = logging.getLogger(__name__)

SAMPLE_RATE = 48000
TIME_BASE = fractions.Fraction(1, SAMPLE_RATE)
#: Expected-loss bands the encoder is tuned for (percent); reopened when the band changes.
LOSS_BANDS = (2, 5, 10, 20)
SILENCE_DBFS = -50.0
SILENCE_HANGOVER_S = 0.2
DTX_KEEPALIVE_S = 0.4


@dataclasses.dataclass(frozen=True)
class AudioProfile:
    bitrate: int = 24000
    fec: bool = True
    dtx: bool = True
    #: 20 ms normally; 60 ms is chosen by the encoder on the worst links
    frame_ms: int = 20

    def __post_init__(self) -> None:
        if not 12000 <= self.bitrate <= 64000:
            raise ValueError("Opus bitrate must be 12 to 64 kbit/s")


PROFILE = AudioProfile()


def loss_band(loss_percent: float) -> int:
    return next((band for band in LOSS_BANDS if loss_percent <= band), LOSS_BANDS[-1])


class ProfiledOpusEncoder(Encoder):
    def __init__(self, profile: AudioProfile = PROFILE) -> None:
        self.profile = profile
        self.loss = LOSS_BANDS[0]
        self._wanted_loss = self.loss
        self.frame_ms = profile.frame_ms
        self.codec: Any = None
        self.resampler: AudioResampler | None = None
        self._open()
        self._first_pts: int | None = None
        self._silent_for = 0.0
        self._since_sent = 0.0
        self.frames_in = 0
        self.packets_out = 0
        self.suppressed = 0

    def _open(self) -> None:
        worst = self.loss >= 10 or self.profile.bitrate <= 16000
        self.frame_ms = 60 if worst else self.profile.frame_ms
        codec = CodecContext.create("libopus", "w")
        codec.bit_rate = self.profile.bitrate
        codec.format = "s16"
        codec.layout = "mono"
        codec.sample_rate = SAMPLE_RATE
        codec.time_base = TIME_BASE
        codec.options = {
            "application": "voip",
            "vbr": "constrained",
            "frame_duration": str(self.frame_ms),
            "fec": "1" if self.profile.fec else "0",
            "packet_loss": str(self.loss if self.profile.fec else 0),
        }
        self.codec = codec
        self.resampler = AudioResampler(
            format="s16",
            layout="mono",
            rate=SAMPLE_RATE,
            frame_size=SAMPLE_RATE * self.frame_ms // 1000,
        )

    @property
    def settings(self) -> dict[str, Any]:
        """What the encoder really runs with (for tests, logs and the benchmark)."""
        return {
            "channels": self.codec.layout.nb_channels,
            "bitrate": self.codec.bit_rate,
            "frame_ms": self.frame_ms,
            "fec": self.profile.fec,
            "expected_loss": self.loss,
            "dtx": self.profile.dtx,
        }

    def set_loss(self, loss_percent: float) -> None:
        """The receiver's loss of this stream; retune FEC (and frame size) on a band change.

        Called on the event loop; aiortc encodes on a worker thread, so the change is
        applied by :meth:`encode` before its next frame.
        """
        self._wanted_loss = loss_band(loss_percent)

    def _apply_loss(self) -> None:
        band = self._wanted_loss
        if band != self.loss:
            logger.info("opus: expected loss %d %% -> %d %%", self.loss, band)
            self.loss = band
            self._open()

    def _is_silent(self, frame: AudioFrame) -> bool:
        samples = frame.to_ndarray().astype(np.float32)
        rms = float(np.sqrt(np.mean(samples**2))) / 32768 if samples.size else 0.0
        level = 20 * np.log10(rms) if rms > 0 else -120.0
        duration = frame.samples / frame.sample_rate
        self._silent_for = self._silent_for + duration if level < SILENCE_DBFS else 0.0
        return self._silent_for >= SILENCE_HANGOVER_S

    def encode(self, frame: Frame, force_keyframe: bool = False) -> tuple[list[bytes], int]:
        assert isinstance(frame, AudioFrame)
        self._apply_loss()
        assert self.resampler is not None
        self.frames_in += 1
        packets: list[Packet] = []
        for chunk in self.resampler.resample(frame):
            silent = self.profile.dtx and self._is_silent(chunk)
            for packet in self.codec.encode(chunk):
                self._since_sent += self.frame_ms / 1000
                if silent and self._since_sent < DTX_KEEPALIVE_S:
                    self.suppressed += 1
                    continue
                self._since_sent = 0.0
                packets.append(packet)
        if not packets:
            return [], 0  # nothing to send; aiortc sends nothing for an empty list
        pts = packets[0].pts or 0
        if self._first_pts is None:
            self._first_pts = pts
        self.packets_out += len(packets)
        return [bytes(p) for p in packets], pts - self._first_pts

    def pack(self, packet: Packet) -> tuple[list[bytes], int]:
        return [bytes(packet)], convert_timebase(packet.pts or 0, packet.time_base, TIME_BASE)


_original_get_encoder = rtcrtpsender.get_encoder


def _get_encoder(codec: Any) -> Encoder:
    if codec.mimeType.lower() == "audio/opus":
        return ProfiledOpusEncoder()
    return _original_get_encoder(codec)


def install() -> None:
    """Use :class:`ProfiledOpusEncoder` for every Opus sender in this process; idempotent."""
    rtcrtpsender.get_encoder = _get_encoder


def encoder_of(sender: Any) -> Encoder | None:
    """The encoder an aiortc sender is using (aiortc keeps it private), once it started."""
    encoder: Encoder | None = getattr(sender, "_RTCRtpSender__encoder", None)
    return encoder
