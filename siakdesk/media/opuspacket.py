"""Opus packets taken apart and put together again, without decoding (RFC 6716 section 3).

The server forwards Opus as each publisher packetized it: 20 ms a packet from
an office on a good link.  To a subscriber on a thin downlink, 50 packets a
second cost 25 kbit/s of IP, UDP, RTP and SRTP headers alone, as much as the
speech.  :class:`OpusPacker` joins consecutive packets into one of up to
60 ms (a "code 3" packet holds up to 48 frames of one configuration), what
libopus's ``opus_repacketizer`` does: the frames stay as they were encoded,
their in-band FEC with them, so the receiver decodes the same speech from a
third of the packets.

A packet is only joined to the ones before it when it continues them: the
same configuration (mode, bandwidth, frame size) and channel count, and the
timestamp that follows on.  A gap (a packet lost before the server, or a
silence the publisher did not send) ends the packet being built.

**Redundancy in the padding.**  On a thin, lossy link an office sends 60 ms
packets, and Opus's in-band FEC rebuilds only the last 20 ms of a lost one
(a low-bitrate copy at that).  So there, each packet also carries the whole
packet before it (:func:`with_redundancy`), in the padding a code 3 packet
may end with: a lost packet is decoded in full from the next one
(:func:`redundancy`), as RED (RFC 2198) would do, which aiortc cannot
negotiate.  RFC 6716 asks encoders to pad with zeros and every decoder to
accept any padding, so any Opus decoder (aiortc's, a browser's) plays these
packets as if the padding were zeros; the copy starts with :data:`MAGIC` so
ordinary padding is never taken for one.  This departs from the encoder's
"zeros" on purpose, and only between SiakDesk's own encoder and playout.
"""

from __future__ import annotations

import dataclasses

#: Samples at 48 kHz of one frame, by the configuration number in the TOC byte.
_SILK = (480, 960, 1920, 2880)
_HYBRID = (480, 960)
_CELT = (120, 240, 480, 960)
#: An Opus packet holds at most 120 ms (RFC 6716 section 3.2.5).
MAX_PACKET_SAMPLES = 5760
#: The padding holds a copy of the packet before when it starts with these bytes.
MAGIC = b"SDr1"


class OpusPacketError(ValueError):
    """Bytes that are not a well-formed Opus packet."""


def frame_samples(config: int) -> int:
    """Samples at 48 kHz of one frame of configuration ``config`` (0-31)."""
    if config < 12:
        return _SILK[config % 4]
    if config < 16:
        return _HYBRID[config % 2]
    return _CELT[config % 4]


def _length(data: bytes, at: int) -> tuple[int, int]:
    """A frame length coded at ``at`` (one byte, or two from 252 on): (length, next index)."""
    if at >= len(data):
        raise OpusPacketError("frame length missing")
    first = data[at]
    if first < 252:
        return first, at + 1
    if at + 1 >= len(data):
        raise OpusPacketError("frame length cut short")
    return first + 4 * data[at + 1], at + 2


def _code_length(length: int) -> bytes:
    if length < 252:
        return bytes((length,))
    return bytes((252 + (length - 252) % 4, (length - 252) // 4))


@dataclasses.dataclass(frozen=True)
class OpusPacket:
    """One packet taken apart: ``toc`` without its frame-count code, and its frames."""

    toc: int
    frames: tuple[bytes, ...]
    padding: bytes = b""

    @property
    def config(self) -> int:
        return self.toc >> 3

    @property
    def samples(self) -> int:
        return frame_samples(self.config) * len(self.frames)


def parse(packet: bytes) -> OpusPacket:
    """Split an Opus packet into its frames (RFC 6716 section 3.2)."""
    if not packet:
        raise OpusPacketError("empty packet")
    toc, code = packet[0] & 0xFC, packet[0] & 0x03
    body = packet[1:]
    frames: list[bytes]
    if code == 0:
        frames = [body]
    elif code == 1:
        if len(body) % 2:
            raise OpusPacketError("two equal frames of odd total length")
        half = len(body) // 2
        frames = [body[:half], body[half:]]
    elif code == 2:
        first, at = _length(packet, 1)
        if at + first > len(packet):
            raise OpusPacketError("first frame longer than the packet")
        frames = [packet[at : at + first], packet[at + first :]]
    else:
        if len(packet) < 2:
            raise OpusPacketError("frame count missing")
        vbr, padded, count = packet[1] & 0x80, packet[1] & 0x40, packet[1] & 0x3F
        if count == 0:
            raise OpusPacketError("no frames")
        at, padding = 2, 0
        if padded:
            while True:
                if at >= len(packet):
                    raise OpusPacketError("padding length cut short")
                step = packet[at]
                at += 1
                padding += 254 if step == 255 else step
                if step != 255:
                    break
        end = len(packet) - padding
        if vbr:
            lengths = []
            for _ in range(count - 1):
                size, at = _length(packet, at)
                lengths.append(size)
            lengths.append(end - at - sum(lengths))
        else:
            if (end - at) % count:
                raise OpusPacketError("equal frames that do not divide the packet")
            lengths = [(end - at) // count] * count
        if end < at or min(lengths) < 0:
            raise OpusPacketError("frames longer than the packet")
        frames = []
        for size in lengths:
            frames.append(packet[at : at + size])
            at += size
        return _checked(OpusPacket(toc, tuple(frames), packet[end:]))
    return _checked(OpusPacket(toc, tuple(frames)))


def _checked(parsed: OpusPacket) -> OpusPacket:
    if parsed.samples > MAX_PACKET_SAMPLES:
        raise OpusPacketError("more than 120 ms in one packet")
    return parsed


def join(toc: int, frames: list[bytes] | tuple[bytes, ...], padding: bytes = b"") -> bytes:
    """One packet of ``frames`` (all of configuration and channels ``toc``), then ``padding``."""
    if len(frames) == 1 and not padding:
        return bytes((toc,)) + frames[0]
    head = len(frames)
    if padding:
        head |= 0x40
        pad = len(padding)
        head_padding = b"\xff" * (pad // 254) + bytes((pad % 254,))
    else:
        head_padding = b""
    if len({len(f) for f in frames}) == 1:
        lengths = b""
    else:
        head |= 0x80
        lengths = b"".join(_code_length(len(f)) for f in frames[:-1])
    return bytes((toc | 3, head)) + head_padding + lengths + b"".join(frames) + padding


def with_redundancy(packet: bytes, previous: bytes) -> bytes:
    """``packet`` carrying ``previous`` (the packet sent just before it) in its padding."""
    parsed = parse(packet)
    return join(parsed.toc, parsed.frames, MAGIC + previous)


def redundancy(packet: bytes) -> bytes | None:
    """The copy of the packet before that ``packet`` carries, if any (and well formed)."""
    try:
        padding = parse(packet).padding
    except OpusPacketError:
        return None
    if not padding.startswith(MAGIC):
        return None
    copy = padding[len(MAGIC) :]
    try:
        parse(copy)
    except OpusPacketError:
        return None
    return copy


class OpusPacker:
    """Joins consecutive Opus packets of one stream into packets of ``target`` samples.

    :meth:`add` takes a packet and its RTP timestamp and returns the packets
    ready to send (timestamp, bytes): none while one is being built, one or two
    when it is full or the new packet does not continue it.  :meth:`flush`
    returns what is being built.  A packet that cannot be parsed, or that is
    already as long as ``target``, goes on as it came.
    """

    def __init__(self, target: int = 2880) -> None:
        self.target = target
        self._toc = -1
        self._frames: list[bytes] = []
        self._start = 0
        self._next = 0

    def add(self, timestamp: int, packet: bytes) -> list[tuple[int, bytes]]:
        try:
            parsed = parse(packet)
        except OpusPacketError:
            return [*self.flush(), (timestamp, packet)]
        out: list[tuple[int, bytes]] = []
        continues = (
            self._frames
            and parsed.toc == self._toc
            and timestamp == self._next
            and self._next - self._start + parsed.samples <= self.target
        )
        if not continues:
            out += self.flush()
        if parsed.samples >= self.target:
            return [*out, (timestamp, packet)]
        if not self._frames:
            self._toc, self._start = parsed.toc, timestamp
        self._frames += parsed.frames
        self._next = timestamp + parsed.samples
        if self._next - self._start >= self.target:
            out += self.flush()
        return out

    @property
    def holding(self) -> bool:
        """True while a packet is being built (it waits for the next one or :meth:`flush`)."""
        return bool(self._frames)

    def flush(self) -> list[tuple[int, bytes]]:
        if not self._frames:
            return []
        packet = join(self._toc, self._frames)
        self._frames = []
        return [(self._start, packet)]
