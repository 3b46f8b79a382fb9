from __future__ import annotations

from siakdesk.core.events import TRANSITIONS, SessionState


def test_every_state_has_transitions_and_left_is_final() -> None:
    assert set(TRANSITIONS) == set(SessionState)
    assert TRANSITIONS[SessionState.LEFT] == frozenset()
    for state, following in TRANSITIONS.items():
        assert state not in following
        if state is not SessionState.LEFT:
            assert SessionState.LEFT in following, f"{state} must be able to leave"
