"""Opus packets joined without decoding: the receiver decodes the very same speech."""

from __future__ import annotations

import numpy as np
import pytest

from siakdesk.media import libopus
from siakdesk.media.opuspacket import (
    OpusPacker,
    OpusPacketError,
    frame_samples,
    join,
    parse,
)
from tests.unit.media.test_playout import packets

WB_20MS = 9 << 3  # SILK wideband, 20 ms frames, mono


def test_every_frame_count_code_is_taken_apart() -> None:
    assert parse(bytes((WB_20MS,)) + b"abc").frames == (b"abc",)
    assert parse(bytes((WB_20MS | 1,)) + b"abcd").frames == (b"ab", b"cd")
    assert parse(bytes((WB_20MS | 2, 1)) + b"abcd").frames == (b"a", b"bcd")
    cbr = bytes((WB_20MS | 3, 3)) + b"aabbcc"
    assert parse(cbr).frames == (b"aa", b"bb", b"cc")
    vbr_padded = bytes((WB_20MS | 3, 0x80 | 0x40 | 2, 2, 1)) + b"abc" + b"\0\0"
    assert parse(vbr_padded).frames == (b"a", b"bc")
    assert parse(cbr).samples == 3 * 960


@pytest.mark.parametrize(
    "bad",
    [
        b"",
        bytes((WB_20MS | 1,)) + b"abc",  # two equal frames, odd length
        bytes((WB_20MS | 2, 9)) + b"ab",  # first frame past the end
        bytes((WB_20MS | 3,)),  # no frame count
        bytes((WB_20MS | 3, 0)),  # zero frames
        bytes((WB_20MS | 3, 7)) + b"x" * 7,  # 140 ms in one packet
        bytes((WB_20MS | 3, 0x80 | 2, 200)) + b"ab",  # VBR lengths past the end
    ],
)
def test_malformed_packets_are_refused(bad: bytes) -> None:
    with pytest.raises(OpusPacketError):
        parse(bad)


def test_joined_frames_come_apart_the_same_long_lengths_too() -> None:
    frames = [b"x" * 300, b"y" * 40, b"z" * 1000]
    assert parse(join(WB_20MS, frames)).frames == tuple(frames)
    assert parse(join(WB_20MS, [b"a" * 5] * 3)).frames == (b"a" * 5,) * 3
    assert frame_samples(WB_20MS >> 3) == 960 and frame_samples(16) == 120


def test_three_packets_become_one_that_decodes_to_the_same_speech() -> None:
    lib = libopus.load()
    if lib is None:
        pytest.skip("no libopus in this environment")
    stream = packets(1.2)  # our profile: 20 ms packets with FEC
    packer = OpusPacker(2880)
    joined = [out for _, ts, payload in stream for out in packer.add(ts, payload)]
    joined += packer.flush()
    assert len(joined) == len(stream) // 3
    assert [ts for ts, _ in joined] == [ts for _, ts, _ in stream[::3]]
    assert all(parse(p).samples == 2880 for _, p in joined)
    one, other = libopus.OpusDecoder(lib), libopus.OpusDecoder(lib)
    alone = np.concatenate([one.decode(p) for _, _, p in stream])
    together = np.concatenate([other.decode(p) for _, p in joined])
    assert np.array_equal(alone, together)
    # the FEC of the next packet still rebuilds the last 20 ms of a lost one
    assert other.recover(joined[1][1], 2880).size == 2880


def test_a_gap_or_another_configuration_ends_the_packet_being_built() -> None:
    packer = OpusPacker(2880)
    frame = bytes((WB_20MS,)) + b"abc"
    assert packer.add(0, frame) == []
    assert packer.holding
    # a lost packet before the server: the next one does not follow on
    out = packer.add(1920, frame)
    assert out == [(0, frame)]
    fullband = bytes((31 << 3,)) + b"celt"  # CELT fullband 20 ms
    assert packer.add(2880, fullband) == [(1920, frame)]
    assert packer.flush() == [(2880, fullband)]
    assert not packer.holding


def test_what_is_already_long_or_unreadable_goes_on_as_it_came() -> None:
    packer = OpusPacker(2880)
    sixty = bytes((11 << 3,)) + b"silk60"  # SILK wideband, one 60 ms frame
    assert packer.add(0, sixty) == [(0, sixty)]
    frame = bytes((WB_20MS,)) + b"abc"
    packer.add(2880, frame)
    assert packer.add(3840, b"") == [(2880, frame), (3840, b"")]
