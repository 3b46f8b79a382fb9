"""SiakDesk's Opus profile: speech that survives a 64 kbit/s link.

aiortc's own ``OpusEncoder`` sends stereo at a fixed 96 kbit/s with no
forward error correction: made for good networks.  This encoder sends:

* **mono**, constrained VBR, ``application=voip`` (wideband and better: libopus
  picks the band for the bitrate): 24 kbit/s on a clean link, 32 kbit/s with FEC;
* **in-band FEC** when the receiver reports loss (RTCP ``fraction_lost`` of this
  stream, fed in by the session with :meth:`ProfiledOpusEncoder.set_loss`), with
  the expected loss of its band (2/5/10/20 %; under 1 % smoothed: no FEC).  The
  encoder is reopened when the band changes what it runs with (not when a
  lossy link's copies stay the same), a few milliseconds, no renegotiation, the
  samples it held carried over.  FEC takes its bits from the speech: measured offline on the
  benchmark's Indonesian sample (PESQ-WB, our playout, median of 3 seeds):

  ============================  ========  =========
  Opus                           no loss   3 % loss
  ============================  ========  =========
  24 kbit/s, no FEC                 4.11       2.73
  24 kbit/s, FEC for 2 %            3.67       3.26
  32 kbit/s, FEC for 2 %            4.04       3.74
  ============================  ========  =========

  hence no FEC while the link is clean and 8 kbit/s more while it is used;
* **20 ms frames**, and **60 ms** on the worst links (loss >= 10 %, >= 20 %
  while each packet carries a copy of the one before, below; a bitrate of
  16 kbit/s or less; or an uplink estimated under 80 kbit/s, back at 120):
  a third of the packets and their headers.  With copies, 20 ms packets did as
  well offline at 10 % random loss (PESQ-WB per loop, median of each of 3 seeds:
  3.25 / 3.54 / 3.06 against 3.1 / 3.4 / 3.1 at 60 ms) and worse at 20 %
  (2.56 / 2.34 / 2.32 against 2.99 / 2.52 / 2.44); and on the benchmark's 3 %
  link the 10 % band came by chance for 10 s in 12 of 21 runs, its two codec
  reopens in half-loops that scored a median of 3.8 against 4.1.  Audio comes
  first: at 20 ms, 24 kbit/s of Opus costs 49 kbit/s on the wire (62 bytes of
  IP, UDP, RTP and SRTP headers 50 times a second), most of a 64 kbit/s link;
  at 60 ms it costs 32;
* **the packet before, again**, while the receiver reports loss: each packet
  carries a copy of the one before it (in its padding, see
  :mod:`siakdesk.media.opuspacket`), and Opus runs without FEC: 24 kbit/s,
  20 kbit/s on a thin link.  A lost packet is then decoded whole from the next
  one, as if it had come; in-band FEC rebuilds only a low-bitrate version of
  the last 20 ms (all of a 20 ms packet, a third of a 60 ms one).  Offline, at
  3 % random loss, 32 kbit/s with FEC scored 3.74, 24 kbit/s with no loss 4.11,
  which is what the copy gets back to unless two packets in a row are lost.
  On the wire: 74 kbit/s at 20 ms (FEC: 57), 49 kbit/s at 60 ms on a thin link
  (FEC at 32 kbit/s: 41; offline at 2 % loss a perfect decoder scores 3.6-3.95
  with 20 kbit/s copies, 3.3-3.6 with 16).  ``AudioProfile(redundancy=False)`` keeps FEC;
* **DTX done here**: the FFmpeg build inside PyAV 18 does not know libopus's
  ``dtx`` option (``CodecContext.options`` still holds it after opening, unlike
  ``fec`` and ``packet_loss``), so silence is detected before encoding (RMS below
  -50 dBFS for 200 ms) and then only one frame in 400 ms is sent, as Opus DTX
  would.  Sequence numbers stay continuous, so the receiver sees no loss.

:func:`siakdesk.media.engine.install` makes aiortc's ``RTCRtpSender`` use it
for ``audio/opus``.  The server never encodes, so only clients install it.
"""

from __future__ import annotations

import dataclasses
import fractions
import logging
import time
from collections import deque
from typing import Any

import numpy as np
from aiortc.codecs.base import Encoder
from aiortc.mediastreams import convert_timebase
from av import AudioFrame, AudioResampler, CodecContext
from av.frame import Frame
from av.packet import Packet

from siakdesk.media.opuspacket import OpusPacketError, with_redundancy

logger = logging.getLogger(__name__)

SAMPLE_RATE = 48000
TIME_BASE = fractions.Fraction(1, SAMPLE_RATE)
#: Expected-loss bands the encoder is tuned for (percent); reopened when the band changes.
#: Band 0: a clean link, no FEC.
LOSS_BANDS = (0, 2, 5, 10, 20)
#: The loss band from which a profile with copies sends 60 ms packets (see the notes).
HEAVY_LOSS_WITH_COPIES = 20
#: Smoothed reported loss (percent) under which the link counts as clean ...
CLEAN_BELOW = 1.0
#: ... once no report has shown that much for this long: on a 3 % link about one report
#: in three (~35 packets) loses none, a few of those in a row come now and then, and the
#: smoothed loss went under 1 % for 1-7 s in 4 of 18 benchmark runs: no copies, every
#: loss concealed, and the half-loops it fell in scored 1.85-3.21.
CLEAN_AFTER_S = 30.0
SILENCE_DBFS = -50.0
#: Input this far under the loudest of the last seconds is a pause in speech (a room's
#: noise floor is often over SILENCE_DBFS); the peak falls this fast (dB a second).
PAUSE_BELOW_PEAK_DB = 25.0
PEAK_DECAY_DB_S = 6.0
SILENCE_HANGOVER_S = 0.2
DTX_KEEPALIVE_S = 0.4
#: A lower loss band is taken only after the higher one has held this long.
BAND_HOLD_S = 10.0
#: Bytes of IP, UDP, RTP and SRTP headers per packet, and a code 3 packet's two or three.
WIRE_BYTES = 64
#: Under this uplink estimate (kbit/s, all media) audio goes to 60 ms packets ...
THIN_LINK_KBPS = 80.0
#: ... and back to 20 ms (less delay, less lost at once) only over this.
WIDE_LINK_KBPS = 120.0


@dataclasses.dataclass(frozen=True)
class AudioProfile:
    bitrate: int = 24000
    fec: bool = True
    #: added while FEC is on (FEC takes its bits from the speech)
    fec_extra: int = 8000
    dtx: bool = True
    #: 20 ms normally; 60 ms is chosen by the encoder on the worst links
    frame_ms: int = 20
    #: 60 ms packets on a lossy link carry the packet before (no FEC then), at this
    #: bitrate on a thin link, at ``bitrate`` on a wider one
    redundancy: bool = True
    redundant_thin_bitrate: int = 20000

    def __post_init__(self) -> None:
        if not 12000 <= self.bitrate <= 64000 or not 0 <= self.fec_extra <= 32000:
            raise ValueError("Opus bitrate must be 12 to 64 kbit/s")


PROFILE = AudioProfile()


def loss_band(loss_percent: float) -> int:
    if loss_percent < CLEAN_BELOW:
        return 0
    return next((band for band in LOSS_BANDS[1:] if loss_percent <= band), LOSS_BANDS[-1])


class ProfiledOpusEncoder(Encoder):
    def __init__(self, profile: AudioProfile = PROFILE) -> None:
        self.profile = profile
        self.loss = LOSS_BANDS[0]
        self._wanted_loss = self.loss
        self._loss_avg = 0.0
        self._recent_loss: deque[float] = deque(maxlen=3)
        self._band_since = float("-inf")
        self._lossy_at = float("-inf")  # the last report of CLEAN_BELOW or more
        self.frame_ms = profile.frame_ms
        self.fec_on = False
        self.redundant = False
        #: the last packet sent and where the next one would start (for the copy)
        self._previous: tuple[bytes, int] | None = None
        self.thin_link = False
        self._wanted_thin = False
        self.codec: Any = None
        self.resampler: AudioResampler | None = None
        self._planned: tuple[int, int, bool, bool] | None = None
        self._carried: list[AudioFrame] = []
        self._open()
        self._next_ts = 0
        self._silent_for = 0.0
        self._peak_dbfs = SILENCE_DBFS
        #: seconds the input has been in a pause of speech (see :attr:`quiet_for`)
        self._quiet_for = 0.0
        self._since_sent = 0.0
        self.frames_in = 0
        self.packets_out = 0
        self.suppressed = 0

    def _plan(self) -> tuple[int, int, bool, bool]:
        """Bitrate, frame length, FEC and copies for the current loss band and link."""
        fec = self.profile.fec and self.loss > 0
        bitrate = min(64000, self.profile.bitrate + (self.profile.fec_extra if fec else 0))
        # with copies, a 10 % band is no reason for 60 ms: each switch reopens the codec
        # (see the notes), and the band is reached by chance on a 3 % link
        heavy = self.loss >= (HEAVY_LOSS_WITH_COPIES if self.profile.redundancy else 10)
        worst = heavy or bitrate <= 16000 or self.thin_link
        frame_ms = 60 if worst else self.profile.frame_ms
        redundant = self.profile.redundancy and self.loss > 0
        if redundant:
            fec = False
            bitrate = (
                self.profile.redundant_thin_bitrate if self.thin_link else self.profile.bitrate
            )
        return bitrate, frame_ms, fec, redundant

    def _open(self) -> None:
        """A codec for :meth:`_plan`; kept as it is when the plan is the same.

        Reopening is a glitch: the new codec starts from nothing (measured offline,
        ``scripts/playout_offline.py --thin --retune-every 4``: 3.4-3.8 per loop ->
        2.7-3.2 when the samples the resampler held were dropped too).  So a new
        band that changes nothing the codec runs with (a lossy link's copies are the
        same at 2 % as at 5 %) reopens nothing, and the samples waiting for the next
        packet are carried over to the new codec.
        """
        plan = self._plan()
        if self.codec is not None and plan == self._planned:
            return
        self._planned = plan
        bitrate, self.frame_ms, fec, self.redundant = plan
        self.fec_on = fec
        self._previous = None  # a reopened codec starts a new chain of copies
        codec = CodecContext.create("libopus", "w")
        codec.bit_rate = bitrate
        codec.format = "s16"
        codec.layout = "mono"
        codec.sample_rate = SAMPLE_RATE
        codec.time_base = TIME_BASE
        codec.options = {
            "application": "voip",
            "vbr": "constrained",
            "frame_duration": str(self.frame_ms),
            "fec": "1" if fec else "0",
            "packet_loss": str(self.loss if fec else 0),
        }
        self.codec = codec
        held = self.resampler.resample(None) if self.resampler is not None else []
        self.resampler = AudioResampler(
            format="s16",
            layout="mono",
            rate=SAMPLE_RATE,
            frame_size=SAMPLE_RATE * self.frame_ms // 1000,
        )
        # what the last codec had not been given yet goes to this one first
        self._carried = [out for frame in held for out in self.resampler.resample(frame)]

    @property
    def wire_kbps(self) -> float:
        """What this encoder's speech costs on the wire now (kbit/s, headers included)."""
        payload = self.codec.bit_rate / 1000 * (2 if self.redundant else 1)
        return payload + (1000 / self.frame_ms) * WIRE_BYTES * 8 / 1000

    @property
    def settings(self) -> dict[str, Any]:
        """What the encoder really runs with (for tests, logs and the benchmark)."""
        return {
            "channels": self.codec.layout.nb_channels,
            "bitrate": self.codec.bit_rate,
            "frame_ms": self.frame_ms,
            "fec": self.fec_on,
            "redundancy": self.redundant,
            "expected_loss": self.loss,
            "dtx": self.profile.dtx,
        }

    def set_loss(self, loss_percent: float) -> None:
        """The receiver's loss of this stream; retune FEC (and frame size) on a band change.

        Called on the event loop; aiortc encodes on a worker thread, so the change is
        applied by :meth:`encode` before its next frame.
        """
        # one report covers a second or so: a few packets more or less swing it by
        # several percent, and every band change reopens the codec (a glitch), so the
        # band follows a smoothed loss, up at once, down only after 10 s; smoothed from
        # the median of the last three reports, as one report of 10-15 % on a 3 % link
        # (a report of ~50 packets reads that about once a minute) took the average
        # over 5 % and the audio to 60 ms packets for 10 s or more (measured on the
        # benchmark's 3g link: twice a minute)
        now = time.monotonic()
        if loss_percent >= CLEAN_BELOW:
            self._lossy_at = now
        self._recent_loss.append(loss_percent)
        median = sorted(self._recent_loss)[(len(self._recent_loss) - 1) // 2]
        self._loss_avg = 0.7 * self._loss_avg + 0.3 * median
        wanted = loss_band(self._loss_avg)
        if wanted == 0 and now - self._lossy_at < CLEAN_AFTER_S:
            wanted = LOSS_BANDS[1]  # a lossy link keeps its copies (see CLEAN_AFTER_S)
        if wanted > self._wanted_loss or now - self._band_since >= BAND_HOLD_S:
            if wanted != self._wanted_loss:
                self._band_since = now
            self._wanted_loss = wanted

    def set_link(self, estimate_kbps: float) -> None:
        """The uplink estimate (all media): 60 ms packets on a thin link (see the notes)."""
        if estimate_kbps < THIN_LINK_KBPS:
            self._wanted_thin = True
        elif estimate_kbps > WIDE_LINK_KBPS:
            self._wanted_thin = False

    def _apply_loss(self) -> None:
        band, thin = self._wanted_loss, self._wanted_thin
        if band == self.loss and thin == self.thin_link:
            return
        if band != self.loss:
            logger.info("opus: expected loss %d %% -> %d %%", self.loss, band)
        if thin != self.thin_link:
            logger.info("opus: %s link", "thin" if thin else "wider")
        self.loss, self.thin_link = band, thin
        before = self.frame_ms
        self._open()
        if self.frame_ms != before:
            logger.info("opus: %d ms packets", self.frame_ms)

    @property
    def quiet_for(self) -> float:
        """How long the microphone has been in a pause of speech (seconds): under
        -50 dBFS, or 25 dB under the loudest of the last seconds.  The uplink sends
        its probes in a pause (:mod:`siakdesk.core.uplink`)."""
        return self._quiet_for

    def _is_silent(self, frame: AudioFrame) -> bool:
        samples = frame.to_ndarray().astype(np.float32)
        rms = float(np.sqrt(np.mean(samples**2))) / 32768 if samples.size else 0.0
        level = 20 * np.log10(rms) if rms > 0 else -120.0
        duration = frame.samples / frame.sample_rate
        self._silent_for = self._silent_for + duration if level < SILENCE_DBFS else 0.0
        self._peak_dbfs = max(level, self._peak_dbfs - PEAK_DECAY_DB_S * duration, SILENCE_DBFS)
        pause = level < max(SILENCE_DBFS, self._peak_dbfs - PAUSE_BELOW_PEAK_DB)
        self._quiet_for = self._quiet_for + duration if pause else 0.0
        return self._silent_for >= SILENCE_HANGOVER_S

    def encode(self, frame: Frame, force_keyframe: bool = False) -> tuple[list[bytes], int]:
        assert isinstance(frame, AudioFrame)
        self._apply_loss()
        assert self.resampler is not None
        self.frames_in += 1
        packets: list[bytes] = []
        first_ts: int | None = None
        chunks, self._carried = [*self._carried, *self.resampler.resample(frame)], []
        for chunk in chunks:
            silent = self._is_silent(chunk) and self.profile.dtx
            for packet in self.codec.encode(chunk):
                # our own RTP clock, one packet's samples at a time: a codec reopened for
                # a new loss band starts its own pts afresh, the stream's time must not
                ts = self._next_ts
                self._next_ts += SAMPLE_RATE * self.frame_ms // 1000
                self._since_sent += self.frame_ms / 1000
                if silent and self._since_sent < DTX_KEEPALIVE_S:
                    self.suppressed += 1
                    continue
                self._since_sent = 0.0
                packets.append(self._with_copy(bytes(packet), ts))
                first_ts = ts if first_ts is None else first_ts
        if not packets or first_ts is None:
            return [], 0  # nothing to send; aiortc sends nothing for an empty list
        self.packets_out += len(packets)
        return packets, first_ts

    def _with_copy(self, payload: bytes, ts: int) -> bytes:
        """``payload``, carrying the packet sent just before it when that one ended at ``ts``."""
        previous = self._previous
        self._previous = payload, ts + SAMPLE_RATE * self.frame_ms // 1000
        if not self.redundant or previous is None or previous[1] != ts:
            return payload
        try:
            return with_redundancy(payload, previous[0])
        except OpusPacketError:  # not from this libopus: send it as it is
            return payload

    def pack(self, packet: Packet) -> tuple[list[bytes], int]:
        return [bytes(packet)], convert_timebase(packet.pts or 0, packet.time_base, TIME_BASE)
