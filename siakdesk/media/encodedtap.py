"""Taking encoded frames from an aiortc receiver before its decoder.

An ``RTCRtpReceiver`` depacketizes RTP, reassembles whole encoded frames in its
jitter buffer and ``put``s ``(codec, JitterFrame)`` into a ``queue.Queue`` that
a decoder thread reads.  :func:`tap_receiver` swaps that queue for an
:class:`EncodedFrameTap` *before* the receiver starts; the tap hands every
encoded frame to a callback on the event loop and keeps nothing, so the decoder
thread idles and nothing is decoded.  NACKs and PLIs keep working (they are
sent before the queue).

The server forwards what it taps; a load-test bot counts what it taps instead
of decoding it.  This is a seam of aiortc 1.16 that has no public API;
``tests/unit/media/test_encodedtap.py`` breaks loudly if an upgrade moves it.
"""

from __future__ import annotations

import queue
from collections.abc import Callable
from typing import Any

from aiortc import RTCRtpReceiver
from aiortc.jitterbuffer import JitterFrame


class EncodedFrameTap(queue.Queue[Any]):
    """Stands in for a receiver's decoder queue and diverts encoded frames."""

    def __init__(self, on_frame: Callable[[JitterFrame], None]) -> None:
        super().__init__()
        self._on_frame = on_frame

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        if item is None:
            # the receiver stops: let its (idle) decoder thread end
            super().put(item, block, timeout)
            return
        _codec, frame = item
        self._on_frame(frame)


def tap_receiver(receiver: RTCRtpReceiver, on_frame: Callable[[JitterFrame], None]) -> None:
    """Route ``receiver``'s encoded frames to ``on_frame`` instead of its decoder.

    Must be called before the receiver starts (after ``setRemoteDescription``,
    before the connection is established).
    """
    attribute = "_RTCRtpReceiver__decoder_queue"
    if not isinstance(getattr(receiver, attribute, None), queue.Queue):
        raise RuntimeError("this aiortc version has no decoder queue to tap")
    if getattr(receiver, "_RTCRtpReceiver__decoder_thread", None) is not None:
        raise RuntimeError("the receiver has started already")
    setattr(receiver, attribute, EncodedFrameTap(on_frame))
