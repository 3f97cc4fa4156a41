"""gunicorn's configuration for the web process: `gunicorn -c crm/gunicorn.conf.py
crm.wsgi:application` (the Dockerfile's CMD; docs/operations.md, "The web server").

Threads, so that a request waiting on its client or the database holds one thread and not
a whole process, and a read/write timeout on every connection (crm/wsgi_worker.py), so
that a client sending its body slowly, or not at all, frees its thread after
WEB_IO_TIMEOUT seconds. In production a buffering proxy in front (docker-compose.yml's
`proxy`) receives whole requests before passing them on; this is the second line.

Environment: PORT (8000), WEB_CONCURRENCY (processes, 2), WEB_THREADS (threads per
process, 8), WEB_IO_TIMEOUT (seconds, 5), WEB_TIMEOUT (seconds a request may run, 30).
"""

import os

bind = os.environ.get("WEB_BIND", f"0.0.0.0:{os.environ.get('PORT', '8000')}")
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "crm.wsgi_worker.TimeoutThreadWorker"
threads = int(os.environ.get("WEB_THREADS", "8"))
# A process whose main loop is silent this long is restarted (requests run in threads
# and do not hold the loop).
timeout = int(os.environ.get("WEB_TIMEOUT", "30"))
graceful_timeout = 30
keepalive = 5
# Request line and header limits: gunicorn's defaults (4094 bytes, 100 fields, 8190 bytes).
accesslog = "-"
# No `gunicornc` control socket: one fixed path per user, which a second instance (tests,
# a second site on the host) would contend for.
control_socket_disable = True
