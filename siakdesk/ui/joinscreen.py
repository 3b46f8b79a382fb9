"""Where a PC without a configured meeting asks for one, and remembers the answer."""

from __future__ import annotations

import dataclasses

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QFormLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from siakdesk.core.signaling import ServerEndpoint


@dataclasses.dataclass(frozen=True)
class JoinRequest:
    server_url: str
    room: str
    passcode: str
    display_name: str
    office: str


class JoinScreen(QWidget):
    joinRequested = Signal(object)  # JoinRequest
    devicesRequested = Signal()  # check camera and microphone before joining

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = QLabel(self)
        self.title.setObjectName("title")
        self.title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.server = QLineEdit(self)
        self.room = QLineEdit(self)
        self.passcode = QLineEdit(self)
        self.passcode.setEchoMode(QLineEdit.EchoMode.Password)
        self.name = QLineEdit(self)
        self.office = QLineEdit(self)
        self.error = QLabel(self)
        self.error.setObjectName("error")
        self.error.setWordWrap(True)
        self.join_button = QPushButton(self)
        self.join_button.setDefault(True)
        self.join_button.setMinimumHeight(40)
        self.devices_button = QPushButton(self)

        self.form = QFormLayout()
        self.form.setLabelAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.labels = [QLabel(self) for _ in range(5)]
        for label, field in zip(
            self.labels,
            (self.server, self.room, self.passcode, self.name, self.office),
            strict=True,
        ):
            label.setBuddy(field)
            self.form.addRow(label, field)

        for field in (self.server, self.room, self.passcode, self.name, self.office):
            field.setMinimumWidth(320)
            field.setMinimumHeight(30)
        title_font = self.title.font()
        title_font.setPointSizeF(title_font.pointSizeF() * 1.6)
        title_font.setBold(True)
        self.title.setFont(title_font)
        self.error.setStyleSheet("color: #b00020;")

        box = QWidget(self)
        box.setMinimumWidth(480)
        box.setMaximumWidth(560)
        inner = QVBoxLayout(box)
        inner.addWidget(self.title)
        inner.addLayout(self.form)
        inner.addWidget(self.error)
        inner.addWidget(self.join_button)
        inner.addWidget(self.devices_button)
        layout = QVBoxLayout(self)
        layout.addStretch(1)
        layout.addWidget(box, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addStretch(2)
        self._connect_signals()
        self.retranslate()

    def _connect_signals(self) -> None:
        self.join_button.clicked.connect(self.on_join_clicked)
        self.devices_button.clicked.connect(self.devicesRequested)
        for field in (self.server, self.room, self.passcode, self.name, self.office):
            field.returnPressed.connect(self.on_join_clicked)

    def retranslate(self) -> None:
        self.title.setText(self.tr("Siak Regency online meeting"))
        texts = (
            self.tr("&Server address"),
            self.tr("&Room"),
            self.tr("&Passcode"),
            self.tr("Your &name"),
            self.tr("&Office"),
        )
        for label, text in zip(self.labels, texts, strict=True):
            label.setText(text)
        self.server.setPlaceholderText("https://rapat.siakkab.go.id:8443")
        self.office.setPlaceholderText(self.tr("e.g. Kandis District"))
        self.join_button.setText(self.tr("Join the meeting"))
        self.devices_button.setText(self.tr("Check camera and microphone..."))

    def fill(self, server_url: str, room: str, passcode: str, name: str, office: str) -> None:
        self.server.setText(server_url)
        self.room.setText(room)
        self.passcode.setText(passcode)
        self.name.setText(name)
        self.office.setText(office)

    def show_error(self, message: str) -> None:
        self.error.setText(message)
        self.set_busy(False)

    def set_busy(self, busy: bool) -> None:
        self.join_button.setEnabled(not busy)
        if busy:
            self.error.clear()

    def on_join_clicked(self) -> None:
        request = JoinRequest(
            server_url=self.server.text().strip(),
            room=self.room.text().strip() or "siak",
            passcode=self.passcode.text(),
            display_name=self.name.text().strip(),
            office=self.office.text().strip(),
        )
        if not request.display_name and not request.office:
            self.show_error(self.tr("Type your name or your office."))
            self.name.setFocus()
            return
        try:
            ServerEndpoint(request.server_url)
        except ValueError:
            self.show_error(self.tr("The server address must look like https://host:port."))
            self.server.setFocus()
            return
        self.set_busy(True)
        self.joinRequested.emit(request)
