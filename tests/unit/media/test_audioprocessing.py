"""Echo cancellation on a simulated echo path: what the speaker plays comes back 50 ms later."""

from __future__ import annotations

import numpy as np

from siakdesk.media.audiomixer import AudioMixer
from siakdesk.media.audioprocessing import AudioProcessor, ProcessedMicrophone
from siakdesk.media.synthetic import AUDIO_FRAME_SAMPLES, AUDIO_RATE, ToneTrack


def speech_like(seconds: int, seed: int = 1) -> np.ndarray:
    """Noise switched on and off in 200 ms syllables (what a remote office sounds like)."""
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal(AUDIO_RATE * seconds)
    syllables = np.repeat((rng.random(seconds * 5) > 0.3).astype(float), AUDIO_RATE // 5)
    return (noise * syllables[: noise.size] * 6000).astype(np.int16)


def test_echo_of_the_speaker_is_removed_from_the_microphone() -> None:
    processor = AudioProcessor()
    played = speech_like(8)
    delay = AUDIO_RATE * 50 // 1000
    echo = np.zeros_like(played)
    echo[delay:] = (played[:-delay] * 0.5).astype(np.int16)  # room: 50 ms later, half as loud
    cleaned = np.zeros_like(echo)
    for start in range(0, played.size, AUDIO_FRAME_SAMPLES):
        block = slice(start, start + AUDIO_FRAME_SAMPLES)
        processor.process_playback(played[block])
        cleaned[block] = processor.process_capture(echo[block])
    last = slice(-2 * AUDIO_RATE, None)  # once the canceller has converged
    before = np.mean(echo[last].astype(float) ** 2)
    after = np.mean(cleaned[last].astype(float) ** 2) + 1e-9
    reduction_db = 10 * np.log10(before / after)
    print(f"echo reduced by {reduction_db:.1f} dB")
    assert reduction_db > 30


def test_mixer_feeds_what_it_plays_to_the_canceller() -> None:
    heard: list[np.ndarray] = []
    mixer = AudioMixer(None, on_played=heard.append)
    block = mixer.pull(AUDIO_FRAME_SAMPLES)
    assert len(heard) == 1 and heard[0] is block


async def test_processed_microphone_keeps_the_frame_format() -> None:
    microphone = ProcessedMicrophone(ToneTrack("Minas"), AudioProcessor())
    frames = [await microphone.recv() for _ in range(3)]
    microphone.stop()
    assert [f.samples for f in frames] == [AUDIO_FRAME_SAMPLES] * 3
    assert [f.pts for f in frames] == [0, 960, 1920]
    assert frames[0].sample_rate == AUDIO_RATE and frames[0].layout.name == "mono"
