"""The PySide6 desktop application (the desktop-app issue)."""
