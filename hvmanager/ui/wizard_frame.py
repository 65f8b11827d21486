"""The frame Hyper-V's wizards share (New Virtual Machine, New and Edit Virtual Hard Disk).

``PageListWizard`` gives a ``QWizard`` Hyper-V's look (modern style, Finish offered on early pages,
``< Previous`` / ``Next >`` buttons, a 48-pixel logo) and the list of its pages on the left: the
current page's title is bold, and a click jumps to any page up to ``furthest_reachable`` (through
Next and Back, so pages initialise as usual). Page ids are the rows of the list; the last row is
the Summary.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Qt
from PySide6.QtGui import QFont, QFontMetrics
from PySide6.QtWidgets import QAbstractItemView, QFrame, QListWidget, QListWidgetItem, QStyle, QWizard

SIDE_PANEL_WIDTH = 170


class PageListWizard(QWizard):
    """A Hyper-V wizard with its page list; subclasses say how far the list may jump."""

    page_list: QListWidget

    def setup_frame(self, logo: QStyle.StandardPixmap) -> None:
        """Hyper-V's style, button texts and the standard icon ``logo`` as the logo."""
        self.setWizardStyle(QWizard.WizardStyle.ModernStyle)
        self.setOption(QWizard.WizardOption.HaveFinishButtonOnEarlyPages, True)
        self.setOption(QWizard.WizardOption.NoBackButtonOnStartPage, False)
        self.setButtonText(QWizard.WizardButton.BackButton, "< &Previous")
        self.setButtonText(QWizard.WizardButton.NextButton, "&Next >")
        self.setButtonText(QWizard.WizardButton.FinishButton, "&Finish")
        self.setButtonText(QWizard.WizardButton.CancelButton, "Cancel")
        icon = self.style().standardIcon(logo)
        self.setPixmap(QWizard.WizardPixmap.LogoPixmap, icon.pixmap(48, 48))

    def add_page_list(self, titles: Sequence[str]) -> None:
        """The list of page ``titles`` on the left (wide enough for the longest one in bold)."""
        self.page_list = QListWidget()
        self.page_list.setObjectName("pageList")
        self.page_list.setFrameShape(QFrame.Shape.NoFrame)
        self.page_list.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.page_list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.page_list.setSpacing(2)
        for title in titles:
            self.page_list.addItem(QListWidgetItem(title))
        bold = QFont(self.page_list.font())
        bold.setBold(True)
        widest = max(QFontMetrics(bold).horizontalAdvance(title) for title in titles)
        self.page_list.setFixedWidth(max(SIDE_PANEL_WIDTH, widest + 24))
        self.page_list.itemClicked.connect(self._page_item_clicked)
        self.setSideWidget(self.page_list)

    def furthest_reachable(self) -> int:
        """The last page the page list can jump to: every page before it is complete."""
        ids = self.pageIds()
        for page_id in ids:
            page = self.page(page_id)
            if page is not None and not page.isComplete():
                return page_id
        return ids[-1] if ids else 0

    def page_list_locked(self) -> bool:
        """Whether the page list takes no clicks now (e.g. while an operation runs)."""
        return False

    def jump_to(self, page_id: int) -> bool:
        """Go to a page through Next/Back (so pages initialise as usual); False if out of reach."""
        if page_id > self.furthest_reachable():
            return False
        while self.currentId() < page_id:
            before = self.currentId()
            self.next()
            if self.currentId() == before:
                break
        while self.currentId() > page_id:
            self.back()
        return self.currentId() == page_id

    def update_page_list(self) -> None:
        """Follow the pages' titles (the Summary's row keeps its own), bold the current page's and
        enable the rows up to the furthest reachable page."""
        reachable = -1 if self.page_list_locked() else self.furthest_reachable()
        current = self.currentId()
        for row in range(self.page_list.count()):
            item = self.page_list.item(row)
            page = self.page(row)
            if row < self.page_list.count() - 1 and page is not None and item.text() != page.title():
                item.setText(page.title())
            font = item.font()
            font.setBold(row == current)
            item.setFont(font)
            flags = Qt.ItemFlag.ItemIsSelectable
            if row <= reachable:
                flags |= Qt.ItemFlag.ItemIsEnabled
            item.setFlags(flags)
        if current >= 0:
            self.page_list.setCurrentRow(current)

    def _page_item_clicked(self, item: QListWidgetItem) -> None:
        self.jump_to(self.page_list.row(item))
        self.update_page_list()
