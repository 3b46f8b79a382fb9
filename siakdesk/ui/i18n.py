"""Qt translations: Bahasa Indonesia by default, English as the second language.

Source strings in the code are English; ``resources/translations/siakdesk_id.qm``
turns them into Indonesian. English needs no file.
"""

from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtCore import QCoreApplication, QTranslator

LANGUAGES = ("id", "en")


def translations_dir() -> Path:
    frozen = getattr(sys, "_MEIPASS", None)  # PyInstaller puts resources next to the code
    base = Path(frozen) if frozen else Path(__file__).resolve().parents[2]
    return base / "resources" / "translations"


def install_translator(app: QCoreApplication, language: str) -> QTranslator | None:
    """Translate ``app`` into ``language``; returns the translator (keep it alive) or None."""
    if language not in LANGUAGES:
        raise ValueError(f"language must be one of {LANGUAGES}")
    if language == "en":
        return None
    translator = QTranslator(app)
    path = translations_dir() / f"siakdesk_{language}.qm"
    if not translator.load(str(path)):
        raise FileNotFoundError(f"translation {path} is missing: run scripts/dev translations")
    app.installTranslator(translator)
    return translator
