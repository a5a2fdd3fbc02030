"""gunicorn settings for `web: gunicorn 'inbox:create_app()'` (gunicorn reads this file from the working directory).

Binds 0.0.0.0:$PORT when PORT is set (gunicorn's own rule), else 127.0.0.1:8000. Workers come
from WEB_CONCURRENCY (default 2 here): each sync worker handles one delivery at a time.
"""
import os

workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# A 25 MiB delivery over a slow link must not be killed half-way (gunicorn's default is 30 s).
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "120"))
accesslog = "-"
# The runtime control socket is one path per user: two services on one host would share it.
control_socket_disable = True
