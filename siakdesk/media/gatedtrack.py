"""A local track that can be muted without stopping its device."""

from __future__ import annotations

from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError
from av.frame import Frame


class GatedTrack(MediaStreamTrack):
    """Passes ``source``'s frames on, except while muted.

    While muted it keeps reading the source, so a camera or microphone never
    backs up, but returns nothing: the sender sends no packets at all, which
    costs no bandwidth (a muted microphone on a 64 kbit/s link matters).
    """

    def __init__(self, source: MediaStreamTrack) -> None:
        super().__init__()
        self.kind = source.kind
        self.source = source
        self.muted = False
        #: the last frame read, muted or not (a self-view shows it)
        self.last_frame: Frame | None = None

    def set_muted(self, muted: bool) -> None:
        self.muted = muted

    async def recv(self) -> Frame:
        while True:
            if self.readyState != "live":
                raise MediaStreamError
            frame = await self.source.recv()
            self.last_frame = frame  # type: ignore[assignment]
            if not self.muted:
                return frame  # type: ignore[return-value]

    def stop(self) -> None:
        super().stop()
        self.source.stop()


class SenderFeed(MediaStreamTrack):
    """What one peer connection sends of a :class:`GatedTrack` that outlives it.

    aiortc's ``RTCRtpSender`` stops its track when it stops (``_run_rtp``'s
    ``finally``), so a track handed straight to a peer connection dies with it.
    A session that builds a new peer connection after a lost link gives each one
    its own feed; stopping a feed leaves the gate and the device running.
    """

    def __init__(self, gate: GatedTrack) -> None:
        super().__init__()
        self.kind = gate.kind
        self.gate = gate

    async def recv(self) -> Frame:
        if self.readyState != "live":
            raise MediaStreamError
        return await self.gate.recv()
