"""gunicorn's threaded worker with a read and write timeout on every client connection
(crm/gunicorn.conf.py uses it; docs/operations.md, "The web server").

gthread hands a connection to a thread once its first bytes arrive, and from then on the
thread reads the headers and the body with blocking calls that never time out: a client
that announces `Content-Length: 1000` and sends 10 bytes holds the thread until it gives
up, and a few such clients hold every thread of every worker (/healthz included).

Here the connection's socket gets a timeout (WEB_IO_TIMEOUT seconds, default 5) whenever a
thread makes it blocking: a read (headers or body) or a write that makes no progress for
that long raises TimeoutError and frees the thread. A body that stalls surfaces in Django
as UnreadablePostError, which crm.security.UnreadableBodyMiddleware answers with 408; the
connection is then closed (gunicorn cannot find the next request on it), in the thread:
gthread would close it in its main loop, which stops serving anyone while it lingers for a
client that never hangs up. Stalled headers end the connection without an answer. The
timeout bounds a pause, not the whole body: a slow but steady upload still gets through.

With SSL terminated by gunicorn itself the socket is wrapped and this does not apply; the
product terminates TLS at the proxy.
"""

from __future__ import annotations

import logging
import os
import socket

from gunicorn import util
from gunicorn.workers.gthread import ThreadWorker

# Seconds a closing connection waits for its client to hang up (so that the last answer is
# not cut off by a reset), in the request's thread rather than in the process's main loop.
CLOSE_LINGER = 1.0


def io_timeout() -> float:
    return float(os.environ.get("WEB_IO_TIMEOUT", "5"))


class _TimedSocket(socket.socket):
    """A client socket whose blocking mode is a timeout: gthread switches a connection
    between non-blocking (the poller, in the main thread) and blocking (a worker thread)."""

    __slots__ = ()
    crm_io_timeout = 5.0

    def setblocking(self, flag: bool) -> None:
        if flag:
            self.settimeout(self.crm_io_timeout)
        else:
            super().setblocking(False)

    def settimeout(self, value):
        # None means "block forever": gunicorn restores that after its own bounded reads.
        super().settimeout(self.crm_io_timeout if value is None else value)


class _StalledClients(logging.Filter):
    """gthread logs a traceback for any socket error that is not a reset; a client that
    went quiet is routine (the access log has no line for it either)."""

    def filter(self, record):
        exc = record.exc_info[1] if record.exc_info else None
        return not (
            isinstance(exc, TimeoutError) and record.msg == "Socket error processing request."
        )


class TimeoutThreadWorker(ThreadWorker):
    def init_process(self):
        _TimedSocket.crm_io_timeout = io_timeout()
        self.log.error_log.addFilter(_StalledClients())
        super().init_process()

    def enqueue_req(self, conn):
        # Every connection passes here on its way to a thread (new, kept alive or woken).
        sock = conn.sock
        if type(sock) is socket.socket:
            sock.__class__ = _TimedSocket
            if sock.gettimeout() is None:
                sock.settimeout(None)  # blocking now: becomes the timeout
        super().enqueue_req(conn)

    def handle(self, conn):
        keep = super().handle(conn)
        if keep is False:
            # gthread closes in its main loop, lingering up to 2 s for a client that never
            # hangs up (a stalled one never does): meanwhile the process accepts and
            # dispatches nothing. Close here, in this thread, instead.
            util.close_graceful(conn.sock, timeout=CLOSE_LINGER)
            conn.crm_closed = True
        return keep

    def finish_request(self, conn, fs):
        if getattr(conn, "crm_closed", False):
            self.nr_conns -= 1
            return
        super().finish_request(conn, fs)
