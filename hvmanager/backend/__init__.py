"""The Qt-free core of hvmanager: libvirt, QEMU tools and host facts.

Modules here never import PySide6, qasync or pyqtgraph. Pure-data modules (``models``, ``limits``,
``settings``) also never import libvirt, so that the views layer may use them.
"""
