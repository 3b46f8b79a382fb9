"""The adaptive jitter buffer: real Opus packets (our encoder, FEC on) on scripted arrivals.

Each test feeds packets with chosen losses, delays and gaps, runs the playout on a
fake clock and checks what it played, rebuilt, concealed and how much delay it chose.
"""

from __future__ import annotations

import fractions
import itertools
import random
from collections.abc import Callable

import av
import numpy as np
import pytest
from aiortc.jitterbuffer import JitterBuffer
from aiortc.rtp import RtpPacket

from siakdesk.media import libopus
from siakdesk.media.opusprofile import AudioProfile, ProfiledOpusEncoder
from siakdesk.media.playout import FRAME, PAUSE_MOVE_MAX, RATE, AudioPlayout, RtpTap

SECONDS = 6


def speech_like(seconds: float) -> np.ndarray:
    """A voiced 'vowel' sweep with a syllable rhythm: not silent, not a pure tone."""
    t = np.arange(int(seconds * RATE)) / RATE
    pitch = 140 + 30 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(pitch) / RATE
    voice = sum(np.sin(k * phase) / k for k in range(1, 8))
    envelope = 0.55 + 0.45 * np.sin(2 * np.pi * 4 * t)
    return (voice * envelope * 5000).astype(np.int16)


def packets(seconds: float = SECONDS, loss_band: int = 10) -> list[tuple[int, int, bytes]]:
    """(seq, rtp timestamp, payload) of our Opus profile at 20 ms, FEC tuned for 10 % loss
    (FEC, not a copy of each packet in the next: the FEC path is what is tested here)."""
    encoder = ProfiledOpusEncoder(AudioProfile(frame_ms=20, redundancy=False))
    encoder.set_loss(loss_band - 1 if loss_band < 10 else 5)  # keep 20 ms frames
    return encode_speech(encoder, seconds)


def encode_speech(encoder: ProfiledOpusEncoder, seconds: float) -> list[tuple[int, int, bytes]]:
    """(seq, rtp timestamp, payload) of ``seconds`` of speech-like sound through ``encoder``."""
    samples = speech_like(seconds)
    out: list[tuple[int, int, bytes]] = []
    for n in range(0, samples.size - FRAME + 1, FRAME):
        frame = av.AudioFrame.from_ndarray(samples[n : n + FRAME].reshape(1, -1), layout="mono")
        frame.sample_rate, frame.pts = RATE, n
        frame.time_base = fractions.Fraction(1, RATE)
        payloads, timestamp = encoder.encode(frame)
        out += [(len(out), timestamp, payload) for payload in payloads]
    return out


class Run:
    def __init__(self) -> None:
        self.now = 100.0
        self.played: list[np.ndarray] = []
        self.playout = AudioPlayout(self._out, clock=lambda: self.now)

    def _out(self, frame: av.AudioFrame) -> None:
        self.played.append(frame.to_ndarray().reshape(-1))

    def feed(
        self,
        script: list[tuple[float, int, int, bytes]],
        until: float,
        after_tick: Callable[[], None] | None = None,
    ) -> None:
        """``script``: (arrival offset s, seq, ts, payload), in any order; ``after_tick``
        looks at the playout after each of its ticks."""
        events = sorted(script)
        start = self.now
        step = 0.005
        while self.now < start + until:
            while events and start + events[0][0] <= self.now:
                _, seq, ts, payload = events.pop(0)
                self.playout.push(seq & 0xFFFF, ts & 0xFFFFFFFF, payload, self.now)
            self.playout.tick(self.now)
            if after_tick is not None:
                after_tick()
            self.now += step

    @property
    def samples(self) -> int:
        return sum(p.size for p in self.played)


Script = list[tuple[float, int, int, bytes]]


def on_time(stream: list[tuple[int, int, bytes]], transit: float = 0.05) -> Script:
    return [(ts / RATE + transit, seq, ts, data) for seq, ts, data in stream]


def test_clean_stream_plays_everything_and_settles_at_a_small_delay() -> None:
    run = Run()
    script = on_time(packets())
    run.feed([e for e in script if e[0] < SECONDS - 1], until=SECONDS - 1)
    assert run.playout.delay <= 0.07  # the start's 60 ms kept
    run.feed([(e[0] - (SECONDS - 1), *e[1:]) for e in script if e[0] >= SECONDS - 1], until=2)
    stats = run.playout.stats
    assert stats.concealed == 0 and stats.recovered == 0 and stats.late == 0
    assert stats.played == len(packets())
    # steady arrivals: no concealment inserted, no speech skipped
    assert stats.stretched == 0 and stats.skipped == 0


@pytest.mark.skipif(libopus.load() is None, reason="libopus is not loadable here")
def test_a_single_loss_is_rebuilt_from_the_next_packets_fec() -> None:
    stream = packets()
    lost = {50, 120, 200}
    run = Run()
    run.feed([e for e in on_time(stream) if e[1] not in lost], until=SECONDS + 1)
    stats = run.playout.stats
    assert stats.recovered == 3 and stats.concealed == 0, stats
    # the timeline has no hole: as much audio out as went in (less what was skipped)
    assert run.samples >= (len(stream) - stats.skipped) * FRAME


@pytest.mark.skipif(libopus.load() is None, reason="libopus is not loadable here")
def test_a_loss_the_server_renumbered_is_rebuilt_not_played_as_silence() -> None:
    # the server forwards with its own sequence numbers: a packet lost on the way to it
    # leaves a timestamp gap and no sequence gap
    stream = packets()
    kept = [(s, t, d) for s, t, d in stream if s not in (50, 120, 121, 200)]
    renumbered = [(n, t, d) for n, (_s, t, d) in enumerate(kept)]
    run = Run()
    run.feed(on_time(renumbered), until=SECONDS + 1)
    stats = run.playout.stats
    assert stats.recovered == 3 and stats.concealed == 1 and stats.silent == 0, stats
    assert run.samples >= (len(stream) - stats.skipped) * FRAME


def lossy_packets(thin: bool, seconds: float = SECONDS) -> list[tuple[int, int, bytes]]:
    """Packets of a lossy link (60 ms on a thin one): each carries a copy of the one before."""
    encoder = ProfiledOpusEncoder()
    encoder.set_link(60.0 if thin else 500.0)
    for _ in range(5):
        encoder.set_loss(2.0)
    out = encode_speech(encoder, seconds)
    assert encoder.redundant
    return out


@pytest.mark.skipif(libopus.load() is None, reason="libopus is not loadable here")
@pytest.mark.parametrize(("thin", "renumbered"), [(True, False), (True, True), (False, True)])
def test_a_lost_packet_is_decoded_whole_from_the_copy_in_the_next(
    thin: bool, renumbered: bool
) -> None:
    stream = lossy_packets(thin)
    lost = {20, 45, 70}
    kept = [(s, t, d) for s, t, d in stream if s not in lost]
    if renumbered:
        kept = [(n, t, d) for n, (_s, t, d) in enumerate(kept)]
    run = Run()
    script = on_time(kept)
    run.feed([e for e in script if e[0] < 1.0], until=1.0)
    # the delay it aims at leaves room for one packet more after the 97 % transit: a
    # lost one's copy comes with the next
    wanted, points = run.playout._wanted_offset(), run.playout._transit_points()
    assert wanted is not None and points is not None
    assert wanted - points[2] >= (0.06 if thin else 0.02)
    run.feed([(t - 1.0, seq, ts, d) for t, seq, ts, d in script if t >= 1.0], until=SECONDS)
    stats = run.playout.stats
    assert stats.recovered == 3 and stats.concealed == 0 and stats.silent == 0, stats
    # what was played is what a lossless stream decodes to, sample for sample
    decoder = libopus.OpusDecoder(libopus.load())  # type: ignore[arg-type]
    clean = np.concatenate([decoder.decode(d) for _s, _t, d in stream])
    played = np.concatenate(run.played)
    assert stats.skipped == stats.stretched == 0
    # (after the stream ends, the playout conceals a little while it waits for more)
    assert played.size >= clean.size and np.array_equal(played[: clean.size], clean)


@pytest.mark.skipif(libopus.load() is None, reason="libopus is not loadable here")
def test_a_pause_keeps_the_room_for_copies_and_a_loss_after_it_is_rebuilt_in_time() -> None:
    """The first packet after a pause carries no copy (nothing before it to copy), nor
    do the DTX keep-alives in it; the link is as lossy as before the pause."""
    encoder = ProfiledOpusEncoder()
    encoder.set_link(60.0)
    for _ in range(5):
        encoder.set_loss(2.0)
    stream = encode_speech(encoder, 2.0)
    samples = np.zeros(int(1.5 * RATE), dtype=np.int16)  # a pause: DTX
    for n in range(0, samples.size, FRAME):
        frame = av.AudioFrame.from_ndarray(samples[n : n + FRAME].reshape(1, -1), layout="mono")
        frame.sample_rate, frame.pts = RATE, n
        payloads, timestamp = encoder.encode(frame)
        stream += [(len(stream), timestamp, payload) for payload in payloads]
    resumed = len(stream)
    stream += [(len(stream) + s, t, d) for s, t, d in encode_speech(encoder, 2.0)]
    lost = {resumed + 1, resumed + 10}  # the packets after the pause's first
    kept = [(n, t, d) for n, (_s, t, d) in enumerate(e for e in stream if e[0] not in lost)]
    run = Run()
    run.feed(on_time(kept), until=6.0)
    stats = run.playout.stats
    assert stats.recovered == 2 and stats.concealed == 0, stats
    # no concealment inserted into the speech to make room again after the pause
    assert stats.stretched == 0, stats


def test_a_burst_is_concealed_and_only_its_last_packet_rebuilt() -> None:
    stream = packets()
    run = Run()
    run.feed([e for e in on_time(stream) if e[1] not in (80, 81, 82, 83)], until=SECONDS + 1)
    stats = run.playout.stats
    assert stats.concealed == 3 and stats.recovered == 1, stats
    assert 0.0 < stats.concealed_share < 0.02


def test_jitter_grows_the_delay_until_packets_are_in_time() -> None:
    stream = packets(seconds=20)
    rng = random.Random(7)
    script = [(ts / RATE + 0.05 + rng.uniform(0, 0.08), seq, ts, d) for seq, ts, d in stream]
    first = [e for e in script if e[0] < 10]
    rest = [(e[0] - 10, *e[1:]) for e in script if e[0] >= 10]
    run = Run()
    run.feed(first, until=10)
    learning = run.playout.stats.late
    # a few packets are late while it learns ...
    assert learning <= 0.05 * len(first), run.playout.stats
    assert 0.05 <= run.playout.delay <= 0.2, run.playout.delay
    run.feed(rest, until=11)
    # ... after that 97 % arrive in time
    assert run.playout.stats.late - learning <= 0.03 * len(rest), run.playout.stats


def test_dtx_gap_is_silence_not_loss() -> None:
    stream = packets()
    # the sender stops for 400 ms after packet 100 (its sequence numbers go on unbroken)
    gap = 20 * FRAME
    shifted = [(s, t if s <= 100 else t + gap, d) for s, t, d in stream]
    run = Run()
    run.feed(on_time(shifted), until=SECONDS + 2)
    stats = run.playout.stats
    assert stats.concealed == 0 and stats.late == 0
    assert stats.silent >= 15


def test_a_long_delay_is_given_back_a_little_in_each_pause() -> None:
    """A burst held up for 300 ms (a probe that overfilled the link) grows the delay;
    once it has left the window, the delay comes back down in the pauses, never more
    than PAUSE_MOVE_MAX in one: PESQ-WB of a benchmark half-loop with one pause cut by
    220 ms scored 3.2, the same speech with the pause cut by 100 ms or less 4.12."""
    stream = packets(seconds=24)
    # a 400 ms pause (DTX) after every second of speech; sequence numbers unbroken
    pause = 20 * FRAME
    shifted = [(s, t + (t // RATE) * pause, d) for s, t, d in stream]
    script = on_time(shifted)
    # a queue holds packets 40-55 up: they come together, the first one 300 ms late
    release = script[40][0] + 0.3
    script = [
        (max(a, release + 0.002 * (s - 40)) if 40 <= s <= 55 else a, s, t, d)
        for a, s, t, d in script
    ]
    run = Run()
    # the delay as each packet starts to play (a pause's wait and cut cancel out)
    offsets: list[float] = []
    played = [0]

    def note_delay() -> None:
        playout = run.playout
        if playout.stats.played > played[0] and playout._play_at is not None:
            offsets.append(playout._play_at - playout._play_ts / RATE)
        played[0] = playout.stats.played

    # until the last packet has come, and played
    run.feed(script, until=max(a for a, *_ in script) + 0.5, after_tick=note_delay)
    moves = [b - a for a, b in itertools.pairwise(offsets) if abs(b - a) > 1e-6]
    assert max(offsets) - min(offsets) >= 0.2  # it grew, and came back down
    assert offsets[-1] - min(offsets) < 0.05
    # never cut by more than PAUSE_MOVE_MAX at once, so over several pauses
    assert min(moves) >= -PAUSE_MOVE_MAX / RATE - 1e-6, moves
    assert sum(1 for m in moves if m < -0.03) >= 3, moves
    # and by the pauses only: no packet of the speech was skipped, and what was left
    # of a pause after its cut played as silence (it was rebuilt from the next packet's
    # FEC as if a packet were lost right after speech)
    assert run.playout.stats.played == len(stream), run.playout.stats
    assert run.playout.stats.recovered == 0, run.playout.stats
    assert run.playout.stats.late == 0


def test_a_late_packet_is_concealed_and_counted() -> None:
    stream = packets()
    script = on_time(stream)
    script[60] = (script[60][0] + 0.5, *script[60][1:])  # held up for half a second
    run = Run()
    run.feed(script, until=SECONDS + 1)
    stats = run.playout.stats
    assert stats.late == 1
    assert stats.concealed + stats.recovered >= 1


def test_garbage_payloads_are_counted_not_fatal() -> None:
    stream = packets(seconds=2)
    script = on_time(stream)
    script[10] = (script[10][0], 10, script[10][2], b"\xff\xff\xff\xff\x00")
    run = Run()
    run.feed(script, until=3)
    assert run.playout.stats.played + run.playout.stats.undecodable >= len(stream) - 5


def test_aiortc_audio_jitter_buffer_holds_a_loss_for_16_packets() -> None:
    """Why the playout replaces aiortc's: one lost packet stalls everything behind it."""
    buffer = JitterBuffer(capacity=16, prefetch=4)
    released = []
    for seq in range(40):
        if seq == 10:
            continue
        packet = RtpPacket(payload_type=111, sequence_number=seq, timestamp=seq * FRAME)
        packet._data = b"x"  # type: ignore[attr-defined]
        _, frame = buffer.add(packet)
        released.append(frame is not None)
    # packets 11..25 arrive and nothing comes out until the buffer overflows
    assert not any(released[10:24])


def test_rtp_tap_hands_packets_over() -> None:
    got = []
    tap = RtpTap(lambda seq, ts, data: got.append((seq, ts, data)))
    packet = RtpPacket(payload_type=111, sequence_number=5, timestamp=960)
    packet._data = b"abc"  # type: ignore[attr-defined]
    assert tap.add(packet) == (False, None)
    assert got == [(5, 960, b"abc")]
