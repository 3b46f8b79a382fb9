"""SiakDesk's media engine inside aiortc: our encoders for what a client sends.

aiortc has no codec registry: its ``RTCRtpSender`` calls ``get_encoder`` from
its own module when the first frame is sent.  :func:`install` wraps that one
name, so every Opus sender in the process uses
:class:`~siakdesk.media.opusprofile.ProfiledOpusEncoder` (mono, FEC, DTX) and
every VP8 sender :class:`~siakdesk.media.videoladder.LadderVp8Encoder` (the
rung the uplink estimate allows).  The receive side is
:mod:`siakdesk.media.playout`, attached per receiver by the session.  The
server forwards without encoding and installs nothing.

aiortc creates a sender's encoder on its first frame, inside the sender's own
task, so a session cannot hand the encoder anything before it encodes.  What
a session already knows of its uplink (a reconnect over a link measured at
64 kbit/s must not start again at 640x360) travels in :data:`uplink_known`, a
context variable the session sets before it negotiates: the sender's task is
created in that context and :func:`_get_encoder` reads it there.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from aiortc import rtcrtpsender
from aiortc.codecs.base import Encoder

from siakdesk.media.opusprofile import ProfiledOpusEncoder
from siakdesk.media.videoladder import LadderVp8Encoder

_original_get_encoder = rtcrtpsender.get_encoder

#: Set by a session before it negotiates: its uplink estimate (kbit/s, None before the
#: first report) and "hemat data", read when one of its senders starts an encoder.
uplink_known: ContextVar[Callable[[], tuple[float | None, bool]] | None] = ContextVar(
    "uplink_known", default=None
)


def _get_encoder(codec: Any) -> Encoder:
    mime = codec.mimeType.lower()
    if mime == "audio/opus":
        return ProfiledOpusEncoder()
    if mime == "video/vp8":
        encoder = LadderVp8Encoder()
        known = uplink_known.get()
        if known is not None:
            kbps, data_saver = known()
            encoder.ladder.set_data_saver(data_saver)
            if kbps is not None:
                encoder.set_estimate(kbps)
        return encoder
    return _original_get_encoder(codec)


def install() -> None:
    """Use SiakDesk's encoders for every sender in this process from now on; idempotent."""
    rtcrtpsender.get_encoder = _get_encoder


def encoder_of(sender: Any) -> Encoder | None:
    """The encoder an aiortc sender is using (aiortc keeps it private), once it started."""
    encoder: Encoder | None = getattr(sender, "_RTCRtpSender__encoder", None)
    return encoder
