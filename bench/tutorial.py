"""The blog-tutorial handler for bench.py: Mailgun inbound as typical blog posts write it, for comparison.

Flask's default form parser (`request.files`: small parts in memory, large ones in its own
temp files), the HMAC signature checked, each attachment saved with `file.save()` under a
uuid name in TUTORIAL_PATH, a JSON answer with URLs. No fsync, no content sniffing, no
receipts, no replay check: what the service's durability and checks are measured against.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import uuid

from flask import Flask, abort, jsonify, request

app = Flask(__name__)
UPLOADS = os.environ.get("TUTORIAL_PATH", "uploads")
SIGNING_KEY = os.environ.get("MAILGUN_WEBHOOK_SIGNING_KEY", "")


@app.get("/healthz")
def healthz():
    return "ok\n"


@app.post("/webhooks/mailgun")
def inbound():
    token, timestamp = request.form.get("token", ""), request.form.get("timestamp", "")
    expected = hmac.new(SIGNING_KEY.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, request.form.get("signature", "")):
        abort(406)
    stored = []
    for file in request.files.values():
        name = f"{uuid.uuid4().hex}{os.path.splitext(file.filename or '')[1]}"
        file.save(os.path.join(UPLOADS, name))
        stored.append({"url": f"{request.host_url}uploads/{name}", "content_type": file.mimetype})
    return jsonify(stored=stored)
