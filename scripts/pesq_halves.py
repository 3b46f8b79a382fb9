"""PESQ-WB of each half-loop of a benchmark run's recording, each half aligned on its own.

Where in a run the speech suffered, and whether the playout's delay moved inside a
sentence (the shift of each half from where its loop started)::

    .venv/bin/python scripts/pesq_halves.py OUT_DIR 3g

``OUT_DIR`` is a ``siakdesk-bench media --out`` directory (the regent's WAV and JSON).
Needs the bench extras (pesq) and espeak-ng, as the benchmark does.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from pesq import pesq

from siakdesk.bench.media import (
    PESQ_RATE,
    RATE,
    find_lag,
    make_speech,
    read_wav,
    realign,
    resample,
)


def main(out: Path, scenario: str) -> None:
    reference, _ = read_wav(make_speech(Path(tempfile.mkdtemp())))
    recorded, _ = read_wav(out / f"{scenario}-siakdesk-regent.wav")
    recording = resample(recorded, RATE, PESQ_RATE)
    start = 5 * PESQ_RATE
    lag = find_lag(recording[start:], reference) + start
    length, half = reference.size, reference.size // 2
    first = start + ((lag % length - start) % length)
    for expected in range(first, recording.size - length + 1, length):
        row = []
        for k in (0, 1):
            piece = reference[k * half : (k + 1) * half]
            at = expected + k * half
            begin = realign(recording, piece, at, PESQ_RATE // 2)
            try:
                score = float(pesq(PESQ_RATE, piece, recording[begin : begin + half], "wb"))
            except Exception:  # no speech found in the degraded half
                score = 1.0
            row.append(
                f"{begin / PESQ_RATE:6.1f} s: {score:.2f} (moved {(begin - at) / 16:+.0f} ms)"
            )
        print(" | ".join(row))


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2])
