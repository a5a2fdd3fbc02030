"""gunicorn settings for `web: gunicorn 'inbox:create_app()'` (gunicorn reads this file from the working directory).

Binds 0.0.0.0:$PORT when PORT is set (gunicorn's own rule), else 127.0.0.1:8000. The values
live in inbox/serving.py, shared with `inbox serve`: WEB_CONCURRENCY worker processes
(default 2) of WEB_THREADS threads (default 8), slow clients dropped (inbox/slow_clients.py).
"""

import os
import sys

from inbox.config import ConfigError
from inbox.serving import exit_unless_configured, gunicorn_settings

try:
    globals().update(gunicorn_settings(os.environ))
except ConfigError as error:
    print(f"inbox: {error}", file=sys.stderr)
    sys.exit(2)
# A missing or wrong setting is printed once by the master, which exits non-zero, instead of
# inside a traceback from every worker.
on_starting = exit_unless_configured
