"""The chat panel: the room's messages in the server's order, own unsent ones marked, a box to type.

Backed by :class:`~siakdesk.core.chat.ChatClient`: typing works with the link
down (the message waits in the outbox, shown as *sending*), and the unread count
shows on the dock's title while the panel is hidden.
"""

from __future__ import annotations

import datetime

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from siakdesk.core.chat import ChatClient
from siakdesk.core.protocol import MAX_CHAT_CHARS


def _clock(epoch: float) -> str:
    return datetime.datetime.fromtimestamp(epoch).strftime("%H:%M")


class ChatPanel(QWidget):
    sendRequested = Signal(str)
    unreadChanged = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.client: ChatClient | None = None
        self.list = QListWidget(self)
        self.list.setWordWrap(True)
        self.list.setObjectName("chatList")
        self.list.setSpacing(3)
        self.input = QLineEdit(self)
        self.input.setMaxLength(MAX_CHAT_CHARS)
        self.send_button = QPushButton(self)
        self.error = QLabel(self)
        self.error.setStyleSheet("color: #b00020;")
        self.error.hide()
        row = QHBoxLayout()
        row.addWidget(self.input, 1)
        row.addWidget(self.send_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.list, 1)
        layout.addWidget(self.error)
        layout.addLayout(row)
        self.input.returnPressed.connect(self._submit)
        self.send_button.clicked.connect(self._submit)
        self.retranslate()
        self.set_client(None)

    def retranslate(self) -> None:
        self.input.setPlaceholderText(self.tr("Type a message"))
        self.send_button.setText(self.tr("Send"))

    def set_client(self, client: ChatClient | None) -> None:
        self.client = client
        enabled = client is not None
        self.input.setEnabled(enabled)
        self.send_button.setEnabled(enabled)
        if client is not None:
            client.add_listener(self.refresh)
        self.refresh()

    def set_reading(self, reading: bool) -> None:
        """The panel is visible to the user: what arrives is read."""
        if self.client is not None:
            self.client.reading = reading
            if reading:
                self.client.mark_read()

    def show_error(self, text: str) -> None:
        self.error.setText(text)
        self.error.setVisible(bool(text))

    def _submit(self) -> None:
        text = self.input.text()
        if not text.strip() or self.client is None:
            return
        self.show_error("")
        self.sendRequested.emit(text)
        self.input.clear()

    def refresh(self) -> None:
        self.list.clear()
        client = self.client
        if client is None:
            self.unreadChanged.emit(0)
            return
        me = client.session.participant_id
        for message in client.log.messages:
            who = self.tr("You") if message.participant_id == me else message.name
            office = f" · {message.office}" if message.office else ""
            item = QListWidgetItem(f"{who}{office}  {_clock(message.ts)}\n{message.text}")
            item.setData(Qt.ItemDataRole.UserRole, message.id)
            self.list.addItem(item)
        for pending in client.log.pending:
            text = self.tr("You · sending...") + f"\n{pending.text}"
            item = QListWidgetItem(text)
            item.setData(Qt.ItemDataRole.UserRole, pending.id)
            item.setForeground(QBrush(QColor("#777777")))
            self.list.addItem(item)
        self.list.scrollToBottom()
        self.unreadChanged.emit(client.unread)
