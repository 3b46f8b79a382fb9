"""What the forwarding unit needs to know of VP8's bitstream (RFC 6386)."""

from __future__ import annotations


def is_vp8_keyframe(data: bytes) -> bool:
    """True when ``data`` is a VP8 key frame (RFC 6386 section 9.1: frame tag and start code)."""
    return len(data) >= 10 and not data[0] & 0x01 and data[3:6] == b"\x9d\x01\x2a"


def vp8_keyframe_size(data: bytes) -> tuple[int, int]:
    """Width and height coded in a VP8 key frame."""
    if not is_vp8_keyframe(data):
        raise ValueError("not a VP8 key frame")
    width = int.from_bytes(data[6:8], "little") & 0x3FFF
    height = int.from_bytes(data[8:10], "little") & 0x3FFF
    return width, height
