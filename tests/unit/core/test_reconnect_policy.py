"""The reconnect backoff: immediate first try, doubling, capped, jittered."""

from __future__ import annotations

import random

from siakdesk.core.meetingsession import ReconnectPolicy


def test_first_attempt_is_immediate_then_doubles_to_the_cap() -> None:
    policy = ReconnectPolicy(first_delay=1.0, max_delay=15.0)
    rng = random.Random(1)
    assert policy.delay(1, rng) == 0.0
    for attempt, ceiling in [(2, 1.0), (3, 2.0), (4, 4.0), (5, 8.0), (6, 15.0), (30, 15.0)]:
        delays = [policy.delay(attempt, rng) for _ in range(200)]
        assert max(delays) <= ceiling
        assert min(delays) >= ceiling / 2  # jitter takes at most half away
        assert max(delays) - min(delays) > ceiling / 10  # and it does spread the offices
