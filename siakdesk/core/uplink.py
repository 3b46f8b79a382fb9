"""The office's uplink: one estimate of what it can send, and the encoders tuned to it.

Every half second the session hands :meth:`Uplink.poll` its peer connection.
The uplink reads, per sender, what went out (``outbound-rtp``: packets and
payload bytes, plus the headers each packet carries on the wire) and the server's
newest receiver report (``remote-inbound-rtp``: fraction lost, round-trip time).  A new
report updates the :class:`~siakdesk.media.estimate.LinkEstimate`; then

* the Opus encoder gets the loss of the audio stream (FEC strength, 60 ms
  frames on the worst links) and the estimate (60 ms frames on a thin link);
* the VP8 encoder's ladder gets the estimate (its rung), and "hemat data";
* the video sender goes out paced at 1.5 times its rung's bitrate, so its bursts
  (a keyframe and the picture after it) wait in the office, not in the link
  ahead of the audio (:mod:`siakdesk.media.pacer`);
* when the ladder asks for a probe before a rung up, the uplink sends it in the
  next pause of the office's speech (:func:`siakdesk.media.probe.send_padding`
  on the video sender; see :meth:`Uplink._send_probe`) and hands the
  server's answer (:meth:`Uplink.probe_result`) to the ladder; a failed probe
  brings the estimate down to what the server saw arrive.

Audio keeps its share: the ladder gives video only what is left after what
the Opus encoder costs on the wire (at least
:data:`~siakdesk.media.videoladder.AUDIO_SHARE_KBPS`), and turns video off
before audio would have to shrink.  Every step is kept in :attr:`timeline`
(the benchmark plots it against the link's capacity).
"""

from __future__ import annotations

import asyncio
import logging
import statistics
import time
from collections import deque
from typing import Any

from aiortc import RTCPeerConnection

from siakdesk.media import probe
from siakdesk.media.engine import encoder_of
from siakdesk.media.estimate import CLEAR_LOSS, LinkEstimate, SenderReports
from siakdesk.media.opusprofile import ProfiledOpusEncoder
from siakdesk.media.pacer import VideoPacer
from siakdesk.media.videoladder import AUDIO_SHARE_KBPS, LadderVp8Encoder, VideoLadder

logger = logging.getLogger(__name__)

#: Receiver reports this long after a probe's padding still cover some of it (aiortc
#: reports every 0.5-1.5 s; a full link delays them).
PROBE_REPORTS_S = 2.0
#: A probe waits for the office's speech to pause this long (seconds of quiet), for up
#: to PROBE_PAUSE_WAIT_S, looking every PROBE_PAUSE_POLL_S (see Uplink._send_probe).
PROBE_PAUSE_S = 0.04
PROBE_PAUSE_WAIT_S = 3.0
PROBE_PAUSE_POLL_S = 0.01
#: A follow-up probe (one passed a moment ago: the link is likely back) waits for a pause
#: this long at most: a link back from a drop is found that much sooner.
FOLLOW_UP_PAUSE_WAIT_S = 0.5
#: What a failed probe measured caps what audio is told the link carries for this long.
MEASURED_KEEP_S = 60.0
#: Audio is told the link carries no more than this many times what we sent, or
#: this much more: 49 kbit/s of 60 ms packets (video off) stay on a "thin" link (under
#: 120), 160x90 video and audio (90) make room for 20 ms packets.
AUDIO_ROOM_FACTOR = 2.3
AUDIO_ROOM_KBPS = 60.0


class Uplink:
    def __init__(self, data_saver: bool = False) -> None:
        self.estimate = LinkEstimate()
        self.data_saver = data_saver
        self.loss = 0.0
        self.rtt: float | None = None
        self.sent_kbps = 0.0
        self.timeline: deque[dict[str, Any]] = deque(maxlen=7200)
        self._reports = SenderReports()
        self._ladder: VideoLadder | None = None
        self._video: LadderVp8Encoder | None = None
        self._probe_ask = 0
        self._probe_task: asyncio.Task[probe.Sent] | None = None
        #: (when, what arrived, what was wanted) of each probe answered
        self.probes: deque[tuple[float, float, float]] = deque(maxlen=100)
        #: (when, kbit/s) of the last failed probe's measurement, until one passes
        self._measured: tuple[float, float] | None = None
        #: what the last readings said was sent (kbit/s on the wire, probes not counted)
        self._sent_recent: deque[float] = deque(maxlen=5)
        #: video goes out paced at PACE_FACTOR x its rung (see siakdesk.media.pacer)
        self.pacer = VideoPacer()

    def pace(self, pc: RTCPeerConnection) -> bool:
        """Pace the video sender of ``pc`` (a connection whose answer is applied: its
        transport is the bundled one); False if it has none or cannot be paced."""
        for sender in self._senders(pc):
            if sender.kind == "video" and sender.transport is not None:
                rtx = getattr(sender, "_rtx_ssrc", None)
                rtx = rtx if isinstance(rtx, int) else None
                return self.pacer.install(sender.transport, sender._ssrc, rtx)
        return False

    def known(self) -> tuple[float | None, bool]:
        """What a new encoder starts from (see :data:`siakdesk.media.engine.uplink_known`):
        the estimate once a report came in (a reconnect), and "hemat data"."""
        return (self.estimate.kbps if self.estimate.history else None), self.data_saver

    def rung(self, pc: RTCPeerConnection | None) -> str | None:
        encoder = self._video_encoder(pc) if pc is not None else None
        return str(encoder.ladder.rung) if encoder is not None else None

    @staticmethod
    def _senders(pc: RTCPeerConnection) -> list[Any]:
        return [
            t.sender
            for t in pc.getTransceivers()
            if t.direction == "sendonly" and t.sender.track is not None
        ]

    def _video_encoder(self, pc: RTCPeerConnection) -> LadderVp8Encoder | None:
        for sender in self._senders(pc):
            encoder = encoder_of(sender)
            if isinstance(encoder, LadderVp8Encoder):
                return encoder
        return None

    def _probe(
        self, sender: Any, ladder: VideoLadder, audio: ProfiledOpusEncoder | None = None
    ) -> None:
        """Send the probe the ladder asks for, once per ask (see the module's notes), in
        the next pause of the office's speech (``audio``: its encoder)."""
        self._ladder = ladder
        ladder.can_probe = probe.can_probe(sender)
        wanted = ladder.probe_wanted
        if wanted is None or ladder.probe_asks == self._probe_ask:
            return
        if self._probe_task is not None and not self._probe_task.done():
            return
        self._probe_ask = ladder.probe_asks
        # padding on top of what the encoders send now, up to what the rung above needs;
        # what they send, not what the rung allows: a 160x90 picture makes 25 of its 40
        # kbit/s, and a probe padded on the 40 fell short of its target by a tenth
        media = statistics.median(self._sent_recent) if self._sent_recent else 0.0
        media = media or ladder.rung.kbps + ladder.audio_kbps
        padding = max(0.0, wanted * 1.05 - media)
        self._probe_task = asyncio.ensure_future(
            self._send_probe(sender, ladder, wanted, padding, audio)
        )
        self._probe_task.add_done_callback(_probe_ended)

    async def _send_probe(
        self,
        sender: Any,
        ladder: VideoLadder,
        wanted: float,
        padding: float,
        audio: ProfiledOpusEncoder | None,
    ) -> probe.Sent:
        """Wait for a pause in the office's speech (up to :data:`PROBE_PAUSE_WAIT_S`),
        then send the probe's padding.

        A probe that finds the link full queues the packets behind it, the office's
        voice among them, for a few hundred ms.  In a pause that costs nothing (the
        listeners' playout grows its delay in silence, and gives it back in the next
        pause); in speech it tears a word apart (measured on the benchmark's 3g link:
        each failed probe in speech was a 250-350 ms jump of the regent's playout
        delay, and the speech loop it fell in scored 2.6-3.2 where the others scored
        3.5-4.1)."""
        start = time.monotonic()
        patience = FOLLOW_UP_PAUSE_WAIT_S if ladder.following_up(start) else PROBE_PAUSE_WAIT_S
        # the encoder runs on aiortc's encoding thread: its state is looked at, not awaited
        for _ in range(round(patience / PROBE_PAUSE_POLL_S)):
            if audio is None or audio.quiet_for >= PROBE_PAUSE_S:
                break
            await asyncio.sleep(PROBE_PAUSE_POLL_S)
        if ladder.probe_wanted != wanted:
            return probe.Sent()  # no longer wanted (the rung moved meanwhile)
        now = time.monotonic()
        logger.info(
            "uplink: probing %.0f kbit/s (%.0f of padding) after %.1f s%s",
            wanted,
            padding,
            now - start,
            " in a pause" if audio is not None and audio.quiet_for >= PROBE_PAUSE_S else "",
        )
        ladder.probe_sent(now)
        self.estimate.settle(now + probe.duration(padding) + PROBE_REPORTS_S)
        return await probe.send_padding(sender, padding)

    async def stop_probe(self) -> None:
        """Stop a probe still out (its connection is closing): no padding after that."""
        task, self._probe_task = self._probe_task, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    def probe_result(
        self, received_kbps: float, packets: int, span_s: float, now: float | None = None
    ) -> None:
        """The server's answer to our last probe: what it saw arrive (kbit/s, all
        media), and of the padding, how many packets over how long."""
        now = time.monotonic() if now is None else now
        ladder, task = self._ladder, self._probe_task
        if ladder is None or ladder.probe_wanted is None or task is None or not task.done():
            return
        sent = task.result() if not task.cancelled() and task.exception() is None else None
        if sent is None:
            return
        wanted = ladder.probe_wanted
        self.probes.append((now, received_kbps, wanted))
        ok = probe.passed(sent, packets, span_s)
        logger.info(
            "uplink: probe: %d of %d padding packets arrived over %.0f ms (sent over %.0f ms)",
            packets,
            sent.packets,
            1000 * span_s,
            1000 * sent.span_s,
        )
        if ladder.probe_done(now, received_kbps, passed=ok):
            self._measured = None
            self.estimate.carried(received_kbps)
        else:
            # the link said what it carries: no more than that until it says otherwise
            self.estimate.measured(now, received_kbps)
            self.estimate.settle(now + PROBE_REPORTS_S / 2)  # reports of the probe to come
            self._measured = (now, received_kbps)
        if self._video is not None:
            # at once: the ladder takes the probed rung at its next frame, and with the
            # estimate of the last report (under what just passed) it went back down at
            # once (measured on the drop benchmark: 11 s lost at the top, twice)
            self._video.set_estimate(self.estimate.kbps)

    def _audio_link(self, estimate: float, now: float) -> float:
        """What the Opus encoder is told the link carries: the estimate, but no more than
        a failed probe measured lately, nor, with video off, much more than we send.

        The estimate grows while nothing tests it; audio's copies at 20 ms (74
        kbit/s) on a link that carries 64 are a full queue (measured in the namespace
        lab: video off after a drop to 64 kbit/s, the estimate grew to 139 and audio
        went to 20 ms)."""
        link = estimate
        if self._ladder is not None and self._ladder.rung.off:
            # the ladder's probes test the link while video is on; with it off, audio
            # alone would take the estimate at its word (an office with no camera has
            # no ladder, and its audio goes by the estimate: nothing else tests it)
            sent = self.estimate.sent_peak()
            link = min(estimate, max(AUDIO_ROOM_FACTOR * sent, sent + AUDIO_ROOM_KBPS))
        if self._measured is not None:
            at, kbps = self._measured
            if now - at < MEASURED_KEEP_S:
                return min(link, kbps)
            self._measured = None
        return link

    async def poll(
        self, pc: RTCPeerConnection, now: float | None = None, busy_s: float = 0.0
    ) -> None:
        """Read the senders; on a new report, update the estimate and tune the encoders.

        ``busy_s``: the office's own recent loop lag (:class:`~siakdesk.media.estimate.LoopLag`).
        """
        now = time.monotonic() if now is None else now
        senders = self._senders(pc)
        encoders = [encoder_of(s) for s in senders]
        voice = next((e for e in encoders if isinstance(e, ProfiledOpusEncoder)), None)
        for sender, encoder in zip(senders, encoders, strict=True):
            if isinstance(encoder, LadderVp8Encoder):
                encoder.ladder.set_data_saver(self.data_saver)
                self._video = encoder
                self._probe(sender, encoder.ladder, voice)
                self.pacer.ladder = encoder.ladder
        reading = await self._reports.read(senders, now)
        if reading is None:
            return
        fresh = reading.reports
        self.sent_kbps = reading.sent_kbps
        self._sent_recent.append(reading.sent_kbps)
        self.loss = reading.loss
        self.rtt = reading.rtt if reading.rtt is not None else self.rtt
        video = next((e for e in encoders if isinstance(e, LadderVp8Encoder)), None)
        probing = video is not None and video.ladder.probing(now)
        if video is not None:
            video.ladder.note_report(now, clear=self.loss < CLEAR_LOSS)
        estimate = self.estimate.update(
            now, self.sent_kbps, self.loss, self.rtt, busy_s, probing=probing
        )
        rung = None
        audio = next((e for e in encoders if isinstance(e, ProfiledOpusEncoder)), None)
        for encoder in encoders:
            if isinstance(encoder, ProfiledOpusEncoder):
                audio_loss = [r.loss for r in fresh if r.kind == "audio"]
                if audio_loss:
                    encoder.set_loss(100 * audio_loss[0])
                encoder.set_link(self._audio_link(estimate, now))
            elif isinstance(encoder, LadderVp8Encoder):
                if audio is not None:
                    encoder.ladder.audio_kbps = max(AUDIO_SHARE_KBPS, audio.wire_kbps)
                encoder.set_estimate(estimate)
                rung = str(encoder.ladder.rung)
        self.timeline.append(
            {
                "t": round(now, 3),
                "sent_kbps": round(self.sent_kbps, 1),
                "estimate_kbps": round(estimate, 1),
                "loss": round(self.loss, 4),
                "rtt_ms": round(1000 * self.rtt, 1) if self.rtt is not None else None,
                "rung": rung,
                "paced_ms": round(1000 * self.pacer.take_longest_wait()),
            }
        )


def _probe_ended(task: asyncio.Task[probe.Sent]) -> None:
    """A probe that failed (its connection closed under it) is logged, not left for
    asyncio to report as an exception nobody retrieved."""
    if not task.cancelled() and task.exception() is not None:
        logger.info("uplink: probe not sent: %r", task.exception())
