"""The server's per-subscriber video decision on scripted estimates (Jitsi's last-N, in little)."""

from __future__ import annotations

from siakdesk.server.downlink import Candidate, Downlink, plan_videos

OFFICES = [
    Candidate("minas", kbps=300, spoke_at=50.0, joined=0),  # spoke last: the active speaker
    Candidate("kandis", kbps=300, spoke_at=40.0, joined=1),
    Candidate("dayun", kbps=300, spoke_at=None, joined=2),
    Candidate("siak", kbps=300, spoke_at=None, joined=3),
]
EVERYONE = {c.publisher_id for c in OFFICES}


def test_everything_fits_a_good_link() -> None:
    chosen, next_up = plan_videos(2000, OFFICES, EVERYONE, add_allowed=False)
    assert chosen == EVERYONE and next_up is None


def test_a_thin_link_keeps_the_active_speaker_first() -> None:
    chosen, next_up = plan_videos(650, OFFICES, EVERYONE, add_allowed=False)
    assert chosen == {"minas", "kandis"} and next_up == "dayun"
    chosen, _ = plan_videos(320, OFFICES, EVERYONE, add_allowed=False)
    assert chosen == {"minas"}
    chosen, _ = plan_videos(40, OFFICES, EVERYONE, add_allowed=False)
    assert chosen == set()  # audio only


def test_a_new_speaker_takes_a_quieter_ones_place_without_waiting() -> None:
    speaking = [Candidate("dayun", kbps=300, spoke_at=60.0, joined=2), *OFFICES[:2]]
    chosen, _ = plan_videos(650, speaking, {"minas", "kandis"}, add_allowed=False)
    assert chosen == {"dayun", "minas"}


def test_one_more_only_when_allowed_and_with_margin() -> None:
    chosen, _ = plan_videos(700, OFFICES, {"minas"}, add_allowed=False)
    assert chosen == {"minas"}
    chosen, _ = plan_videos(700, OFFICES, {"minas"}, add_allowed=True)  # 300 + 300 * 1.25 <= 700
    assert chosen == {"minas", "kandis"}
    chosen, _ = plan_videos(2000, OFFICES, {"minas"}, add_allowed=True)
    assert len(chosen) == 2  # one at a time


def test_the_decision_follows_the_subscribers_estimate_with_hysteresis() -> None:
    downlink = Downlink()
    now = 0.0

    def step(estimate: float, seconds: float) -> set[str]:
        nonlocal now
        chosen: set[str] = set()
        end = now + seconds
        while now < end:
            downlink.estimate.kbps = estimate
            chosen = downlink.steer(audio_kbps=80, candidates=OFFICES, now=now)
            now += 0.5
        return chosen

    assert step(2000, 2) == EVERYONE
    assert step(500, 0.5) == {"minas"}  # 500 - 80 for audio: one video, at once
    assert step(2000, 4) == {"minas"}  # room again, but not for 5 s yet
    assert step(2000, 2) == {"minas", "kandis"}
    assert step(2000, 12) == EVERYONE  # one more every 5 s
    # a link that says no right after each try: the tries space out
    tries = 0
    current = step(500, 1)
    for _ in range(120):  # a minute
        chosen = step(2000, 0.5)
        if len(chosen) > len(current):
            tries += 1
            chosen = step(500, 0.5)
        current = chosen
    assert tries <= 3, tries
