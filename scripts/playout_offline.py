"""Speech through our Opus encoder, a simulated lossy link and our playout, scored offline.

What the codec and the jitter buffer can reach with no machine load and no queue, to
set beside the live benchmark (``siakdesk-bench media``): same espeak-ng sample, same
PESQ-WB per loop.  Also scores a perfect decoder given the same losses (each lost
packet decoded from the copy the next one carries, or rebuilt from its FEC when the
profile sends no copies): the ceiling of the codec and its redundancy.

    .venv/bin/python scripts/playout_offline.py --loss 0.03 --jitter-ms 20 [--thin] [--renumber]

``--retune-every S``: the encoder's loss band flips every S seconds (between the
loss's band and 20 %), as the receiver's reports of a loss that comes and goes make it.
``--spike-every S --spike-ms M``: every S seconds a queue builds up to M ms over
0.35 s and drains (a failed probe, a burst of video in front of a thin link).
``--thin``: 60 ms packets (a thin link); ``--renumber``: losses happen before the
server, which renumbers what it forwards (no sequence number is missing at the
receiver), as on the benchmark's far office link.  Needs the bench extras (pesq)
and espeak-ng.
"""

from __future__ import annotations

import argparse
import fractions
import random
import tempfile
from collections.abc import Sequence
from pathlib import Path

import av
import numpy as np

from siakdesk.bench import media as bench
from siakdesk.media.opuspacket import redundancy
from siakdesk.media.opusprofile import LOSS_BANDS, ProfiledOpusEncoder, loss_band
from siakdesk.media.playout import AudioPlayout, make_decoder

RATE = 48000
FRAME = 960
LOOPS = 4


def encode(
    signal: np.ndarray, loss: float, thin: bool, retune_every: float = 0.0
) -> tuple[list[tuple[int, bytes]], int]:
    encoder = ProfiledOpusEncoder()
    for _ in range(10):  # the smoothed loss settles in its band
        encoder.set_loss(100 * loss)
    encoder.set_link(60 if thin else 500)
    packets = []
    bands = (loss_band(100 * loss), LOSS_BANDS[-1])
    for i in range(0, signal.size - FRAME, FRAME):
        if retune_every and i % int(retune_every * RATE) < FRAME:
            # what a receiver's reports of a loss that comes and goes do: a new band
            encoder._wanted_loss = bands[(i // int(retune_every * RATE)) % 2]
        frame = av.AudioFrame.from_ndarray(
            signal[i : i + FRAME].reshape(1, -1), format="s16", layout="mono"
        )
        frame.sample_rate, frame.pts, frame.time_base = RATE, i, fractions.Fraction(1, RATE)
        payloads, ts = encoder.encode(frame)
        step = RATE * encoder.frame_ms // 1000
        packets += [(ts + k * step, p) for k, p in enumerate(payloads)]
    print("encoder:", encoder.settings, "packets:", len(packets))
    return packets, RATE * encoder.frame_ms // 1000


def queue_delay(sent: float, spikes: Sequence[float], peak: float) -> float:
    """Extra delay of a packet sent at ``sent`` when a queue builds at each of ``spikes``
    (seconds): up to ``peak`` over 0.35 s, then draining as fast (a probe's padding or a
    burst of video in front of a thin link)."""
    extra = 0.0
    for at in spikes:
        if at <= sent < at + 0.35:
            extra = max(extra, peak * (sent - at) / 0.35)
        elif at + 0.35 <= sent < at + 0.35 + peak:
            extra = max(extra, peak - (sent - at - 0.35))
    return extra


def through_playout(
    packets: list[tuple[int, bytes]],
    lost: set[int],
    jitter: float,
    renumber: bool,
    size: int,
    spikes: Sequence[float] = (),
    spike_peak: float = 0.0,
) -> np.ndarray:
    rng = random.Random(2)
    arrivals = []
    seq = 0
    for k, (ts, payload) in enumerate(packets):
        if k in lost and renumber:
            continue  # lost before the forwarder: it numbers what it got
        seq += 1
        if k not in lost:
            sent = ts / RATE
            late = 0.15 + rng.uniform(0, jitter) + queue_delay(sent, spikes, spike_peak)
            arrivals.append((sent + late, seq, ts, payload))
    arrivals.sort()
    out = np.zeros(size, dtype=np.int16)

    def play(frame: av.AudioFrame) -> None:
        pcm = frame.to_ndarray().reshape(-1)
        start = int(frame.pts or 0)
        out[start : start + pcm.size] = pcm[: max(0, size - start)]

    now = [0.0]
    playout = AudioPlayout(play, clock=lambda: now[0])
    index, t = 0, 0.0
    while t < size / RATE:
        while index < len(arrivals) and arrivals[index][0] <= t:
            at, seq_, ts, payload = arrivals[index]
            playout.push(seq_ & 0xFFFF, ts & 0xFFFFFFFF, payload, arrival=at)
            index += 1
        now[0] = t
        playout.tick(t)
        t += 0.005
    print("playout:", playout.stats.as_json())
    return out


def perfect(packets: list[tuple[int, bytes]], lost: set[int], step: int, size: int) -> np.ndarray:
    decoder = make_decoder()
    out = np.zeros(size, dtype=np.int16)
    for k, (ts, payload) in enumerate(packets):
        if k not in lost:
            pcm = decoder.decode(payload)
        elif k + 1 < len(packets) and k + 1 not in lost:
            # the copy the next packet carries (a lossy link), else its FEC
            copy = redundancy(packets[k + 1][1])
            pcm = decoder.decode(copy) if copy else decoder.recover(packets[k + 1][1], step)
        else:
            pcm = decoder.conceal(step)
        pcm = np.asarray(pcm, dtype=np.int16)
        out[ts : ts + pcm.size] = pcm[: max(0, size - ts)]
    return out


def scores(recording48: np.ndarray, reference16: np.ndarray) -> list[float]:
    recording = bench.resample(recording48, RATE, bench.PESQ_RATE).astype(np.int16)
    lag = bench.find_lag(recording, reference16)
    return [round(s, 2) for _, s in bench.pesq_windows(recording, reference16, lag, 0)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--loss", type=float, default=0.03)
    parser.add_argument("--jitter-ms", type=float, default=0.0)
    parser.add_argument("--thin", action="store_true")
    parser.add_argument("--renumber", action="store_true")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--retune-every", type=float, default=0.0, help="seconds between loss band changes"
    )
    parser.add_argument(
        "--spike-every", type=float, default=0.0, help="seconds between queue spikes"
    )
    parser.add_argument("--spike-ms", type=float, default=250.0, help="a spike's peak delay")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        speech16, _ = bench.read_wav(bench.make_speech(Path(directory)))
    signal = np.tile(bench.resample(speech16, bench.PESQ_RATE, RATE).astype(np.int16), LOOPS)
    packets, step = encode(signal, args.loss, args.thin, args.retune_every)
    rng = random.Random(args.seed)
    lost = {k for k in range(len(packets)) if rng.random() < args.loss}
    size = signal.size + 3 * RATE
    every = args.spike_every
    spikes = [every * (n + 0.5) for n in range(int(size / RATE / every))] if every else []
    played = through_playout(
        packets, lost, args.jitter_ms / 1000, args.renumber, size, spikes, args.spike_ms / 1000
    )
    ideal = perfect(packets, lost, step, size)
    print("PESQ-WB per loop, our playout:   ", scores(played, speech16))
    print("PESQ-WB per loop, perfect decoder:", scores(ideal, speech16))


if __name__ == "__main__":
    main()
