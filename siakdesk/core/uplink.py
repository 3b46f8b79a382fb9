"""The office's uplink: one estimate of what it can send, and the encoders tuned to it.

Every half second the session hands :meth:`Uplink.poll` its peer connection.
The uplink reads, per sender, what went out (``outbound-rtp``: packets and
payload bytes, plus the headers each packet carries on the wire) and the server's
newest receiver report (``remote-inbound-rtp``: fraction lost, round-trip time).  A new
report updates the :class:`~siakdesk.media.estimate.LinkEstimate`; then

* the Opus encoder gets the loss of the audio stream (FEC strength, 60 ms
  frames on the worst links) and the estimate (60 ms frames on a thin link);
* the VP8 encoder's ladder gets the estimate (its rung), and "hemat data".

Audio keeps its share: the ladder gives video only what is left after what
the Opus encoder costs on the wire (at least
:data:`~siakdesk.media.videoladder.AUDIO_SHARE_KBPS`), and turns video off
before audio would have to shrink.  Every step is kept in :attr:`timeline`
(the benchmark plots it against the link's capacity).
"""

from __future__ import annotations

import logging
import time
from collections import deque
from typing import Any

from aiortc import RTCPeerConnection

from siakdesk.media.engine import encoder_of
from siakdesk.media.estimate import CLEAR_LOSS, LinkEstimate, SenderReports
from siakdesk.media.opusprofile import ProfiledOpusEncoder
from siakdesk.media.videoladder import AUDIO_SHARE_KBPS, LadderVp8Encoder

logger = logging.getLogger(__name__)


class Uplink:
    def __init__(self, data_saver: bool = False) -> None:
        self.estimate = LinkEstimate()
        self.data_saver = data_saver
        self.loss = 0.0
        self.rtt: float | None = None
        self.sent_kbps = 0.0
        self.timeline: deque[dict[str, Any]] = deque(maxlen=7200)
        self._reports = SenderReports()

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

    async def poll(
        self, pc: RTCPeerConnection, now: float | None = None, busy_s: float = 0.0
    ) -> None:
        """Read the senders; on a new report, update the estimate and tune the encoders.

        ``busy_s``: the office's own recent loop lag (:class:`~siakdesk.media.estimate.LoopLag`).
        """
        now = time.monotonic() if now is None else now
        senders = self._senders(pc)
        encoders = [encoder_of(s) for s in senders]
        for encoder in encoders:
            if isinstance(encoder, LadderVp8Encoder):
                encoder.ladder.set_data_saver(self.data_saver)
        reading = await self._reports.read(senders, now)
        if reading is None:
            return
        fresh = reading.reports
        self.sent_kbps = reading.sent_kbps
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
                encoder.set_link(estimate)
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
            }
        )
