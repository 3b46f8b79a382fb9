"""The agenda panel: the items in order with their state, the current one with its timer,
private notes per item, and the host's controls (template, next, reorder, attendance)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QGridLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from siakdesk.core.agenda import AgendaClient

MARKS = {"done": "✓", "current": "▶", "pending": "•"}


def _minutes(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 60:02d}:{whole % 60:02d}"


class AgendaPanel(QWidget):
    #: "template", "next", "up", "down", "export"
    actionRequested = Signal(str, str)  # action, item id

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.client: AgendaClient | None = None
        self.current = QLabel(self)
        self.current.setWordWrap(True)
        self.current.setObjectName("agendaCurrent")
        self.current.setStyleSheet("#agendaCurrent { font-weight: bold; padding: 4px; }")
        self.list = QListWidget(self)
        self.notes_label = QLabel(self)
        self.notes = QPlainTextEdit(self)
        self.notes.setMaximumHeight(90)
        self.template_button = QPushButton(self)
        self.next_button = QPushButton(self)
        self.up_button = QPushButton(self)
        self.down_button = QPushButton(self)
        self.export_button = QPushButton(self)
        self.host_box = QWidget(self)
        host = QGridLayout(self.host_box)
        host.setContentsMargins(0, 0, 0, 0)
        host.addWidget(self.next_button, 0, 0, 1, 2)
        host.addWidget(self.up_button, 1, 0)
        host.addWidget(self.down_button, 1, 1)
        host.addWidget(self.template_button, 2, 0)
        host.addWidget(self.export_button, 2, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.current)
        layout.addWidget(self.list, 1)
        layout.addWidget(self.host_box)
        layout.addWidget(self.notes_label)
        layout.addWidget(self.notes)
        self.template_button.clicked.connect(lambda: self.actionRequested.emit("template", ""))
        self.next_button.clicked.connect(lambda: self.actionRequested.emit("next", ""))
        self.up_button.clicked.connect(lambda: self.actionRequested.emit("up", self.selected_id))
        self.down_button.clicked.connect(
            lambda: self.actionRequested.emit("down", self.selected_id)
        )
        self.export_button.clicked.connect(lambda: self.actionRequested.emit("export", ""))
        self.list.currentItemChanged.connect(self._show_note)
        self.notes.textChanged.connect(self._save_note)
        self._note_item = ""
        self.retranslate()
        self.set_client(None)

    def retranslate(self) -> None:
        self.template_button.setText(self.tr("Roll-call template"))
        self.template_button.setToolTip(
            self.tr("Replace the agenda with one report per kecamatan of Siak")
        )
        self.next_button.setText(self.tr("Next item"))
        self.up_button.setText(self.tr("Move up"))
        self.down_button.setText(self.tr("Move down"))
        self.export_button.setText(self.tr("Export attendance..."))
        self.notes_label.setText(self.tr("My notes (kept on this PC only)"))
        self.tick()

    @property
    def selected_id(self) -> str:
        item = self.list.currentItem()
        return str(item.data(Qt.ItemDataRole.UserRole)) if item is not None else ""

    def set_client(self, client: AgendaClient | None) -> None:
        self.client = client
        if client is not None:
            client.add_listener(self.refresh)
        self.refresh()

    def refresh(self) -> None:
        client = self.client
        selected = self.selected_id
        self.list.blockSignals(True)
        self.list.clear()
        items = client.items if client is not None else []
        for agenda_item in items:
            office = agenda_item.presenter_office
            office = f" · {office}" if office and office not in agenda_item.title else ""
            text = self.tr("{mark} {title}{office} ({minutes} min)").format(
                mark=MARKS[agenda_item.status],
                title=agenda_item.title,
                office=office,
                minutes=agenda_item.planned_minutes,
            )
            row = QListWidgetItem(text)
            row.setData(Qt.ItemDataRole.UserRole, agenda_item.id)
            if agenda_item.status == "current":
                font = row.font()
                font.setBold(True)
                row.setFont(font)
            self.list.addItem(row)
            if agenda_item.id == selected:
                self.list.setCurrentItem(row)
        self.list.blockSignals(False)
        is_host = client is not None and client.is_host
        self.host_box.setVisible(is_host)
        self.notes.setEnabled(client is not None and bool(self.selected_id))
        self.tick()

    def tick(self) -> None:
        """The current item and its timer (the main window calls this every second or so)."""
        client = self.client
        current = client.current if client is not None else None
        if client is None or not client.items:
            self.current.setText(self.tr("No agenda yet"))
        elif current is None:
            self.current.setText(self.tr("No item in progress"))
        else:
            elapsed = client.elapsed() or 0.0
            text = self.tr("Now: {title} · {elapsed} of {planned} min").format(
                title=current.title,
                elapsed=_minutes(elapsed),
                planned=current.planned_minutes,
            )
            if elapsed > current.planned_minutes * 60:
                text += " · " + self.tr("over time")
            self.current.setText(text)

    def _show_note(self) -> None:
        self._note_item = self.selected_id
        client = self.client
        self.notes.blockSignals(True)
        self.notes.setPlainText(client.note(self._note_item) if client and self._note_item else "")
        self.notes.blockSignals(False)
        self.notes.setEnabled(client is not None and bool(self._note_item))

    def _save_note(self) -> None:
        if self.client is not None and self._note_item:
            self.client.set_note(self._note_item, self.notes.toPlainText())


def write_attendance(path: Path, csv_text: str) -> None:
    """Save the CSV with a BOM, so that Excel on the office PCs opens it as UTF-8."""
    path.write_text(csv_text, encoding="utf-8-sig")
