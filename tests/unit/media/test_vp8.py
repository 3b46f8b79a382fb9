from __future__ import annotations

import pytest

from siakdesk.media.vp8 import is_vp8_keyframe, vp8_keyframe_size
from tests.mediasamples import vp8_frames


def test_vp8_keyframe_detection_on_real_frames() -> None:
    frames = vp8_frames(4)
    assert [is_vp8_keyframe(f) for f in frames] == [True, False, False, False]
    assert vp8_keyframe_size(frames[0]) == (320, 180)
    with pytest.raises(ValueError):
        vp8_keyframe_size(frames[1])
    assert not is_vp8_keyframe(b"")
