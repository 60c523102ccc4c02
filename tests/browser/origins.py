"""A folder served over plain HTTP on its own 127.0.0.1 port: another web origin for the
browser (a customer's page beside the gateway, or a stranger's). Like any web site it has an
icon at /favicon.ico, which browsers ask for whatever the page says."""

from __future__ import annotations

import functools
import io
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from PIL import Image

__all__ = ["static_origin"]


def _icon() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (16, 16), (79, 70, 229)).save(out, format="PNG")
    return out.getvalue()


ICON = _icon()


class _SiteHandler(SimpleHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path != "/favicon.ico":
            super().do_GET()
            return
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(ICON)))
        self.end_headers()
        self.wfile.write(ICON)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def static_origin(directory: Path) -> Iterator[str]:
    """Serve ``directory`` until the block ends; yields its origin, ``http://127.0.0.1:PORT``."""
    handler = functools.partial(_SiteHandler, directory=str(directory))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="static-origin", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
