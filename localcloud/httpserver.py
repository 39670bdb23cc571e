"""The local cloud's HTTP servers' common base."""

from __future__ import annotations

import socket
import sys
from http.server import ThreadingHTTPServer
from typing import Any


class QuietServer(ThreadingHTTPServer):
    """A threading server that takes a peer going away in its stride."""

    daemon_threads = True

    def handle_error(
        self,
        request: socket.socket | tuple[bytes, socket.socket],
        client_address: Any,  # typeshed's own type for it
    ) -> None:
        # A peer that went away (a killed environment, a client that gave up) is normal
        # here; anything else still gets socketserver's traceback in the log.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)
