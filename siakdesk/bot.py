"""``siakdesk-bot``: a headless participant for tests, load and demos.

It is the desktop app's :class:`~siakdesk.core.meetingsession.MeetingSession`
with synthetic (or file) media instead of a camera and microphone, and a
counter instead of a screen: it decodes everything it receives and reports, per
remote participant, how many audio and video frames arrived, at what size, and
whether the pictures really are that participant's (see
:mod:`siakdesk.media.synthetic`).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError

from siakdesk import __version__
from siakdesk.core.events import SessionEvent, SessionState, StateChanged, TrackAdded
from siakdesk.core.meetingsession import MEDIA_ENGINES, JoinError, MeetingSession, SessionConfig
from siakdesk.core.remotetrack import RemoteTrack
from siakdesk.core.signaling import ServerEndpoint
from siakdesk.logsetup import configure_logging
from siakdesk.media.audiomixer import AudioMixer
from siakdesk.media.synthetic import (
    FileAudioTrack,
    SyntheticVideoTrack,
    ToneTrack,
    frame_identity_matches,
)
from siakdesk.media.wavrecorder import WavRecorder, WavSpeaker
from siakdesk.netlab.inprocess import Impairment, LinkEmulator

logger = logging.getLogger("siakdesk.bot")

#: Check the identity of every n-th decoded picture (converting to RGB costs CPU).
IDENT_EVERY = 3
#: Share of checked pictures that must carry the sender's identity.
IDENT_MIN_SHARE = 0.9

EXIT_JOIN_FAILED = 2
EXIT_MEETING_LOST = 3


@dataclasses.dataclass
class RemoteStats:
    """What one bot received from one remote participant (over all its tracks)."""

    started_at: float
    decoded: bool
    tracks: list[RemoteTrack] = dataclasses.field(default_factory=list)
    decoded_size: tuple[int, int] | None = None
    ident_checked: int = 0
    ident_matched: int = 0
    #: (monotonic time, width, height) of every decoded picture
    video_log: list[tuple[float, int, int]] = dataclasses.field(default_factory=list)

    def _kind(self, kind: str) -> list[RemoteTrack]:
        return [t for t in self.tracks if t.kind == kind]

    def _first(self, kind: str) -> float | None:
        times = [t.first_frame_at for t in self._kind(kind) if t.first_frame_at is not None]
        return round(min(times) - self.started_at, 3) if times else None

    @property
    def audio_frames(self) -> int:
        return sum(t.frames_received for t in self._kind("audio"))

    @property
    def audio_seconds(self) -> float:
        """Sound received, in seconds: frames are 20 or 60 ms (a thin link), so count time."""
        return sum(t.seconds_received for t in self._kind("audio"))

    @property
    def video_frames(self) -> int:
        return sum(t.frames_received for t in self._kind("video"))

    @property
    def first_audio_s(self) -> float | None:
        return self._first("audio")

    @property
    def first_video_s(self) -> float | None:
        """Seconds from starting to join until the first picture of this remote arrived."""
        return self._first("video")

    @property
    def video_size(self) -> tuple[int, int]:
        if self.decoded_size is not None:
            return self.decoded_size
        sizes = [t.encoded_size for t in self._kind("video") if t.encoded_size]
        return sizes[-1] if sizes else (0, 0)

    @property
    def video_ident_ok(self) -> bool:
        return self.ident_checked > 0 and self.ident_matched >= IDENT_MIN_SHARE * self.ident_checked

    def as_json(self) -> dict[str, Any]:
        return {
            "audio_frames": self.audio_frames,
            "audio_seconds": round(self.audio_seconds, 2),
            "video_frames": self.video_frames,
            "video_width": self.video_size[0],
            "video_height": self.video_size[1],
            # not decoded (a load-test bot): nothing to say about whose pictures they are
            "video_ident_ok": self.video_ident_ok if self.decoded else None,
            "video_ident_checked": self.ident_checked,
            "video_ident_matched": self.ident_matched,
            "first_audio_s": self.first_audio_s,
            "first_video_s": self.first_video_s,
            "video_log": self.video_log,
        }


@dataclasses.dataclass(frozen=True)
class BotConfig:
    session: SessionConfig
    audio_file: str | None = None
    record_dir: Path | None = None
    video_size: tuple[int, int] = (320, 180)
    fps: int = 15
    #: sensor noise on the synthetic camera (0: a clean card; see SyntheticVideoTrack)
    camera_noise: int = 0
    send_audio: bool = True
    send_video: bool = True
    #: play what is heard through the mixer into this WAV file (the benchmark's ear)
    speaker_wav: Path | None = None


class Bot:
    """One headless participant; owns its session, media tracks and consumer tasks."""

    def __init__(self, config: BotConfig) -> None:
        self.config = config
        name = config.session.name
        audio: MediaStreamTrack | None = None
        if config.send_audio:
            audio = FileAudioTrack(config.audio_file) if config.audio_file else ToneTrack(name)
        video: MediaStreamTrack | None = None
        if config.send_video:
            width, height = config.video_size
            video = SyntheticVideoTrack(name, width, height, config.fps, config.camera_noise)
        self._local = [t for t in (audio, video) if t is not None]
        self._audio_source = audio
        self.speaker = WavSpeaker(config.speaker_wav) if config.speaker_wav else None
        self.mixer = AudioMixer(self.speaker) if self.speaker is not None else None
        self.session = MeetingSession(config.session, audio=audio, video=video)
        self.session.add_listener(self._on_event)
        self.received: dict[str, RemoteStats] = {}
        self._consumers: set[asyncio.Task[None]] = set()
        self._recorders: dict[str, WavRecorder] = {}
        self.lost = asyncio.Event()
        self._progress = asyncio.Event()
        self._started_at = time.monotonic()
        self._logger: asyncio.Task[None] | None = None
        #: once a second: playout counters and audio frames per remote (the benchmark reads it)
        self.audio_log: list[dict[str, Any]] = []

    @property
    def name(self) -> str:
        return self.config.session.name

    async def start(self) -> None:
        """Join the meeting; raises :class:`JoinError` when that is not possible."""
        if self.config.record_dir is not None:
            self.config.record_dir.mkdir(parents=True, exist_ok=True)
        self._started_at = time.monotonic()
        await self.session.join()
        self._logger = asyncio.ensure_future(self._log_audio())

    async def _log_audio(self) -> None:
        """Once a second: what the playout did and how many audio frames came from whom."""
        while True:
            stats = self.session.playout_stats()
            self.audio_log.append(
                {
                    "t": round(time.monotonic(), 3),
                    "played": stats.played,
                    "recovered": stats.recovered,
                    "concealed": stats.concealed,
                    "late": stats.late,
                    "stretched": stats.stretched,
                    "skipped": stats.skipped,
                    "silent": stats.silent,
                    # the jitter buffers' delay now, per receive slot that is playing
                    "delay_ms": {
                        mid: round(1000 * p.delay)
                        for mid, p in self.session.playouts.items()
                        if p.delay
                    },
                    # and how late the median and the 97 % packet came after the quickest
                    "spread_ms": {
                        mid: [round(1000 * v) for v in p.spread]
                        for mid, p in self.session.playouts.items()
                        if p.delay
                    },
                    # the worst lateness of this process's event loop over the last 3 s
                    "loop_lag_ms": round(1000 * self.session.loop_lag.recent(time.monotonic())),
                    "mixer_underruns": self.mixer.underruns if self.mixer else None,
                    "mixer_dropped": self.mixer.dropped_samples if self.mixer else None,
                    "frames": {name: s.audio_frames for name, s in self.received.items()},
                }
            )
            await asyncio.sleep(1.0)

    async def close(self) -> None:
        """Leave, stop every consumer and finish recordings; idempotent."""
        if self._logger is not None:
            self._logger.cancel()
            await asyncio.gather(self._logger, return_exceptions=True)
        await self.session.leave()
        for track in self._local:
            track.stop()
        for task in tuple(self._consumers):
            task.cancel()
        await asyncio.gather(*self._consumers, return_exceptions=True)
        for recorder in self._recorders.values():
            recorder.close()
        if self.mixer is not None:
            await self.mixer.close()

    async def __aenter__(self) -> Bot:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def wait_until(self, predicate: Callable[[Bot], bool]) -> None:
        """Return once ``predicate(self)`` holds; checked whenever a decoded frame arrives."""
        if not self.config.session.decode:
            raise RuntimeError("wait_until needs a bot that decodes what it receives")
        while not predicate(self):
            self._progress.clear()
            await self._progress.wait()

    def stats(self) -> dict[str, Any]:
        received = {name: s.as_json() for name, s in sorted(self.received.items())}
        for info in self.session.roster.values():
            if info.name in received:
                received[info.name]["audio_muted"] = info.audio_muted
                received[info.name]["video_muted"] = info.video_muted
        return {
            "name": self.name,
            "participant_id": self.session.participant_id,
            "received": received,
            "state": self.session.state.value,
            "reconnects": self.session.reconnects,
            "seconds_without_media": round(self.session.seconds_without_media, 3),
            "media": self.config.session.media,
            "audio_started_at": getattr(self._audio_source, "started_at", None),
            "speaker_started_at": self.speaker.started_at if self.speaker else None,
            "playout": self.session.playout_stats().as_json(),
            "uplink": list(self.session.uplink.timeline),
            "probes": [list(p) for p in self.session.uplink.probes],
            "audio_log": self.audio_log,
        }

    def frames_from(self, name: str) -> tuple[int, int]:
        """Audio and video frames received from ``name`` so far (over every reconnect)."""
        stats = self.received.get(name)
        return (stats.audio_frames, stats.video_frames) if stats else (0, 0)

    async def wait_for_more_from(
        self, names: Sequence[str], audio: int = 10, video: int = 3
    ) -> None:
        """Return once ``audio``/``video`` more frames came from each of ``names``."""
        base = {name: self.frames_from(name) for name in names}

        def more(bot: Bot) -> bool:
            for name in names:
                got_audio, got_video = bot.frames_from(name)
                if got_audio < base[name][0] + audio or got_video < base[name][1] + video:
                    return False
            return True

        await self.wait_until(more)

    def _on_event(self, event: SessionEvent) -> None:
        if isinstance(event, TrackAdded):
            name = event.track.participant.name
            stats = self.received.get(name)
            if stats is None:
                decoded = self.config.session.decode
                stats = self.received[name] = RemoteStats(self._started_at, decoded)
            stats.tracks.append(event.track)
            if not self.config.session.decode:
                return
            if event.track.kind == "audio" and self.mixer is not None:
                self.mixer.add(event.track.participant.id, event.track)
                return
            task = asyncio.ensure_future(self._consume(event.track, stats))
            self._consumers.add(task)
            task.add_done_callback(self._consumers.discard)
        elif isinstance(event, StateChanged) and event.new is SessionState.FAILED:
            self.lost.set()

    async def _consume(self, track: RemoteTrack, stats: RemoteStats) -> None:
        name = track.participant.name
        recorder = None
        if track.kind == "audio" and self.config.record_dir is not None:
            recorder = self._recorders.get(name)
            if recorder is None:
                path = self.config.record_dir / f"{_safe_filename(name)}.wav"
                recorder = self._recorders[name] = WavRecorder(path)
        pictures = 0
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            self._progress.set()
            if track.kind == "audio":
                if recorder is not None:
                    recorder.write(frame)  # type: ignore[arg-type]
                continue
            stats.decoded_size = frame.width, frame.height  # type: ignore[attr-defined]
            stats.video_log.append((round(time.monotonic(), 3), *stats.decoded_size))
            pictures += 1
            if pictures % IDENT_EVERY == 1:
                image = frame.to_ndarray(format="rgb24")  # type: ignore[attr-defined]
                stats.ident_checked += 1
                stats.ident_matched += frame_identity_matches(image, name)


def _safe_filename(name: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in " -_." else "_" for c in name).strip()
    return cleaned or "participant"


def _video_size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not WIDTHxHEIGHT") from None
    return width, height


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="siakdesk-bot", description="A headless SiakDesk participant with synthetic media."
    )
    parser.add_argument(
        "--server", required=True, help="meeting server, e.g. http://127.0.0.1:8443"
    )
    parser.add_argument("--room", default="siak")
    parser.add_argument("--passcode", default="")
    parser.add_argument(
        "--name", required=True, help="display name; also picks the colour and tone"
    )
    parser.add_argument("--office", default="", help="office shown beside the name")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds in the meeting")
    parser.add_argument("--stats", type=Path, help="write received-media statistics here (JSON)")
    parser.add_argument("--audio-file", help="send this audio file (looped) instead of a tone")
    parser.add_argument("--record-dir", type=Path, help="save each remote's audio as NAME.wav")
    parser.add_argument("--video-size", type=_video_size, default=(320, 180), metavar="WxH")
    parser.add_argument(
        "--camera-noise",
        type=int,
        default=0,
        metavar="N",
        help="sensor noise of amplitude N (0-64) on the synthetic camera: a webcam's cost",
    )
    parser.add_argument("--fps", type=int, default=15)
    parser.add_argument("--no-video", action="store_true", help="send no video")
    parser.add_argument("--no-audio", action="store_true", help="send no audio")
    parser.add_argument(
        "--no-decode",
        action="store_true",
        help="count received frames without decoding them (many bots on one machine)",
    )
    parser.add_argument("--tls-fingerprint", help="trust the server certificate with this SHA-256")
    parser.add_argument("--ca-file", help="trust server certificates signed by these CAs (PEM)")
    parser.add_argument(
        "--media",
        choices=MEDIA_ENGINES,
        default="siakdesk",
        help="siakdesk: the low-bandwidth engine; aiortc: aiortc's defaults (a baseline)",
    )
    parser.add_argument("--data-saver", action="store_true", help="video no larger than 320x180")
    parser.add_argument(
        "--link-delay-ms",
        type=float,
        default=0.0,
        help="emulated delay on this bot's UDP, each way",
    )
    parser.add_argument(
        "--link-jitter-ms", type=float, default=0.0, help="emulated jitter (0..N ms more)"
    )
    parser.add_argument(
        "--speaker-wav",
        type=Path,
        help="play what is heard into this WAV file in real time, as a speaker would",
    )
    parser.add_argument("--log-level", default="WARNING")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser


def _emulated_link(delay_ms: float, jitter_ms: float) -> LinkEmulator | None:
    if delay_ms < 0 or jitter_ms < 0:
        raise ValueError("delay and jitter cannot be negative")
    if not delay_ms and not jitter_ms:
        return None
    return LinkEmulator(Impairment(delay=delay_ms / 1000, jitter=jitter_ms / 1000))


def _dump_tasks() -> None:
    for task in asyncio.all_tasks():
        task.print_stack(limit=8, file=sys.stderr)


async def run_bot(config: BotConfig, duration: float, stats_path: Path | None) -> int:
    bot = Bot(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal(signum: int) -> None:
        logger.info("%s: %s, leaving", config.session.name, signal.Signals(signum).name)
        stop.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal, signum)
    # diagnostics for a bot that seems stuck: kill -USR2 PID prints every task's stack
    loop.add_signal_handler(signal.SIGUSR2, _dump_tasks)
    status = 0
    try:
        await bot.start()
    except JoinError as exc:
        print(
            f"siakdesk-bot: {bot.name} could not join: {exc.message} ({exc.code})", file=sys.stderr
        )
        await bot.close()
        return EXIT_JOIN_FAILED
    print(
        f"{bot.name} joined room {config.session.room} as {bot.session.participant_id}", flush=True
    )
    try:
        waiters = [asyncio.ensure_future(e.wait()) for e in (stop, bot.lost)]
        await asyncio.wait(waiters, timeout=duration, return_when=asyncio.FIRST_COMPLETED)
        for waiter in waiters:
            waiter.cancel()
        if bot.lost.is_set():
            print(f"siakdesk-bot: {bot.name} lost the meeting", file=sys.stderr)
            status = EXIT_MEETING_LOST
    finally:
        await bot.close()
        if stats_path is not None:
            report = json.dumps(bot.stats(), indent=2, ensure_ascii=False) + "\n"
            stats_path.write_text(report)  # noqa: ASYNC240 (once, at exit)
    return status


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        configure_logging(args.log_level)
    except ValueError as exc:
        parser.error(str(exc))
    try:
        endpoint = ServerEndpoint(
            args.server, tls_fingerprint=args.tls_fingerprint, ca_file=args.ca_file
        )
        config = BotConfig(
            session=SessionConfig(
                endpoint=endpoint,
                room=args.room,
                name=args.name,
                office=args.office,
                passcode=args.passcode,
                decode=not args.no_decode,
                media=args.media,
                data_saver=args.data_saver,
                link=_emulated_link(args.link_delay_ms, args.link_jitter_ms),
            ),
            speaker_wav=args.speaker_wav,
            audio_file=args.audio_file,
            record_dir=args.record_dir,
            video_size=args.video_size,
            fps=args.fps,
            camera_noise=args.camera_noise,
            send_audio=not args.no_audio,
            send_video=not args.no_video,
        )
        return asyncio.run(run_bot(config, args.duration, args.stats))
    except ValueError as exc:
        parser.error(str(exc))


if __name__ == "__main__":
    sys.exit(main())
