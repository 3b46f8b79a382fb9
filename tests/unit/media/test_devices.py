"""The camera track when the camera comes and goes; a PC's missing devices."""

from __future__ import annotations

import numpy as np

from siakdesk.media.devices import VIDEO_SIZE, CameraTrack, DeviceProvider


class FakeCapture:
    """The edge of the world: a USB camera that can be unplugged.

    It has ``cv2.VideoCapture``'s interface without subclassing it: a Python subclass of
    OpenCV 5's VideoCapture with these methods overridden aborted the interpreter here.
    """

    plugged = True

    def __init__(self, index: int) -> None:
        self.index = index

    def isOpened(self) -> bool:  # OpenCV's name
        return FakeCapture.plugged

    def read(self) -> tuple[bool, np.ndarray | None]:
        if not FakeCapture.plugged:
            return False, None
        bgr = np.zeros((VIDEO_SIZE[1], VIDEO_SIZE[0], 3), dtype=np.uint8)
        bgr[:] = (255, 0, 0)  # blue in BGR
        return True, bgr

    def set(self, prop: int, value: float) -> bool:
        return True

    def release(self) -> None:
        pass


async def test_camera_that_disappears_shows_a_placeholder_and_comes_back() -> None:
    FakeCapture.plugged = True
    camera = CameraTrack(0, reopen_interval=0.05, open_capture=FakeCapture)
    try:
        frame = await camera.recv()
        picture = frame.to_ndarray(format="rgb24")
        assert camera.available and tuple(picture[10, 10]) == (0, 0, 255)
        assert (frame.width, frame.height) == VIDEO_SIZE

        FakeCapture.plugged = False  # the cable is pulled
        frame = await camera.recv()
        assert not camera.available
        assert tuple(frame.to_ndarray(format="rgb24")[10, 10]) != (0, 0, 255)  # the placeholder
        assert (frame.width, frame.height) == VIDEO_SIZE  # the stream goes on, same size

        FakeCapture.plugged = True  # plugged back in: reopened on a later frame
        for _ in range(5):
            frame = await camera.recv()
            if camera.available:
                break
        assert camera.available
        assert tuple(frame.to_ndarray(format="rgb24")[10, 10]) == (0, 0, 255)
    finally:
        camera.stop()


def test_missing_camera_is_none_not_an_error() -> None:
    devices = DeviceProvider(camera=97)  # no such camera on any machine
    assert devices.open_camera() is None
