"""Turns a Qt-free :class:`MeetingSession`'s events into Qt signals.

The only place where core events cross into Qt: widgets connect to these
signals and never see the session's listener API.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from siakdesk.core.events import (
    ParticipantJoined,
    ParticipantLeft,
    ParticipantUpdated,
    ReconnectAttempt,
    ServerError,
    SessionEvent,
    StateChanged,
    TrackAdded,
    TrackRemoved,
    VideoPaused,
)
from siakdesk.core.meetingsession import MeetingSession


class SessionAdapter(QObject):
    stateChanged = Signal(object)  # StateChanged
    participantJoined = Signal(object)  # ParticipantInfo
    participantUpdated = Signal(object)  # ParticipantInfo
    participantLeft = Signal(object, str)  # ParticipantInfo, reason
    trackAdded = Signal(object)  # RemoteTrack
    trackRemoved = Signal(object)  # RemoteTrack
    serverError = Signal(str, str)  # code, message
    reconnectAttempt = Signal(int, str)  # attempt, reason

    def __init__(self, session: MeetingSession, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self._remove = session.add_listener(self._on_event)

    def detach(self) -> None:
        self._remove()

    def _on_event(self, event: SessionEvent) -> None:
        if isinstance(event, StateChanged):
            self.stateChanged.emit(event)
        elif isinstance(event, ParticipantJoined):
            self.participantJoined.emit(event.participant)
        elif isinstance(event, ParticipantUpdated | VideoPaused):
            self.participantUpdated.emit(event.participant)  # the tile redraws either way
        elif isinstance(event, ParticipantLeft):
            self.participantLeft.emit(event.participant, event.reason)
        elif isinstance(event, TrackAdded):
            self.trackAdded.emit(event.track)
        elif isinstance(event, TrackRemoved):
            self.trackRemoved.emit(event.track)
        elif isinstance(event, ServerError):
            self.serverError.emit(event.code, event.message)
        elif isinstance(event, ReconnectAttempt):
            self.reconnectAttempt.emit(event.attempt, event.reason)
