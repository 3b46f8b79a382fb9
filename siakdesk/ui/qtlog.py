"""Qt's own messages go to Python logging, so they follow the app's log level."""

from __future__ import annotations

import logging

from PySide6.QtCore import QMessageLogContext, QtMsgType, qInstallMessageHandler

logger = logging.getLogger("qt")

_LEVELS = {
    QtMsgType.QtDebugMsg: logging.DEBUG,
    QtMsgType.QtInfoMsg: logging.INFO,
    QtMsgType.QtWarningMsg: logging.WARNING,
    QtMsgType.QtCriticalMsg: logging.ERROR,
    QtMsgType.QtFatalMsg: logging.CRITICAL,
}
# Harmless messages of the offscreen platform (demo screenshots, tests)
_OFFSCREEN_NOISE = ("This plugin does not support propagateSizeHints()",)


def _handler(kind: QtMsgType, context: QMessageLogContext, message: str) -> None:
    level = _LEVELS.get(kind, logging.WARNING)
    if message in _OFFSCREEN_NOISE:
        level = logging.DEBUG
    logger.log(level, "%s", message)


def route_qt_messages() -> None:
    qInstallMessageHandler(_handler)
