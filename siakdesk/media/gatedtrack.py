"""A local track that can be muted without stopping its device."""

from __future__ import annotations

import asyncio

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
        self._reading: asyncio.Future[Frame] | None = None
        self._switching = False

    def set_muted(self, muted: bool) -> None:
        self.muted = muted

    def replace_source(self, source: MediaStreamTrack) -> None:
        """Send ``source`` from now on (another camera or microphone); the old one stops."""
        if source.kind != self.kind:
            raise ValueError(f"a {source.kind} track cannot replace a {self.kind} track")
        old, self.source = self.source, source
        if self._reading is not None and not self._reading.done():
            self._switching = True
            self._reading.cancel()  # a read of the old device would wait forever
        old.stop()

    async def recv(self) -> Frame:
        while True:
            if self.readyState != "live":
                raise MediaStreamError
            self._reading = asyncio.ensure_future(self.source.recv())  # type: ignore[arg-type]
            try:
                frame = await self._reading
            except asyncio.CancelledError:
                if self._switching and not _cancelling():
                    self._switching = False
                    continue  # the device was replaced: read the new one
                raise
            self.last_frame = frame
            if not self.muted:
                return frame

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


def _cancelling() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0
