"""The look: Fusion style, a light palette close to Hyper-V Manager's, and the bundled font.

The same theme makes the documentation screenshots reproducible on any machine.
"""

from __future__ import annotations

from PySide6.QtGui import QColor, QFont, QFontDatabase, QPalette
from PySide6.QtWidgets import QApplication

from hvmanager.ui.resources import font_files

FONT_FAMILY = "Open Sans"
FONT_POINT_SIZE = 9


def _palette() -> QPalette:
    palette = QPalette()
    role = QPalette.ColorRole
    palette.setColor(role.Window, QColor("#f3f3f3"))
    palette.setColor(role.WindowText, QColor("#1b1b1b"))
    palette.setColor(role.Base, QColor("#ffffff"))
    palette.setColor(role.AlternateBase, QColor("#f7f9fc"))
    palette.setColor(role.Text, QColor("#1b1b1b"))
    palette.setColor(role.Button, QColor("#f0f0f0"))
    palette.setColor(role.ButtonText, QColor("#1b1b1b"))
    palette.setColor(role.Highlight, QColor("#cce4f7"))
    palette.setColor(role.HighlightedText, QColor("#000000"))
    palette.setColor(role.Link, QColor("#0066cc"))
    palette.setColor(role.ToolTipBase, QColor("#ffffe1"))
    palette.setColor(role.ToolTipText, QColor("#1b1b1b"))
    disabled = QPalette.ColorGroup.Disabled
    for grey in (role.WindowText, role.Text, role.ButtonText):
        palette.setColor(disabled, grey, QColor("#a0a0a0"))
    return palette


def apply_theme(app: QApplication) -> None:
    """Fusion style, the palette, and the bundled font as the application font."""
    app.setStyle("Fusion")
    app.setPalette(_palette())
    for path in font_files():
        QFontDatabase.addApplicationFont(str(path))
    font = QFont(FONT_FAMILY, FONT_POINT_SIZE)
    font.setHintingPreference(QFont.HintingPreference.PreferNoHinting)
    app.setFont(font)
