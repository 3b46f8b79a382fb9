"""The media benchmark's measuring: alignment, one-way delay, reaction times, scenarios."""

from __future__ import annotations

import numpy as np

from siakdesk.bench.media import (
    SCENARIOS,
    capacity_at,
    find_lag,
    first_time,
    one_way_delay,
    realign,
)


def test_find_lag_locates_a_looped_reference_in_a_delayed_noisy_recording() -> None:
    rng = np.random.default_rng(1)
    reference = (rng.standard_normal(16000) * 3000).astype(np.int16)
    looped = np.tile(reference, 4)
    recording = np.concatenate([np.zeros(5000, dtype=np.int16), looped])[:40000]
    recording = recording + (rng.standard_normal(recording.size) * 300).astype(np.int16)
    assert find_lag(recording, reference) == 5000


def test_one_way_delay_from_the_clocks_and_the_lag() -> None:
    # sent from t=100.0; the speaker started at t=100.2 and its sample 0 holds
    # reference sample -0.1 s (lag 0.1 s): played 0.3 s after it was sent
    assert abs(one_way_delay(4800, 48000 * 8, sent_at=100.0, played_at=100.2) - 0.3) < 1e-9
    # the speaker started before the sender: still positive, modulo the loop
    assert abs(one_way_delay(24000, 48000 * 8, sent_at=100.0, played_at=99.9) - 0.4) < 1e-9


def test_first_time_and_capacity_schedule() -> None:
    series = [(19.0, 900.0), (20.5, 700.0), (21.5, 240.0), (22.0, 200.0)]
    assert first_time(series, 20.0, lambda v: v <= 256) == 1.5
    assert first_time(series, 23.0, lambda v: v <= 256) is None
    drop = next(s for s in SCENARIOS if s.name == "drop")
    assert [capacity_at(drop, t) for t in (0, 25, 50)] == [2000, 256, 2000]


def test_every_scenario_of_the_issue_is_there() -> None:
    assert {s.name for s in SCENARIOS} == {"clean", "3g", "edge", "drop", "four", "outage"}


def test_each_loop_is_found_where_the_playout_moved_it() -> None:
    rng = np.random.default_rng(2)
    reference = (rng.standard_normal(8000) * 3000).astype(np.int16)
    # the second loop comes 1200 samples (75 ms at 16 kHz) later: a pause drawn out
    recording = np.concatenate(
        [np.zeros(3000, np.int16), reference, np.zeros(1200, np.int16), reference]
    )
    assert realign(recording, reference, 3000 + 8000, reach=4000) == 3000 + 8000 + 1200
    assert realign(recording, reference, 3000, reach=4000) == 3000
