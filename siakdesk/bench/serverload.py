"""How much CPU the meeting server spends forwarding, for N participants.

Every participant is a separate ``siakdesk-bot --no-decode`` process (it sends
a 320x180 15 fps name card and a tone, and counts what it receives without
decoding it, so that 16 of them fit on a 2-core machine beside the server).
The server is a separate ``siakdesk-server`` process; its CPU time is read from
the kernel (user + system) over a steady window after everyone has joined.

Forwarded media-seconds are counted from what the server really forwarded:
each forwarded audio frame is 20 ms of one stream, each forwarded picture is
1/fps s of one stream.  So "CPU s per media-s" is the server's CPU time for
carrying one participant's audio or video to one other participant for one
second.  The per-pair rates (pictures and audio frames a second from each
publisher to each subscriber) come from the server's per-slot counters over the
same window: 15 and 50 are what the bots send.
"""

from __future__ import annotations

import dataclasses
import json
import re
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import psutil

from siakdesk.bench.processes import LISTENING, start_server, wait_for_line

AUDIO_FRAME_S = 0.020
BIN = Path(sys.executable).parent


@dataclasses.dataclass
class LoadResult:
    participants: int
    window_s: float
    server_cpu_s: float
    server_rss_mb: float
    machine_cpu_percent: float
    forwarded_audio_frames: int
    forwarded_video_frames: int
    forwarded_kbit_s: float
    media_s: float
    dropped_video_frames: int
    pair_audio_fps: list[float]
    pair_video_fps: list[float]
    published_kbit_s: list[float]
    join_failures: int

    @property
    def cpu_per_media_s(self) -> float:
        return self.server_cpu_s / self.media_s if self.media_s else float("nan")

    @property
    def server_cpu_percent(self) -> float:
        return 100 * self.server_cpu_s / self.window_s

    def as_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["cpu_per_media_s"] = self.cpu_per_media_s
        data["server_cpu_percent"] = self.server_cpu_percent
        return data


def _server_stats(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{url}/stats", timeout=10) as response:
        data: dict[str, Any] = json.load(response)
    return data


def _forwarded(stats: dict[str, Any], kind: str, field: str) -> int:
    return sum(
        p["forwarded"][kind][field]
        for room in stats["rooms"].values()
        for p in room["participants"].values()
    )


def run_load(
    participants: int,
    window_s: float = 20.0,
    warmup_s: float = 3.0,
    video_size: str = "320x180",
    fps: int = 15,
) -> LoadResult:
    """Run one server and ``participants`` bots; measure the server over ``window_s``."""
    server = start_server("bench", "--max-participants", str(max(2, participants)))
    bots: list[subprocess.Popen[str]] = []
    try:
        url = wait_for_line(server, LISTENING, 30).group(1)
        bot_duration = warmup_s + window_s + 5
        for i in range(participants):
            bots.append(
                subprocess.Popen(
                    [
                        str(BIN / "siakdesk-bot"),
                        "--server",
                        url,
                        "--room",
                        "bench",
                        "--name",
                        f"Kantor {i + 1:02d}",
                        "--no-decode",
                        "--video-size",
                        video_size,
                        "--fps",
                        str(fps),
                        "--duration",
                        str(bot_duration),
                    ],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL,
                    text=True,
                )
            )
        failures = 0
        for bot in bots:
            try:
                wait_for_line(bot, re.compile("joined room"), 60)
            except RuntimeError:
                failures += 1
        time.sleep(warmup_s)  # let every video start at a keyframe before measuring

        process = psutil.Process(server.pid)
        psutil.cpu_percent(interval=None)
        cpu_before = process.cpu_times()
        before = _server_stats(url)
        started = time.monotonic()
        time.sleep(window_s)
        elapsed = time.monotonic() - started
        cpu_after = process.cpu_times()
        after = _server_stats(url)
        machine = psutil.cpu_percent(interval=None)
        rss = process.memory_info().rss / 2**20

        audio = _forwarded(after, "audio", "frames") - _forwarded(before, "audio", "frames")
        video = _forwarded(after, "video", "frames") - _forwarded(before, "video", "frames")
        kbytes = (
            sum(
                _forwarded(after, k, "bytes") - _forwarded(before, k, "bytes")
                for k in ("audio", "video")
            )
            / 1000
        )
        dropped = _forwarded(after, "video", "dropped") - _forwarded(before, "video", "dropped")
        published = []
        for room_after in after["rooms"].values():
            for pid, p in room_after["participants"].items():
                old = before["rooms"]["bench"]["participants"].get(pid)
                if old is None:
                    continue
                sent = sum(
                    p["published"][k]["bytes"] - old["published"][k]["bytes"]
                    for k in p["published"]
                )
                published.append(round(8 * sent / 1000 / elapsed, 1))

        audio_fps: list[float] = []
        video_fps: list[float] = []
        for pid, p in after["rooms"]["bench"]["participants"].items():
            old = before["rooms"]["bench"]["participants"].get(pid)
            if old is None:
                continue
            old_slots = {(x["mid"], x["publisher"]): x["frames"] for x in old["slots"]}
            for slot in p["slots"]:
                start = old_slots.get((slot["mid"], slot["publisher"]))
                if start is not None:
                    rate = (slot["frames"] - start) / elapsed
                    (audio_fps if slot["kind"] == "audio" else video_fps).append(rate)
        cpu = (cpu_after.user + cpu_after.system) - (cpu_before.user + cpu_before.system)
        return LoadResult(
            participants=participants,
            window_s=round(elapsed, 2),
            server_cpu_s=round(cpu, 3),
            server_rss_mb=round(rss, 1),
            machine_cpu_percent=machine,
            forwarded_audio_frames=audio,
            forwarded_video_frames=video,
            forwarded_kbit_s=round(8 * kbytes / elapsed, 1),
            media_s=audio * AUDIO_FRAME_S + video / fps,
            dropped_video_frames=dropped,
            pair_audio_fps=[round(v, 1) for v in audio_fps],
            pair_video_fps=[round(v, 1) for v in video_fps],
            published_kbit_s=published,
            join_failures=failures,
        )
    finally:
        for bot in bots:
            if bot.poll() is None:
                bot.kill()
            bot.wait()
            if bot.stdout:
                bot.stdout.close()
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        if server.stdout:
            server.stdout.close()


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def format_table(results: list[LoadResult]) -> str:
    header = (
        f"{'N':>3} {'server CPU':>10} {'CPU s/media-s':>14} {'RSS MB':>7} {'fwd Mbit/s':>10} "
        f"{'video fps/pair med/min':>20} {'audio fps/pair med/min':>20} {'machine CPU':>11}"
    )
    lines = [header, "-" * len(header)]
    for r in results:
        lines.append(
            f"{r.participants:>3} {r.server_cpu_percent:>9.1f}% {r.cpu_per_media_s:>14.5f} "
            f"{r.server_rss_mb:>7.1f} {r.forwarded_kbit_s / 1000:>10.2f} "
            f"{_median(r.pair_video_fps):>12.1f}/{min(r.pair_video_fps, default=0):<7.1f}"
            f"{_median(r.pair_audio_fps):>12.1f}/{min(r.pair_audio_fps, default=0):<7.1f}"
            f"{r.machine_cpu_percent:>10.0f}%"
        )
        if r.join_failures:
            lines.append(f"    {r.join_failures} participants could not join")
    return "\n".join(lines)
