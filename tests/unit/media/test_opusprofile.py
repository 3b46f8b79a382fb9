"""The Opus profile: mono, 24 kbit/s, FEC tuned by loss, 60 ms frames on bad links, DTX."""

from __future__ import annotations

import math
import types

import av
import numpy as np
import pytest
from aiortc.codecs.opus import OpusEncoder

from siakdesk.media import opusprofile
from siakdesk.media.opuspacket import parse, redundancy
from siakdesk.media.opusprofile import (
    CLEAN_BELOW,
    AudioProfile,
    ProfiledOpusEncoder,
    loss_band,
)

RATE = 48000


def frames(seconds: float, tone_hz: float | None) -> list[av.AudioFrame]:
    out = []
    for n in range(int(seconds * 50)):
        t = (np.arange(960) + n * 960) / RATE
        wave = np.sin(2 * math.pi * tone_hz * t) * 8000 if tone_hz else np.zeros(960)
        frame = av.AudioFrame.from_ndarray(
            wave.astype(np.int16).reshape(1, -1), format="s16", layout="mono"
        )
        frame.sample_rate = RATE
        frame.pts = n * 960
        out.append(frame)
    return out


def encode_all(encoder: object, source: list[av.AudioFrame]) -> list[bytes]:
    payloads: list[bytes] = []
    for frame in source:
        got, _timestamp = encoder.encode(frame)  # type: ignore[attr-defined]
        payloads += got
    return payloads


def test_settings_are_mono_24k_20ms_and_no_fec_on_a_clean_link() -> None:
    encoder = ProfiledOpusEncoder()
    assert encoder.settings == {
        "channels": 1,
        "bitrate": 24000,
        "frame_ms": 20,
        "fec": False,
        "redundancy": False,
        "expected_loss": 0,
        "dtx": True,
    }


def test_reported_loss_sends_each_packet_again_in_the_next_or_fec_if_asked() -> None:
    encoder = ProfiledOpusEncoder()
    for _ in range(5):  # about 2 % reported
        encoder.set_loss(2.0)
    packets = encode_all(encoder, frames(0.1, 440))
    settings = encoder.settings
    assert settings["redundancy"] and not settings["fec"] and settings["expected_loss"] == 2
    assert settings["bitrate"] == 24000 and settings["frame_ms"] == 20
    assert all(redundancy(p) is not None for p in packets[1:])
    assert 70 < encoder.wire_kbps < 78  # twice 24 kbit/s, and 50 packets' headers
    fec = ProfiledOpusEncoder(AudioProfile(redundancy=False))
    for _ in range(5):
        fec.set_loss(2.0)
    encode_all(fec, frames(0.1, 440))
    assert fec.settings["fec"] and fec.settings["bitrate"] == 32000
    assert 55 < fec.wire_kbps < 60


def test_speech_costs_a_quarter_of_aiortcs_default() -> None:
    tone = frames(2.0, 440)
    ours = encode_all(ProfiledOpusEncoder(), tone)
    theirs = encode_all(OpusEncoder(), tone)
    assert len(ours) == len(theirs) == 100  # one packet per 20 ms
    ours_kbit = sum(map(len, ours)) * 8 / 2.0 / 1000
    theirs_kbit = sum(map(len, theirs)) * 8 / 2.0 / 1000
    assert ours_kbit < 36, ours_kbit  # VBR around 24 kbit/s
    assert theirs_kbit > 3 * ours_kbit, (theirs_kbit, ours_kbit)


def test_silence_sends_one_packet_in_400_ms() -> None:
    encoder = ProfiledOpusEncoder()
    packets = encode_all(encoder, frames(4.0, None))
    # 200 ms of hangover at first, then one frame per 400 ms
    assert 12 <= len(packets) <= 22, len(packets)
    assert encoder.suppressed >= 170
    # speech resumes at once
    assert len(encode_all(encoder, frames(0.2, 300))) == 10


def test_a_pause_in_speech_is_told_apart_from_speech_over_a_room_s_noise() -> None:
    encoder = ProfiledOpusEncoder()
    encode_all(encoder, frames(1.0, 300))  # speech, about -15 dBFS
    assert encoder.quiet_for == 0.0
    # a room's noise floor at about -44 dBFS (over the DTX's -50): a pause all the same
    rng = np.random.default_rng(1)
    for frame in frames(0.2, None):
        noise = rng.normal(0, 200, 960).astype(np.int16).reshape(1, -1)
        quiet = av.AudioFrame.from_ndarray(noise, format="s16", layout="mono")
        quiet.sample_rate, quiet.pts = RATE, frame.pts
        encoder.encode(quiet)
    assert 0.15 <= encoder.quiet_for <= 0.21, encoder.quiet_for
    assert encoder.suppressed == 0  # not silent enough for DTX: sent
    encode_all(encoder, frames(0.04, 300))
    assert encoder.quiet_for == 0.0


def test_loss_retunes_fec_and_goes_to_60_ms_frames_on_bad_links() -> None:
    encoder = ProfiledOpusEncoder()
    for _ in range(10):  # reports of about 4 % loss
        encoder.set_loss(4.0)
    encode_all(encoder, frames(0.1, 440))
    assert encoder.settings["expected_loss"] == 5 and encoder.frame_ms == 20
    for _ in range(10):
        encoder.set_loss(12.0)
    packets = encode_all(encoder, frames(1.2, 440))
    assert encoder.settings["expected_loss"] == 20 and encoder.frame_ms == 60
    assert 18 <= len(packets) <= 21  # 1.2 s in 60 ms packets
    assert loss_band(0) == 0 and loss_band(0.9) == 0 and loss_band(1.5) == 2
    assert loss_band(30) == 20


def test_one_lossy_report_does_not_flap_the_codec() -> None:
    encoder = ProfiledOpusEncoder()
    encoder.set_loss(14.0)  # one report with a burst: smoothed, 4.2 % -> band 5
    encode_all(encoder, frames(0.1, 440))
    assert encoder.settings["expected_loss"] == 5 and encoder.frame_ms == 20
    for _ in range(10):
        encoder.set_loss(0.0)  # clear again: the band holds for 10 s, no reopen
    encode_all(encoder, frames(0.1, 440))
    assert encoder.settings["expected_loss"] == 5


def test_a_lossy_link_keeps_its_copies_through_a_run_of_reports_with_no_loss(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = [1000.0]
    monkeypatch.setattr(opusprofile, "time", types.SimpleNamespace(monotonic=lambda: clock[0]))
    encoder = ProfiledOpusEncoder()
    for _ in range(4):  # a 3 % link
        encoder.set_loss(3.0)
        clock[0] += 1.0
    encode_all(encoder, frames(0.02, 440))
    assert encoder.settings["redundancy"]
    for _ in range(25):  # reports with no loss: the smoothed loss goes under 1 %
        encoder.set_loss(0.0)
        clock[0] += 1.0
    encode_all(encoder, frames(0.02, 440))
    assert encoder._loss_avg < CLEAN_BELOW
    assert encoder.settings["redundancy"] and encoder.settings["expected_loss"] == 2
    for _ in range(10):  # 30 s and more with no loss: a clean link, no copies
        encoder.set_loss(0.0)
        clock[0] += 1.0
    encode_all(encoder, frames(0.02, 440))
    assert not encoder.settings["redundancy"] and encoder.settings["expected_loss"] == 0


def test_a_lone_heavy_report_on_a_lossy_link_keeps_20_ms_packets() -> None:
    encoder = ProfiledOpusEncoder()
    for loss in (3.0, 4.0, 2.0, 3.0, 12.0, 3.0, 4.0, 15.0, 2.0, 3.0):  # 3 % and chance
        encoder.set_loss(loss)
        encode_all(encoder, frames(0.02, 440))
    assert encoder.settings["expected_loss"] == 5 and encoder.frame_ms == 20
    for _ in range(3):  # loss that stays: two reports are enough
        encoder.set_loss(14.0)
    encode_all(encoder, frames(0.1, 440))
    # band 10: with copies of each packet in the next, still 20 ms (no codec reopen)
    assert encoder.settings["expected_loss"] == 10 and encoder.frame_ms == 20
    assert encoder.settings["redundancy"]


def test_heavy_loss_sends_60_ms_packets_from_10_percent_with_fec_and_20_with_copies() -> None:
    copies, fec = ProfiledOpusEncoder(), ProfiledOpusEncoder(AudioProfile(redundancy=False))
    for encoder in (copies, fec):
        for _ in range(10):
            encoder.set_loss(9.0)
        encode_all(encoder, frames(0.1, 440))
    assert copies.settings["expected_loss"] == fec.settings["expected_loss"] == 10
    assert (copies.frame_ms, fec.frame_ms) == (20, 60)
    for _ in range(10):
        copies.set_loss(25.0)
    encode_all(copies, frames(0.1, 440))
    assert copies.settings["expected_loss"] == 20 and copies.frame_ms == 60


def test_a_low_bitrate_profile_uses_60_ms_frames_and_decodes() -> None:
    encoder = ProfiledOpusEncoder(AudioProfile(bitrate=16000))
    assert encoder.frame_ms == 60
    packets = encode_all(encoder, frames(1.0, 440))
    decoder = av.CodecContext.create("libopus", "r")
    decoded = []
    for payload in packets:
        decoded += decoder.decode(av.Packet(payload))
    samples = np.concatenate([f.to_ndarray().reshape(-1) for f in decoded])
    assert samples.size > RATE * 0.8  # (stereo or mono, it is audio all the same)
    assert np.abs(samples).max() > 0.05 * (32768 if samples.dtype != np.float32 else 1)


def test_a_thin_uplink_sends_60_ms_packets_and_a_wider_one_20_again() -> None:
    encoder = ProfiledOpusEncoder()
    encoder.set_link(400.0)
    assert len(encode_all(encoder, frames(0.6, 440))) == 30
    encoder.set_link(70.0)  # 20 ms would be 49 of these 70 kbit/s on the wire
    packets = encode_all(encoder, frames(1.2, 440))
    assert encoder.frame_ms == 60 and encoder.settings["bitrate"] == 24000
    assert 18 <= len(packets) <= 21
    encoder.set_link(100.0)  # in between: stays (no flapping around one figure)
    encode_all(encoder, frames(0.2, 440))
    assert encoder.frame_ms == 60
    encoder.set_link(150.0)
    encode_all(encoder, frames(0.2, 440))
    assert encoder.frame_ms == 20


def thin_lossy_encoder() -> ProfiledOpusEncoder:
    """An encoder told its uplink is thin (60 kbit/s) and loses about 2 %."""
    encoder = ProfiledOpusEncoder()
    encoder.set_link(60.0)
    for _ in range(5):
        encoder.set_loss(2.0)
    return encoder


def test_a_thin_lossy_link_sends_each_packet_again_in_the_next_one() -> None:
    encoder = thin_lossy_encoder()
    packets = encode_all(encoder, frames(1.2, 440))
    settings = encoder.settings
    assert settings["redundancy"] and not settings["fec"]
    assert settings["bitrate"] == 20000 and settings["frame_ms"] == 60
    copies = [redundancy(p) for p in packets]
    assert copies[0] is None  # nothing before the first
    for before, copy in zip(packets, copies[1:], strict=False):
        assert copy is not None and parse(copy).frames == parse(before).frames
        assert redundancy(copy) is None  # the copy is the packet alone, not a chain
    # any Opus decoder reads the padding as padding: PyAV's libopus plays them all
    decoder = av.CodecContext.create("libopus", "r")
    decoded = sum(f.samples for p in packets for f in decoder.decode(av.Packet(p)))
    assert decoded == 2880 * len(packets)
    # on the wire: about 49 kbit/s with headers, most of a 64 kbit/s link's room
    kbit = sum(len(p) + 62 for p in packets[1:]) * 8 / (0.06 * len(packets[1:])) / 1000
    assert kbit < 54, kbit
    assert abs(encoder.wire_kbps - 49) < 3
    # silence that is not sent breaks the chain: no copy of what the receiver never missed
    quiet = encode_all(encoder, frames(1.0, None))
    after = encode_all(encoder, frames(0.12, 440))
    assert quiet and after and redundancy(after[0]) is None


def test_a_new_loss_band_that_changes_nothing_keeps_the_codec_and_its_copies() -> None:
    encoder = thin_lossy_encoder()
    before = encode_all(encoder, frames(0.6, 440))
    codec = encoder.codec
    for _ in range(5):
        encoder.set_loss(4.5)  # band 5: copies at 20 kbit/s in 60 ms packets, as at 2 %
    after = encode_all(encoder, frames(0.6, 440))
    assert encoder.settings["expected_loss"] == 5
    assert encoder.codec is codec  # not reopened: no glitch, the chain of copies goes on
    assert all(redundancy(p) is not None for p in after)
    assert len(before) + len(after) == 20  # 1.2 s in 60 ms packets, not a sample lost


def test_a_new_frame_length_carries_over_the_samples_the_old_codec_had_not_had() -> None:
    encoder = ProfiledOpusEncoder()
    encoder.set_link(60.0)  # thin: 60 ms packets
    source = frames(2.4, 440)
    first = encode_all(encoder, source[:61])  # 1.22 s: 20 packets, 20 ms held back
    encoder.set_link(200.0)  # wider: 20 ms packets
    second = encode_all(encoder, source[61:])
    assert encoder.frame_ms == 20 and len(first) == 20
    assert 2880 * len(first) + 960 * len(second) == 960 * 120  # the 20 ms held went out too
