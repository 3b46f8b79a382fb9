"""The receive side of audio: an adaptive jitter buffer that conceals loss.

Why not aiortc's: its audio ``JitterBuffer(capacity=16, prefetch=4)`` hands a
frame on only when the packets before it are complete, so one lost packet holds
the stream back until 16 more have come (320 ms), then releases them in a burst;
and its decoder (FFmpeg's libopus) never sees the loss, so there is no Opus FEC
and no concealment, only a hole.  On a 3 % loss link that is a stall every
second or so.

:class:`AudioPlayout` takes the RTP packets of one receive slot as they arrive
(:func:`tap_rtp` diverts them from aiortc's jitter buffer) and plays them out
on its own clock, one packet's worth at a time, the way WebRTC's NetEq does in
little:

* **Playout delay adapts to the jitter**: each packet's *transit*
  (arrival time minus its RTP time) is kept for 10 s; the delay is set so that
  97 % of packets arrive before their turn, plus a 10 ms margin, within
  20-500 ms.  It changes where it costs least, as NetEq does:

  - a packet not here at its turn is *waited for* (up to 60 ms of concealment
    is played while the timeline holds): when it comes, it plays, nothing of the
    speech is lost and the delay has grown by the wait;
  - in a pause (the sender's DTX), the delay moves to what is wanted for free:
    silence is cut short or drawn out, by at most 80 ms in one pause, a bigger
    move spread over the pauses that follow (measured on a benchmark half-loop:
    one pause cut by 220 ms scored PESQ-WB 3.2 over 3.4 s of intact speech, the
    same speech with the cut at 100 ms or less 4.12; PESQ, like a listener,
    takes a rhythm that changes a little at a time);
  - in speech, only when far off: 60 ms short (concealment inserted) or 60 ms
    too long for 3 s (a quiet frame skipped, at most one every 4 s and none
    within 4 s of a pause's cut: the pauses give it back).

  Measured before this (2026-11-22): on a clean link on a busy machine the
  receiving event loop's jitter moved the quantile all the time, and every move
  inserted concealment into speech: PESQ-WB 3.2 where aiortc's receiver got 4.6.
* **Loss is concealed**: a packet missing at its turn is rebuilt from the Opus
  FEC the next packet carries when that one is already here, otherwise by
  libopus's packet loss concealment (:mod:`siakdesk.media.libopus`).
* **Silence is not loss, a renumbered loss is**: the server forwards what it
  got with its own sequence numbers, so a packet lost on the way *to* the
  server arrives as a timestamp gap with no sequence number missing.  Right
  after speech (up to 120 ms) such a gap is a loss: concealed, its last frame
  rebuilt from the next packet's FEC.  (Measured before this on the benchmark's
  3 % loss link: the regent's playout counted 0 losses and played 6 s of silence
  in 40 s.)  After silence it is the sender's DTX (which our encoder starts
  only after 200 ms of silence), or a new participant in the slot; it plays as silence
  (nothing is handed on: the mixer plays silence for a quiet source) and is
  counted apart.  After a second with nothing to play the buffer goes idle and
  starts afresh with the next packet.

Everything it does is counted (:class:`PlayoutStats`): the benchmark's
"audio concealed" is ``concealed / (played + concealed)``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import fractions
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import av
import numpy as np
from aiortc import RTCRtpReceiver

from siakdesk.media import libopus
from siakdesk.media.opuspacket import parse, redundancy

logger = logging.getLogger(__name__)

RATE = libopus.SAMPLE_RATE
FRAME = RATE // 50  # 20 ms
TIME_BASE = fractions.Fraction(1, RATE)
MIN_DELAY = 0.02
MAX_DELAY = 0.5
INITIAL_DELAY = 0.06
MARGIN = 0.01
#: Transit times kept to choose the delay (seconds).
WINDOW_S = 10.0
QUANTILE = 0.97
#: Concealment frames played while waiting for a packet before it turns to silence.
MAX_EXPAND_FRAMES = 3
#: With nothing to play for this long, stop and start afresh with the next packet.
IDLE_AFTER_S = 1.0
QUIET_RMS = 0.01
#: A timestamp gap right after speech up to this long (samples; or three packets of
#: 60 ms) is taken for lost packets (renumbered by a forwarder), longer for a pause.
MAX_HIDDEN_GAP = 6 * FRAME
#: In speech, the delay grows when it is this much shorter than wanted (or at once
#: on a late packet), and shrinks when this much longer for 3 s: small swings of
#: the quantile must not turn into concealment inserted into speech.  Smaller
#: steps are taken by waiting for a packet at an underrun, or in a pause.
GROW_BELOW_S = 0.06
SHRINK_ABOVE_S = 0.06
#: Packets are taken to carry copies this long after the last one that did.
COPIES_HOLD_S = 10.0
#: In speech, a frame is skipped to shrink the delay at most once in this long, and
#: not this long after a pause was cut short.
SKIP_AFTER_SHRINK_S = 4.0
#: In a pause (silence), the delay is moved to the wanted one when this far off ...
PAUSE_SLACK_S = 0.01
#: ... by at most this much in one pause (cut short or drawn out); a bigger move is
#: spread over the pauses that follow.
PAUSE_MOVE_MAX = int(0.08 * RATE)


@dataclasses.dataclass
class PlayoutStats:
    #: packets decoded and played
    played: int = 0
    #: lost packets rebuilt from the FEC of the next packet
    recovered: int = 0
    #: lost or late packets replaced by concealment
    concealed: int = 0
    #: packets that came after their turn (then concealed)
    late: int = 0
    #: frames of silence for a sender's DTX or pause
    silent: int = 0
    #: frames inserted to grow the delay, and skipped to shrink it
    stretched: int = 0
    skipped: int = 0
    #: packets that could not be decoded
    undecodable: int = 0

    @property
    def concealed_share(self) -> float:
        total = self.played + self.recovered + self.concealed
        return (self.concealed / total) if total else 0.0

    def add(self, other: PlayoutStats) -> None:
        for field in dataclasses.fields(self):
            setattr(self, field.name, getattr(self, field.name) + getattr(other, field.name))

    def as_json(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["concealed_share"] = round(self.concealed_share, 4)
        return out


class _FallbackDecoder:
    """PyAV's decoder when libopus is not loadable: no FEC, concealment by fading out."""

    def __init__(self) -> None:
        self._codec: Any = av.CodecContext.create("opus", "r")
        self._codec.sample_rate = RATE
        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)
        self._last: np.ndarray = np.zeros(FRAME, dtype=np.int16)

    def decode(self, packet: bytes) -> np.ndarray:
        frames = []
        for frame in self._codec.decode(av.Packet(packet)):
            for out in self._resampler.resample(frame):
                frames.append(out.to_ndarray().reshape(-1))
        pcm = np.concatenate(frames) if frames else np.zeros(0, dtype=np.int16)
        if pcm.size:
            self._last = pcm
        return pcm

    def recover(self, next_packet: bytes, samples: int) -> np.ndarray:
        return self.conceal(samples)

    def conceal(self, samples: int) -> np.ndarray:
        tail = np.resize(self._last, samples).astype(np.float32)
        tail *= np.linspace(0.5, 0.0, samples, dtype=np.float32)
        self._last = (self._last.astype(np.float32) * 0.25).astype(np.int16)
        return tail.astype(np.int16)

    def close(self) -> None:
        pass


def make_decoder() -> Any:
    lib = libopus.load()
    return libopus.OpusDecoder(lib) if lib is not None else _FallbackDecoder()


def _rms(pcm: np.ndarray) -> float:
    """Root mean square of int16 samples, 0..1."""
    return float(np.sqrt(np.mean(pcm.astype(np.float32) ** 2))) / 32768 if pcm.size else 0.0


def _unwrap(value: int, last: int | None, bits: int) -> int:
    if last is None:
        return value
    span = 1 << bits
    delta = (value - last) % span
    if delta >= span // 2:
        delta -= span
    return last + delta


@dataclasses.dataclass
class _Packet:
    seq: int
    ts: int
    payload: bytes


class AudioPlayout:
    """One receive slot's packets in, 48 kHz mono audio frames out on a steady clock.

    ``on_frame`` gets ``av.AudioFrame`` objects with a continuous ``pts``.
    :meth:`push` is called on the event loop for every RTP packet;
    :meth:`run` (a task) or :meth:`tick` (tests) plays out what is due.
    """

    def __init__(
        self,
        on_frame: Callable[[av.AudioFrame], None],
        decoder: Any = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._on_frame = on_frame
        self._decoder = decoder if decoder is not None else make_decoder()
        self._clock = clock
        self.stats = PlayoutStats()
        self._buffer: dict[int, _Packet] = {}
        self._raw_seq: int | None = None
        self._raw_ts: int | None = None
        self._last_seq: int | None = None  # the last sequence number played or given up
        self._play_ts = 0  # RTP time of the next sample out
        self._play_at: float | None = None  # when it is due; None: idle
        self._transits: deque[tuple[float, float]] = deque()
        self._last_duration = FRAME
        #: the last packet carried a copy of the one before (a lossy link)
        self._copies = False
        self._copy_seen_at = float("-inf")
        self._expanding = 0
        self._underrun_since: float | None = None
        self._held = 0  # frames played while waiting for the next packet
        self._held_samples = 0  # and their samples
        #: samples this pause was cut short by, less those waited at its start (the
        #: pause itself, not a move), and drawn out by (see PAUSE_MOVE_MAX)
        self._pause_cut = 0
        self._pause_drawn = 0
        self._last_loud = False  # the last packet played was speech, not silence
        self._last_grow = -1.0
        self._last_shrink = -1.0
        self._above_since: float | None = None
        self._out_pts = 0
        self._wakeup = asyncio.Event()

    # -- input -----------------------------------------------------------------------

    def push(self, seq: int, timestamp: int, payload: bytes, arrival: float | None = None) -> None:
        now = self._clock() if arrival is None else arrival
        seq = self._raw_seq = _unwrap(seq, self._raw_seq, 16)
        ts = self._raw_ts = _unwrap(timestamp, self._raw_ts, 32)
        if not payload:
            return
        if redundancy(payload) is not None:
            self._copy_seen_at = now
        # the first packet after a pause has nothing to copy, nor has a DTX keep-alive:
        # the link is as lossy as before, and the delay must not dance in every pause
        self._copies = now - self._copy_seen_at < COPIES_HOLD_S
        transit = now - ts / RATE
        if self._transits and abs(transit - self._transits[-1][1]) > 1.0:
            self._transits.clear()  # another source in the slot, or the sender restarted
            if self._play_at is not None and ts > self._play_ts + RATE:
                self._play_at = None
        self._transits.append((now, transit))
        while self._transits and self._transits[0][0] < now - WINDOW_S:
            self._transits.popleft()
        if self._play_at is None:
            self._start(seq, ts, now)
        elif ts < self._play_ts or (self._last_seq is not None and seq <= self._last_seq):
            self.stats.late += 1  # its turn is over; concealment played in its place
            if self._last_seq is not None and seq > self._last_seq:
                self._last_seq = seq  # its place in the sequence is taken
            self._grow(self._play_ts - ts, now)
            return
        self._buffer[seq] = _Packet(seq, ts, payload)
        if ts > self._play_ts + MAX_DELAY * RATE * 2:
            self._play_at = None  # far ahead of anything playable: start afresh
            self._start(seq, ts, now)
        self._wakeup.set()

    def _start(self, seq: int, ts: int, now: float) -> None:
        self._buffer.clear()
        self._last_seq = seq - 1
        self._play_ts = ts
        self._play_at = now + max(INITIAL_DELAY, self._wanted_delay())
        self._underrun_since = None
        self._held = self._held_samples = 0

    # -- delay -----------------------------------------------------------------------

    def _wanted_offset(self) -> float | None:
        """Play time minus RTP time that lets 97 % of packets arrive in time; when the
        packets carry a copy of the one before, one packet more: a lost packet's copy
        comes with the next, and is used only if that is in time for the lost one's turn."""
        points = self._transit_points()
        if points is None:
            return None
        low, _median, high = points
        copy = self._last_duration / RATE if self._copies else 0.0
        return min(max(high + copy + MARGIN, low + MIN_DELAY), low + MAX_DELAY)

    def _transit_points(self) -> tuple[float, float, float] | None:
        """The window's quickest, median and 97 % transit (seconds); None: no packets yet."""
        if not self._transits:
            return None
        values = sorted(t for _, t in self._transits)
        high = values[min(len(values) - 1, int(QUANTILE * len(values)))]
        return values[0], values[len(values) // 2], high

    def _wanted_delay(self) -> float:
        offset = self._wanted_offset()
        if offset is None or not self._transits:
            return INITIAL_DELAY
        return max(MIN_DELAY, offset - self._transits[-1][1])

    @property
    def delay(self) -> float:
        """Seconds from a packet's typical arrival to its playout, now."""
        points = self._transit_points()
        if self._play_at is None or points is None:
            return 0.0
        return max(0.0, self._play_at - self._play_ts / RATE - points[1])

    @property
    def spread(self) -> tuple[float, float]:
        """How much later than the quickest packet of the window the median one and the
        97 % one came (seconds): the link's queueing and jitter as this buffer sees it."""
        points = self._transit_points()
        if points is None:
            return 0.0, 0.0
        low, median, high = points
        return median - low, high - low

    def _grow(self, samples: int, now: float) -> None:
        frames = min(5, -(-samples // FRAME))
        self._expanding = max(self._expanding, frames)
        self._last_grow = now

    # -- output ----------------------------------------------------------------------

    def tick(self, now: float | None = None) -> int:
        """Play out everything due by ``now``; returns how many frames went out."""
        now = self._clock() if now is None else now
        out = 0
        while self._play_at is not None and self._play_at <= now:
            if now - self._play_at > 0.2:  # the loop stalled: do not play old audio fast
                self._play_at = now
            self._step(now)
            out += 1
        return out

    def _emit(self, pcm: np.ndarray, audible: bool = True) -> None:
        """Play ``pcm`` (``audible=False``: silence, time passes but nothing is handed on;
        the mixer plays silence for a source that sends nothing)."""
        if not audible:
            assert self._play_at is not None
            self._play_at += pcm.size / RATE
            self._out_pts += pcm.size
            return
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = RATE
        frame.pts = self._out_pts
        frame.time_base = TIME_BASE
        self._out_pts += pcm.size
        assert self._play_at is not None
        self._play_at += pcm.size / RATE
        self._on_frame(frame)

    def _step(self, now: float) -> None:
        offset = self._wanted_offset()
        current = (self._play_at or now) - self._play_ts / RATE
        if (
            offset is not None
            and current < offset - GROW_BELOW_S
            and self._expanding == 0
            and now - self._last_grow >= 0.5
        ):
            self._grow(int((offset - current) * RATE), now)
        if self._expanding:
            self._expanding -= 1
            self.stats.stretched += 1
            self._emit(self._safe(lambda: self._decoder.conceal(FRAME), FRAME))
            return
        packet = self._buffer.pop(self._last_seq + 1, None) if self._last_seq is not None else None
        if packet is not None and packet.ts <= self._play_ts:
            self._underrun_since = None
            self._settle_held(pause=False)
            self._pause_cut = self._pause_drawn = 0
            self._last_seq = packet.seq
            pcm = self._decode(packet)
            self._play_ts = packet.ts + pcm.size
            self._last_duration = pcm.size or FRAME
            self._last_loud = _rms(pcm) >= QUIET_RMS
            if self._should_skip(offset, current, pcm, now):
                self.stats.skipped += 1
                return  # the delay shrinks by this packet; decoder state kept
            self.stats.played += 1
            self._emit(pcm)
            return
        hidden_gap = max(MAX_HIDDEN_GAP, 3 * self._last_duration)
        if packet is not None and (
            (self._last_loud and packet.ts - self._play_ts <= hidden_gap)
            or self._copy_for_now(packet) is not None
        ):
            # the next packet starts later, right after speech: a loss the forwarder
            # renumbered (an SFU sends what it got with its own sequence numbers), not
            # DTX, which starts only after silence.  The frame just before the packet
            # is rebuilt from its FEC, the ones before that concealed
            self._buffer[packet.seq] = packet
            self._settle_held(pause=False)
            gap = packet.ts - self._play_ts
            samples = min(gap, self._last_duration)
            if not self._held_took(gap):
                self._replace_lost(packet, samples, from_fec=gap <= self._last_duration)
            return
        if packet is not None:  # the next packet starts later: DTX, or a new source
            self._buffer[packet.seq] = packet
            self._settle_held(pause=True)
            # what plays now is the pause: what is left of it after a cut is silence
            # too, not a loss right after speech
            self._last_loud = False
            if offset is not None and current > offset + PAUSE_SLACK_S:
                # too long a delay: cut the pause short (no time passes)
                cut = min(
                    packet.ts - self._play_ts,
                    int((current - offset) * RATE),
                    PAUSE_MOVE_MAX - self._pause_cut,
                )
                if cut > 0:
                    self.stats.skipped += 1
                    self._play_ts += cut
                    self._pause_cut += cut
                    self._last_shrink = now
                    return
            if (
                offset is not None
                and current < offset - PAUSE_SLACK_S
                and self._pause_drawn + FRAME <= PAUSE_MOVE_MAX
            ):
                # too short: draw the pause out (time passes, the timeline holds)
                self.stats.silent += 1
                self._pause_drawn += FRAME
                self._emit(np.zeros(FRAME, dtype=np.int16), audible=False)
                return
            gap = min(packet.ts - self._play_ts, FRAME)
            self.stats.silent += 1
            self._play_ts += gap
            self._emit(np.zeros(gap, dtype=np.int16), audible=False)
            return
        later = [p for p in self._buffer.values() if p.seq > (self._last_seq or 0)]
        if later:  # the next packet is missing and others are here: it is lost
            following = min(later, key=lambda p: p.seq)
            samples = max(FRAME // 4, min(following.ts - self._play_ts, self._last_duration))
            assert self._last_seq is not None
            self._last_seq += 1
            if not self._held_took(samples):
                self._replace_lost(following, samples, following.seq == self._last_seq + 1)
            return
        # nothing here: a late packet, a loss at the end, or the sender paused.  Wait for
        # it with the timeline held (concealment first, then silence): a packet held up
        # by the network or by a busy computer plays in full when it comes, and the
        # delay has grown by the wait; the next pause gives the time back
        if self._underrun_since is None:
            self._underrun_since = now
        if now - self._underrun_since >= IDLE_AFTER_S:
            self._settle_held(pause=True)
            self._play_at = None  # idle until the next packet
            return
        self._held += 1
        if self._held <= MAX_EXPAND_FRAMES:
            pcm = self._safe(lambda: self._decoder.conceal(self._last_duration), FRAME)
            self._held_samples += pcm.size
            self._emit(pcm)
        else:
            self._held_samples += FRAME
            self._emit(np.zeros(FRAME, dtype=np.int16), audible=False)

    def _copy_for_now(self, packet: _Packet) -> bytes | None:
        """The copy of the packet due now that ``packet`` carries (60 ms on a lossy link,
        see :mod:`siakdesk.media.opuspacket`), if it carries that one."""
        copy = redundancy(packet.payload)
        if copy is None or packet.ts - parse(copy).samples != self._play_ts:
            return None
        return copy

    def _replace_lost(self, following: _Packet, samples: int, from_fec: bool) -> None:
        """Play a lost packet's turn: decoded from the copy ``following`` carries, rebuilt
        from its FEC (when it is the very next one), else concealed."""
        copy = self._copy_for_now(following)
        if copy is not None:
            pcm = self._safe(lambda: self._decoder.decode(copy), samples)
            self.stats.recovered += 1
        elif from_fec:
            pcm = self._safe(lambda: self._decoder.recover(following.payload, samples), samples)
            self.stats.recovered += 1
        else:
            pcm = self._safe(lambda: self._decoder.conceal(samples), samples)
            self.stats.concealed += 1
        self._play_ts += pcm.size
        self._emit(pcm)

    def _held_took(self, samples: int) -> bool:
        """A packet waited for turned out lost: the concealment played while waiting
        took its turn (up to ``samples``), so the delay does not grow by the wait."""
        if not self._held:
            return False
        self.stats.concealed += self._held
        self._play_ts += min(samples, self._held_samples)
        self._held = self._held_samples = 0
        return True

    def _settle_held(self, pause: bool) -> None:
        """The frames played while waiting: the delay grew (``stretched``), or a pause began."""
        if pause:
            self.stats.silent += self._held
            # waited at the pause's start with the timeline held: that was the pause
            # playing, and cutting it back is no move of the delay
            self._pause_cut -= self._held_samples
        else:
            self.stats.stretched += self._held
        self._held = self._held_samples = 0

    def _should_skip(
        self, offset: float | None, current: float, pcm: np.ndarray, now: float
    ) -> bool:
        if offset is None or current <= offset + SHRINK_ABOVE_S:
            self._above_since = None
            return False
        if self._above_since is None:
            self._above_since = now
        if now - self._above_since < 3.0 or now - self._last_shrink < SKIP_AFTER_SHRINK_S:
            return False
        # only in a pause of speech, unless the delay is far too long: a skipped word
        # costs more than 60 ms of delay; and not while the pauses are giving it back
        # (PAUSE_MOVE_MAX each: after a 0.5 s queue, a 64 kbit/s office's 60 ms packets
        # were skipped in speech between them)
        quiet = _rms(pcm) < QUIET_RMS
        if quiet or current > offset + 0.25:
            self._last_shrink = now
            return True
        return False

    def _decode(self, packet: _Packet) -> np.ndarray:
        try:
            return np.asarray(self._decoder.decode(packet.payload), dtype=np.int16)
        except ValueError:
            self.stats.undecodable += 1
            return self._safe(
                lambda: self._decoder.conceal(self._last_duration), self._last_duration
            )

    @staticmethod
    def _safe(make: Callable[[], np.ndarray], samples: int) -> np.ndarray:
        try:
            pcm = np.asarray(make(), dtype=np.int16)
        except ValueError:
            pcm = np.zeros(0, dtype=np.int16)
        return pcm if pcm.size else np.zeros(samples, dtype=np.int16)

    async def run(self) -> None:
        """Play out on the event loop until cancelled."""
        try:
            while True:
                if self._play_at is None:
                    self._wakeup.clear()
                    await self._wakeup.wait()
                    continue
                wait = self._play_at - self._clock()
                if wait > 0:
                    # not asyncio.wait_for: on Python 3.11 it can swallow a cancellation
                    # that meets a wake-up (50 a second here), and the task never ends
                    self._wakeup.clear()
                    timer = asyncio.get_running_loop().call_later(wait, self._wakeup.set)
                    try:
                        await self._wakeup.wait()
                    finally:
                        timer.cancel()
                    continue
                self.tick()
        finally:
            self._decoder.close()


class RtpTap:
    """Stands in for an aiortc receiver's jitter buffer; every packet goes to ``on_packet``.

    aiortc's receiver depayloads each RTP packet (``packet._data``), then calls
    ``jitter_buffer.add(packet)`` and decodes the frame that returns; this tap
    returns none, so aiortc decodes nothing and the playout gets the packets
    with their sequence numbers.  A seam of aiortc 1.16 with no public API,
    guarded like :mod:`siakdesk.media.encodedtap`.
    """

    capacity = 16

    def __init__(self, on_packet: Callable[[int, int, bytes], None]) -> None:
        self._on_packet = on_packet

    def add(self, packet: Any) -> tuple[bool, None]:
        self._on_packet(packet.sequence_number, packet.timestamp, getattr(packet, "_data", b""))
        return False, None

    def remove(self, count: int) -> None:
        pass


def tap_rtp(receiver: RTCRtpReceiver, to: AudioPlayout | Callable[[int, int, bytes], None]) -> None:
    """Route ``receiver``'s audio packets to a playout (or any ``(seq, timestamp,
    payload)`` callback) instead of aiortc's jitter buffer."""
    attribute = "_RTCRtpReceiver__jitter_buffer"
    if getattr(receiver, attribute, None) is None or not hasattr(
        getattr(receiver, attribute), "add"
    ):
        raise RuntimeError("this aiortc version has no jitter buffer to tap")
    setattr(receiver, attribute, RtpTap(to.push if isinstance(to, AudioPlayout) else to))
