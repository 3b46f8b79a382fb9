from __future__ import annotations

import wave
from pathlib import Path

import av
import numpy as np
import pytest
from aiortc.codecs.vpx import Vp8Decoder, Vp8Encoder, VpxPayloadDescriptor
from aiortc.jitterbuffer import JitterFrame

from siakdesk.media.synthetic import (
    AUDIO_FRAME_SAMPLES,
    FileAudioTrack,
    SyntheticVideoTrack,
    ToneTrack,
    frame_identity_matches,
    identity_of,
    load_audio,
    render_card,
)
from siakdesk.media.wavrecorder import WavRecorder

NAMES = ["Minas", "Kandis", "Kerinci Kanan", "Sungai Apit", "Siak", "Tualang"]


def test_identities_differ_between_offices() -> None:
    identities = [identity_of(n) for n in NAMES]
    assert len({i.code for i in identities}) == len(NAMES)
    assert len({i.colour for i in identities}) == len(NAMES)
    assert identity_of("Minas") == identity_of("Minas")


async def test_identity_survives_vp8_and_tells_offices_apart() -> None:
    track = SyntheticVideoTrack("Kerinci Kanan", 320, 180, fps=30)
    encoder, decoder = Vp8Encoder(), Vp8Decoder()
    decoded = []
    for _ in range(4):
        frame = await track.recv()
        payloads, timestamp = encoder.encode(frame)
        # depacketize what the encoder packetized: strip the VP8 payload descriptors
        raw = b"".join(VpxPayloadDescriptor.parse(p)[1] for p in payloads)
        decoded.extend(decoder.decode(JitterFrame(raw, timestamp)))
    track.stop()
    assert decoded
    for picture in decoded:
        assert isinstance(picture, av.VideoFrame)
        image = picture.to_ndarray(format="rgb24")
        assert frame_identity_matches(image, "Kerinci Kanan")
        for other in NAMES:
            if other != "Kerinci Kanan":
                assert not frame_identity_matches(image, other), other


async def test_a_noisy_camera_costs_vp8_what_a_webcam_would_and_keeps_its_identity() -> None:
    costs = {}
    for noise in (0, 12):
        track = SyntheticVideoTrack("Kandis", 320, 180, fps=30, noise=noise)
        encoder, decoder = Vp8Encoder(), Vp8Decoder()
        sent, pictures = 0, []
        for _ in range(6):
            payloads, timestamp = encoder.encode(await track.recv())
            sent += sum(map(len, payloads))
            raw = b"".join(VpxPayloadDescriptor.parse(p)[1] for p in payloads)
            pictures.extend(decoder.decode(JitterFrame(raw, timestamp)))
        track.stop()
        costs[noise] = sent
        image = pictures[-1].to_ndarray(format="rgb24")  # type: ignore[attr-defined]
        assert frame_identity_matches(image, "Kandis")
    assert costs[12] > 3 * costs[0], costs
    with pytest.raises(ValueError):
        SyntheticVideoTrack("Kandis", noise=65)


def test_card_is_the_requested_size() -> None:
    assert render_card("Minas", 640, 360).shape == (360, 640, 3)
    with pytest.raises(ValueError):
        SyntheticVideoTrack("Minas", 63, 48)


async def test_tone_track_frames() -> None:
    track = ToneTrack("Minas")
    frames = [await track.recv() for _ in range(3)]
    track.stop()
    for index, frame in enumerate(frames):
        assert frame.samples == AUDIO_FRAME_SAMPLES
        assert frame.sample_rate == 48000
        assert frame.layout.name == "mono" and frame.format.name == "s16"
        assert frame.pts == index * AUDIO_FRAME_SAMPLES
    samples = frames[0].to_ndarray()
    assert 6000 < np.abs(samples).max() < 9000  # about -12 dBFS


def write_wav(path: Path, rate: int, seconds: float) -> None:
    t = np.arange(int(rate * seconds)) / rate
    data = (np.sin(2 * np.pi * 440 * t) * 10000).astype(np.int16)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(data.tobytes())


async def test_file_track_resamples_to_48k(tmp_path: Path) -> None:
    path = tmp_path / "speech.wav"
    write_wav(path, 16000, 0.5)
    samples = load_audio(str(path))
    assert abs(samples.size - 24000) < 200
    track = FileAudioTrack(str(path))
    frame = await track.recv()
    track.stop()
    assert frame.samples == AUDIO_FRAME_SAMPLES and frame.sample_rate == 48000


def test_unreadable_audio_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.wav"
    path.write_bytes(b"RIFF not really")
    with pytest.raises(ValueError, match=r"broken\.wav"):
        load_audio(str(path))


def test_wav_recorder_writes_48k_mono(tmp_path: Path) -> None:
    recorder = WavRecorder(tmp_path / "Kandis.wav")
    stereo = np.zeros((1, 960 * 2), dtype=np.int16)
    for pts in range(0, 960 * 10, 960):
        frame = av.AudioFrame.from_ndarray(stereo, format="s16", layout="stereo")
        frame.sample_rate = 48000
        frame.pts = pts
        recorder.write(frame)
    recorder.close()
    recorder.close()
    with wave.open(str(tmp_path / "Kandis.wav")) as result:
        assert (result.getframerate(), result.getnchannels(), result.getsampwidth()) == (
            48000,
            1,
            2,
        )
        assert abs(result.getnframes() - 9600) <= 960
