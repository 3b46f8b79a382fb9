"""The remote-audio mixer: mixing, levels, and a buffer that never lets delay creep."""

from __future__ import annotations

import asyncio
import fractions

import av
import numpy as np
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError

from siakdesk.media.audiomixer import MAX_BUFFER_MS, TARGET_BUFFER_MS, AudioMixer, _Source


class FrameFeed(MediaStreamTrack):
    """A remote participant's decoded audio, as aiortc hands it over (stereo s16, 48 kHz)."""

    kind = "audio"

    def __init__(self, amplitude: int, frames: int) -> None:
        super().__init__()
        self._left = frames
        self._amplitude = amplitude
        self._pts = 0
        self.done = asyncio.Event()

    async def recv(self) -> av.AudioFrame:
        if self._left == 0:
            self.done.set()
            await asyncio.Event().wait()  # a quiet participant: nothing more
            raise MediaStreamError
        self._left -= 1
        samples = np.full((1, 960 * 2), self._amplitude, dtype=np.int16)
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="stereo")
        frame.sample_rate = 48000
        frame.pts = self._pts
        frame.time_base = fractions.Fraction(1, 48000)
        self._pts += 960
        return frame


async def test_mixes_sources_and_knows_who_speaks() -> None:
    mixer = AudioMixer(None)
    loud, quiet = FrameFeed(8000, 10), FrameFeed(0, 10)
    mixer.add("minas", loud)
    mixer.add("kandis", quiet)
    await asyncio.wait_for(asyncio.gather(loud.done.wait(), quiet.done.wait()), 5)
    assert mixer.loudest() == "minas"
    block = mixer.pull(960)
    assert block.dtype == np.int16 and block.size == 960
    assert abs(int(block[100]) - 8000) < 200  # the loud one, the quiet one adds nothing
    await mixer.close()


async def test_a_burst_is_capped_so_delay_never_creeps() -> None:
    mixer = AudioMixer(None)
    burst = FrameFeed(1000, 100)  # 2 s arriving at once, after a stall on the link
    mixer.add("minas", burst)
    await asyncio.wait_for(burst.done.wait(), 5)
    assert mixer.buffered_ms("minas") <= MAX_BUFFER_MS
    assert mixer.dropped_samples >= 48000 * (2000 - MAX_BUFFER_MS) // 1000
    await mixer.close()


async def test_playback_waits_for_the_target_then_plays_dry_as_silence() -> None:
    mixer = AudioMixer(None)
    short = FrameFeed(3000, 1)  # 20 ms: below the target
    mixer.add("kandis", short)
    await asyncio.wait_for(short.done.wait(), 5)
    assert TARGET_BUFFER_MS > 20
    assert not mixer.pull(960).any()  # not started yet: silence, the 20 ms stay
    assert mixer.buffered_ms("kandis") == 20
    mixer.remove("kandis")
    assert mixer.levels() == {}
    await mixer.close()


def test_60_ms_pieces_a_little_late_play_without_a_hole() -> None:
    """A thin link's 60 ms packets come as 60 ms pieces, each up to 9 ms off its time."""
    mixer = AudioMixer(None)
    source = mixer._sources["far"] = _Source()
    rng = np.random.default_rng(1)
    due = [k * 60 + int(rng.integers(0, 10)) for k in range(100)]
    piece = np.full(2880, 1000, dtype=np.int16)
    for now in range(6000):  # milliseconds; the speaker pulls 10 ms blocks
        while due and due[0] <= now:
            due.pop(0)
            mixer._push("far", piece)
        if now % 10 == 5:
            mixer.pull(480)
    assert source.playing and mixer.underruns == 0
