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
