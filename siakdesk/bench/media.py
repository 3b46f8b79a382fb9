"""``siakdesk-bench media``: the media engine on shaped links, against aiortc's defaults.

Each :class:`Scenario` is data: the link of the *far* office (capacity and
loss over time, delay and jitter), how long, how many offices.  For each one
the runner builds a :class:`~siakdesk.netlab.namespaces.NetLab` (a namespace
for the server and one per office), shapes the far office's link with ``tc
tbf`` and ``nft`` as the scenario says when it says it, adds the delay and
jitter inside the far office's bot (the in-process emulator on its UDP: this
kernel has no netem), and runs real ``siakdesk-server`` and ``siakdesk-bot``
processes:

* the **far office** sends an Indonesian speech sample (``espeak-ng -v id``,
  16 kHz, looped) and a 640x360 camera at 15 fps; in ``four`` the other
  offices send a camera too and a quiet room's sound (they listen: a tone
  would be mixed into what the regent hears and scored with the speech);
* the **regent** (unshaped) sends too, and plays what it hears into a WAV file
  in real time (:class:`~siakdesk.media.wavrecorder.WavSpeaker`): what a person
  at that PC would hear, through the jitter buffer and the mixer.

Then, per scenario and per engine (``siakdesk``, then ``aiortc`` as it comes):
PESQ-WB of the regent's recording against the speech (aligned by
cross-correlation, scored per whole loop of the sample, median), the share of
audio concealed or missing, one-way audio delay (the send and play clocks are
the same monotonic clock: one machine), the video the regent received from the
far office (size, frames a second), the far office's sent bitrate against the
capacity, and after a capacity drop: the time to get under it and the time to
be back at the top.  A JSON report and one PNG plot per scenario (sent bitrate
and estimate against capacity over time, both engines) go to ``--out``.

Needs root for the namespaces, ``espeak-ng``, and the ``bench`` extras
(``pesq``, ``matplotlib``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import wave
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import av
import numpy as np

from siakdesk.bench.processes import BIN, LISTENING, wait_for_line
from siakdesk.media.synthetic import load_audio
from siakdesk.netlab.namespaces import NetLab, Shape, unavailable

RATE = 48000
PESQ_RATE = 16000
#: About 10.6 s of speech: 3 to 6 whole loops fit in every scenario for PESQ (the
#: score is their median; 30-40 s runs left 2, and one bad second moved it by 1.0).
SPEECH = (
    "Selamat pagi Bapak Bupati. Kami dari Kecamatan Sungai Mandau melaporkan "
    "bahwa jalan desa sudah diperbaiki, dan panen padi bulan ini baik."
)
PORT = 8443
JOINED = re.compile(r"joined room")
#: Seconds from the start before anything is measured (joining, first keyframe, ramp-up).
WARMUP_S = 6.0
#: Sensor noise on the far office's synthetic camera: VP8 at 640x360 then uses ~450 of
#: 500 kbit/s allowed (the clean card: ~50), so the ladder meets what a camera makes.
CAMERA_NOISE = 12


@dataclasses.dataclass(frozen=True)
class Step:
    """From ``at`` seconds on, the far office's link is this (``None``: not limited;
    ``down``: no link at all, an outage)."""

    at: float
    capacity_kbit: int | None
    loss: float = 0.0
    down: bool = False


@dataclasses.dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    duration: float
    steps: tuple[Step, ...]
    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    #: offices besides the far one and the regent (they send and receive, unshaped)
    others: int = 0
    target: str = ""


SCENARIOS = (
    Scenario("clean", "clean link", 45, (Step(0, None),), target="PESQ-WB >= 4.0"),
    Scenario(
        "3g",
        "256 kbit/s each way, 3 % loss, 150 ms delay",
        60,
        (Step(0, 256, 0.03),),
        delay_ms=150,
        target="PESQ-WB >= 3.8; video >= 320x180 at >= 10 fps",
    ),
    Scenario(
        "edge",
        "64 kbit/s each way, 2 % loss, 300 ms delay",
        60,
        (Step(0, 64, 0.02),),
        delay_ms=300,
        target="PESQ-WB >= 3.5, audio only, no stall",
    ),
    Scenario(
        "drop",
        "2 Mbit/s -> 256 kbit/s (at 20 s) -> 2 Mbit/s (at 45 s)",
        75,
        (Step(0, 2000), Step(20, 256), Step(45, 2000)),
        target="under the new capacity within 3 s; top rung within 15 s; concealed < 2 %",
    ),
    Scenario(
        "outage",
        "512 kbit/s, 1 % loss, the link down from 15 s to 23 s",
        45,
        (Step(0, 512, 0.01), Step(15, 512, 0.01, down=True), Step(23, 512, 0.01)),
        target="back by itself; audio and video again within seconds",
    ),
    Scenario(
        "four",
        "4 offices, the far one on 128 kbit/s",
        60,
        (Step(0, 128),),
        others=2,
        target="the other three receive each other at >= 320x180",
    ),
)


# -- analysis (pure functions, unit-tested) ------------------------------------------


def resample(samples: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """Mono int16 from one rate to another (FFmpeg's resampler)."""
    if rate_in == rate_out:
        return samples.astype(np.int16)
    resampler = av.AudioResampler(format="s16", layout="mono", rate=rate_out)
    frame = av.AudioFrame.from_ndarray(samples.astype(np.int16).reshape(1, -1), layout="mono")
    frame.sample_rate = rate_in
    out = [f.to_ndarray().reshape(-1) for f in resampler.resample(frame)]
    out += [f.to_ndarray().reshape(-1) for f in resampler.resample(None)]
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int16)


def find_lag(recording: np.ndarray, reference: np.ndarray) -> int:
    """Where ``reference`` (looped) sits in ``recording``: rec[i] ~ ref[(i - lag) % len]."""
    length = reference.size
    size = 1 << int(np.ceil(np.log2(recording.size + length)))
    rec = np.fft.rfft(recording.astype(np.float64), size)
    ref = np.fft.rfft(reference.astype(np.float64), size)
    corr = np.fft.irfft(rec * np.conj(ref), size)[: recording.size]
    return int(np.argmax(corr)) % length


#: How far one loop of speech may sit from where the first loop says (the playout's
#: delay moves during a run), in seconds either way.
REALIGN_S = 0.5


def realign(recording: np.ndarray, reference: np.ndarray, begin: int, reach: int) -> int:
    """Where the loop expected at ``begin`` really starts, within ``reach`` samples.

    An adaptive playout moves its delay (a pause drawn out, a frame skipped): cut
    at fixed places, every loop after a move would lose its first or last words
    to the cut, and PESQ would score the cut, not the speech.
    """
    low = max(0, begin - reach)
    high = min(recording.size - reference.size, begin + reach)
    if high <= low:
        return begin
    segment = recording[low : high + reference.size].astype(np.float64)
    size = 1 << int(np.ceil(np.log2(segment.size + reference.size)))
    corr = np.fft.irfft(
        np.fft.rfft(segment, size) * np.conj(np.fft.rfft(reference.astype(np.float64), size)),
        size,
    )[: high - low + 1]
    return low + int(np.argmax(corr))


def pesq_windows(
    recording: np.ndarray, reference: np.ndarray, lag: int, start: int
) -> list[tuple[int, float]]:
    """PESQ-WB of every whole loop of ``reference`` in ``recording`` from sample ``start``:
    (first sample of the loop in the recording, score).  Each loop is aligned on its
    own (:func:`realign`)."""
    from pesq import pesq  # the bench extra (no type hints; not installed by the tests)

    length = reference.size
    first = start + ((lag - start) % length)
    reach = int(REALIGN_S * PESQ_RATE)
    scores = []
    for expected in range(first, recording.size - length + 1, length):
        begin = realign(recording, reference, expected, reach)
        degraded = recording[begin : begin + length]
        if np.sqrt(np.mean(degraded.astype(np.float64) ** 2)) < 30:
            scores.append((begin, 1.0))  # nothing heard: the worst score, not an error
            continue
        try:
            scores.append((begin, float(pesq(PESQ_RATE, reference, degraded, "wb"))))
        except Exception:  # pesq raises when it finds no speech in the degraded signal
            scores.append((begin, 1.0))
    return scores


def one_way_delay(lag_48k: int, length_48k: int, sent_at: float, played_at: float) -> float:
    """Seconds from capture to the speaker, from the alignment and the two start clocks.

    Sample ``i`` of the recording was played at ``played_at + i/48k`` and holds
    sample ``i - lag`` (modulo the loop) of the speech, which went out at
    ``sent_at + (i - lag + q*length)/48k`` for the loop ``q`` that makes the delay
    positive and less than one loop.
    """
    base = played_at - sent_at + lag_48k / RATE
    loop = length_48k / RATE
    return base % loop


def first_time(series: Sequence[tuple[float, float]], after: float, predicate: Any) -> float | None:
    """Seconds after ``after`` until ``predicate(value)`` first holds in ``series``."""
    for t, value in series:
        if t >= after and predicate(value):
            return t - after
    return None


# -- running --------------------------------------------------------------------------


def make_speech(directory: Path) -> Path:
    """The Indonesian speech sample (espeak-ng), 16 kHz mono WAV."""
    raw = directory / "speech-raw.wav"
    subprocess.run(
        ["espeak-ng", "-v", "id", "-s", "150", "-w", str(raw), SPEECH],
        check=True,
        capture_output=True,
    )
    path = directory / "speech.wav"
    write_wav(path, resample(load_audio(str(raw)), RATE, PESQ_RATE))
    return path


def make_quiet_room(directory: Path) -> Path:
    """10 s of a quiet room (noise at about -70 dBFS), 16 kHz mono WAV."""
    path = directory / "quiet.wav"
    if not path.exists():
        write_wav(path, np.random.default_rng(5).normal(0, 10, 10 * PESQ_RATE).astype(np.int16))
    return path


def write_wav(path: Path, samples: np.ndarray) -> None:
    """Mono int16 ``samples`` at 16 kHz (PESQ's rate) into a WAV file."""
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(PESQ_RATE)
        out.writeframes(samples.astype(np.int16).tobytes())


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path), "rb") as source:
        data = np.frombuffer(source.readframes(source.getnframes()), dtype=np.int16)
        return data, source.getframerate()


@dataclasses.dataclass
class Run:
    scenario: str
    engine: str
    far: dict[str, Any]
    regent: dict[str, Any]
    others: list[dict[str, Any]]
    recording: Path
    started_at: float


def run_scenario(
    scenario: Scenario, engine: str, speech: Path, out: Path, receiver: str | None = None
) -> Run:
    """Run ``scenario`` with ``engine`` everywhere (or ``receiver`` at the regent)."""
    with contextlib.ExitStack() as stack:
        lab = stack.enter_context(NetLab())
        lab.add_host("server")
        lab.add_host("far")
        lab.add_host("regent")
        for n in range(scenario.others):
            lab.add_host(f"office{n}")
        server_address = lab.hosts["server"].address
        stem = out / f"{scenario.name}-{engine}"

        def log_file(host: str) -> Any:
            """Each program's log (INFO: reconnects and their reasons) beside its stats."""
            return stack.enter_context(open(f"{stem}-{host}.log", "w"))

        server = lab.popen(
            "server",
            [
                str(BIN / "siakdesk-server"),
                *("--host", server_address, "--port", str(PORT)),
                *("--database", ":memory:", "--log-level", "INFO", "--room", "siak"),
            ],
            stdout=subprocess.PIPE,
            stderr=log_file("server"),
            text=True,
        )
        url = wait_for_line(server, LISTENING, timeout=30).group(1)
        shape_at = list(scenario.steps)
        first = shape_at.pop(0)
        lab.shape("far", Shape(first.capacity_kbit, first.loss))
        duration = scenario.duration

        def bot(host: str, name: str, *extra: str) -> subprocess.Popen[str]:
            return lab.popen(
                host,
                [
                    str(BIN / "siakdesk-bot"),
                    *("--server", url, "--name", name, "--office", f"Kecamatan {name}"),
                    *("--duration", str(duration + 5), "--media", engine),
                    *("--stats", f"{stem}-{host}.json", "--video-size", "640x360"),
                    *("--log-level", "INFO"),
                    *extra,
                ],
                stdout=subprocess.PIPE,
                stderr=log_file(host),
                text=True,
            )

        recording = Path(f"{stem}-regent.wav")
        regent = bot("regent", "Bupati", "--speaker-wav", str(recording))
        if receiver is not None:
            regent.kill()
            regent.wait()
            regent = bot("regent", "Bupati", "--speaker-wav", str(recording), "--media", receiver)
        # the other offices listen: a quiet room (under the DTX threshold), not a tone,
        # which the regent's speaker would mix into the speech PESQ scores
        quiet = make_quiet_room(speech.parent)
        others = [
            bot(f"office{n}", f"Kantor {n + 1}", "--audio-file", str(quiet))
            for n in range(scenario.others)
        ]
        far = bot(
            "far",
            "Sungai Mandau",
            *("--audio-file", str(speech)),
            # a webcam's cost: the clean card would cost VP8 ~50 kbit/s at 640x360
            *("--camera-noise", str(CAMERA_NOISE)),
            *(
                "--link-delay-ms",
                str(scenario.delay_ms),
                "--link-jitter-ms",
                str(scenario.jitter_ms),
            ),
        )
        for process in (regent, *others, far):
            wait_for_line(process, JOINED, timeout=60)
        started = time.monotonic()
        down = False
        for step in shape_at:
            time.sleep(max(0.0, started + step.at - time.monotonic()))
            if step.down:
                lab.cut("far")
            else:
                if down:
                    lab.restore("far")
                lab.shape("far", Shape(step.capacity_kbit, step.loss))
            down = step.down
        time.sleep(max(0.0, started + duration - time.monotonic()))
        for process in (far, regent, *others):
            process.send_signal(2)
        for process in (far, regent, *others):
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=20)
        server.send_signal(2)

    def load(host: str) -> dict[str, Any]:
        path = Path(f"{stem}-{host}.json")
        return json.loads(path.read_text()) if path.exists() else {}

    return Run(
        scenario=scenario.name,
        engine=engine,
        far=load("far"),
        regent=load("regent"),
        others=[load(f"office{n}") for n in range(scenario.others)],
        recording=recording,
        started_at=started,
    )


def capacity_at(scenario: Scenario, t: float) -> float | None:
    current = None
    for step in scenario.steps:
        if step.at <= t:
            current = step.capacity_kbit
    return current


def _audio_share_missing(
    log: list[dict[str, Any]], far: str, engine: str, start: float, end: float
) -> float | None:
    """Percent of the far office's audio concealed (ours) or missing (aiortc) in [start, end)."""
    rows = [row for row in log if start <= row["t"] < end]
    if len(rows) < 2:
        return None
    first, last = rows[0], rows[-1]
    if engine == "siakdesk":
        played = last["played"] - first["played"] + last["recovered"] - first["recovered"]
        concealed = last["concealed"] - first["concealed"]
        total = played + concealed
        return round(100 * concealed / total, 2) if total else None
    got = last["frames"].get(far, 0) - first["frames"].get(far, 0)
    expected = (last["t"] - first["t"]) * 50  # aiortc sends a 20 ms frame every 20 ms
    return round(100 * max(0.0, 1 - got / expected), 2) if expected else None


def analyse(scenario: Scenario, run: Run, speech: Path) -> dict[str, Any]:
    result: dict[str, Any] = {"scenario": scenario.name, "engine": run.engine}
    reference, rate = read_wav(speech)
    assert rate == PESQ_RATE
    t0 = run.started_at
    warm, end = t0 + WARMUP_S, t0 + scenario.duration
    drops = [s for s in scenario.steps if s.at > 0]
    outage = any(s.down for s in scenario.steps)
    drop = (t0 + drops[0].at, t0 + drops[1].at) if len(drops) >= 2 and not outage else None
    # speech quality and delay at the regent's speaker
    if run.recording.exists() and run.regent.get("speaker_started_at"):
        recorded, _ = read_wav(run.recording)
        played_at = float(run.regent["speaker_started_at"])
        rec16 = resample(recorded, RATE, PESQ_RATE)
        start = max(0, int((warm - played_at) * PESQ_RATE))
        lag = find_lag(rec16[start:], reference) + start
        windows = pesq_windows(rec16, reference, lag % reference.size, start)
        scores = [score for _, score in windows]
        result["pesq_wb"] = round(statistics.median(scores), 2) if scores else None
        result["pesq_wb_min"] = round(min(scores), 2) if scores else None
        result["pesq_windows"] = [round(score, 2) for score in scores]
        if drop is not None:
            inside = [
                score
                for begin, score in windows
                if drop[0] <= played_at + begin / PESQ_RATE
                and played_at + (begin + reference.size) / PESQ_RATE <= drop[1] + 2
            ]
            result["pesq_wb_during_drop"] = round(min(inside), 2) if inside else None
        sent_at = run.far.get("audio_started_at")
        if sent_at:
            # the median over the loops: the playout's delay moves during a run
            length48 = reference.size * RATE // PESQ_RATE
            begins = [begin for begin, _ in windows] or [lag]
            delays = [
                one_way_delay(
                    (begin % reference.size) * RATE // PESQ_RATE,
                    length48,
                    float(sent_at),
                    played_at,
                )
                for begin in begins
            ]
            result["delay_ms"] = round(1000 * statistics.median(delays))
    # concealed or missing audio from the far office at the regent
    far = run.far.get("name", "Sungai Mandau")
    log = run.regent.get("audio_log", [])
    result["audio_concealed_pct"] = _audio_share_missing(log, far, run.engine, warm, end)
    if drop is not None:
        result["concealed_during_drop_pct"] = _audio_share_missing(
            log, far, run.engine, drop[0], drop[1]
        )
    # video the regent got from the far office, after the warm-up
    heard = run.regent.get("received", {}).get(far, {})
    frames = [(t, w, h) for t, w, h in heard.get("video_log", []) if warm <= t < end]
    result["video_fps"] = round(len(frames) / (end - warm), 1)
    sizes = [f"{w}x{h}" for _, w, h in frames]
    result["video_size"] = max(set(sizes), key=sizes.count) if sizes else "none"
    stalls = [b[0] - a[0] for a, b in itertools.pairwise(frames)]
    result["video_longest_gap_s"] = round(max(stalls), 1) if stalls else None
    # the far office's sent bitrate against the capacity
    uplink = [
        (row["t"] - t0, row["sent_kbps"], row["estimate_kbps"], row.get("rung"))
        for row in run.far.get("uplink", [])
    ]
    result["uplink"] = uplink
    steady = [sent for t, sent, _, _ in uplink if WARMUP_S <= t < scenario.duration]
    result["sent_kbps_median"] = round(statistics.median(steady), 1) if steady else None
    if outage:
        back = t0 + drops[1].at
        later = [t for t, _, _ in frames if t >= back]
        result["video_back_s"] = round(later[0] - back, 1) if later else None
        rows = [r for r in log if r["t"] >= back]
        key = "played" if run.engine == "siakdesk" else None
        result["audio_back_s"] = _first_growth(rows, far, key, back)
        result["reconnects"] = run.far.get("reconnects")
    if drop is not None and drops[0].capacity_kbit is not None:
        series = [(t, sent) for t, sent, _, _ in uplink]
        limit = drops[0].capacity_kbit
        result["under_capacity_s"] = _rounded(
            first_time(series, drops[0].at, lambda sent: sent <= limit)
        )
        before = [sent for t, sent in series if WARMUP_S <= t < drops[0].at]
        top = statistics.median(before) if before else None
        result["recovered_s"] = _rounded(
            first_time(series, drops[1].at, lambda sent: top is not None and sent >= 0.9 * top)
        )
    # the other offices: what they received from each other (the four-office scenario)
    if run.others:
        worst: tuple[int, int] | None = None
        for report in [run.regent, *run.others]:
            for name, got in report.get("received", {}).items():
                if name == far:
                    continue
                size = (got.get("video_width", 0), got.get("video_height", 0))
                if worst is None or size[0] * size[1] < worst[0] * worst[1]:
                    worst = size
        result["others_worst_video"] = f"{worst[0]}x{worst[1]}" if worst else "none"
    return result


def _first_growth(
    rows: list[dict[str, Any]], far: str, key: str | None, since: float
) -> float | None:
    """Seconds after ``since`` until the far office's audio (frames, or played) grows again."""
    for before, after in itertools.pairwise(rows):
        grew = (
            after[key] > before[key]
            if key
            else after["frames"].get(far, 0) > before["frames"].get(far, 0)
        )
        if grew:
            return round(after["t"] - since, 1)
    return None


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def plot(scenario: Scenario, results: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(9, 4.5))
    times = np.linspace(0, scenario.duration, 400)
    capacity = [capacity_at(scenario, t) for t in times]
    if any(c is not None for c in capacity):
        axis.plot(
            times, [c if c is not None else np.nan for c in capacity], "k--", label="capacity"
        )
    colours = {"siakdesk": "tab:green", "aiortc": "tab:red"}
    for result in results:
        uplink = result.get("uplink", [])
        if not uplink:
            continue
        engine = result["engine"]
        axis.plot(
            [u[0] for u in uplink],
            [u[1] for u in uplink],
            color=colours.get(engine),
            label=f"{engine}: sent",
        )
        if engine == "siakdesk":
            axis.plot(
                [u[0] for u in uplink],
                [u[2] for u in uplink],
                color=colours[engine],
                alpha=0.4,
                linestyle=":",
                label="siakdesk: estimate",
            )
    axis.set_xlabel("seconds")
    axis.set_ylabel("kbit/s (far office uplink, on the wire)")
    axis.set_title(f"{scenario.name}: {scenario.title}")
    axis.set_ylim(bottom=0)
    axis.legend(loc="upper right")
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


COLUMNS = (
    ("pesq_wb", "PESQ-WB"),
    ("audio_concealed_pct", "concealed %"),
    ("delay_ms", "delay ms"),
    ("video_size", "video"),
    ("video_fps", "fps"),
    ("sent_kbps_median", "sent kbit/s"),
    ("under_capacity_s", "under cap s"),
    ("recovered_s", "recover s"),
    ("others_worst_video", "others' video"),
    ("audio_back_s", "audio back s"),
    ("video_back_s", "video back s"),
)


def format_table(results: list[dict[str, Any]]) -> str:
    header = "| scenario | engine | " + " | ".join(title for _, title in COLUMNS) + " |"
    lines = [header, "|" + "---|" * (2 + len(COLUMNS))]
    for result in results:
        cells = [
            str(result.get(key, "")) if result.get(key) is not None else "-" for key, _ in COLUMNS
        ]
        lines.append(f"| {result['scenario']} | {result['engine']} | " + " | ".join(cells) + " |")
    ratios = []
    for ours in (r for r in results if r["engine"] == "siakdesk"):
        theirs = next(
            (r for r in results if r["engine"] == "aiortc" and r["scenario"] == ours["scenario"]),
            None,
        )
        if theirs and ours.get("pesq_wb") and theirs.get("pesq_wb"):
            ratios.append(f"{ours['scenario']}: PESQ-WB x{ours['pesq_wb'] / theirs['pesq_wb']:.2f}")
    if ratios:
        lines.append("")
        lines.append("ours / aiortc's defaults: " + ", ".join(ratios))
    return "\n".join(lines)


def run_media(names: Sequence[str], engines: Sequence[str], out: Path) -> list[dict[str, Any]]:
    reason = unavailable()
    if reason:
        raise RuntimeError(f"the media benchmark needs network namespaces: {reason}")
    if shutil.which("espeak-ng") is None:
        raise RuntimeError("espeak-ng is not installed (apt-get install espeak-ng)")
    chosen = [s for s in SCENARIOS if not names or s.name in names]
    out.mkdir(parents=True, exist_ok=True)
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as scratch:
        speech = make_speech(Path(scratch))
        for scenario in chosen:
            per_scenario = []
            for engine in engines:
                print(f"running {scenario.name} with {engine}...", file=sys.stderr, flush=True)
                run = run_scenario(scenario, engine, speech, out)
                per_scenario.append(analyse(scenario, run, speech))
            plot(scenario, per_scenario, out / f"{scenario.name}.png")
            results.extend(per_scenario)
    report = [{k: v for k, v in r.items() if k != "uplink"} for r in results]
    (out / "media.json").write_text(
        json.dumps({"results": report, "timelines": results}, indent=1, default=str) + "\n"
    )
    return results
