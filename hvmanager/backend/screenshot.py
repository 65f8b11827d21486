"""The screen thumbnail of a running VM (``virDomainScreenshot``), as image bytes (PPM/PNG)."""

from __future__ import annotations

from typing import Any

from hvmanager.backend.connection import libvirt_errors


def take_screenshot(conn: Any, dom: Any, screen: int = 0) -> tuple[str, bytes]:
    """Capture the VM's display; returns the MIME type and the image bytes (blocking)."""
    chunks: list[bytes] = []

    def _collect(_stream: Any, data: bytes, _opaque: Any) -> int:
        chunks.append(bytes(data))
        return len(data)

    with libvirt_errors(f"Taking a screenshot of '{dom.name()}'"):
        stream = conn.newStream(0)
        try:
            mime = dom.screenshot(stream, screen, 0)
            stream.recvAll(_collect, None)
            stream.finish()
        except BaseException:
            stream.abort()
            raise
    return str(mime), b"".join(chunks)
