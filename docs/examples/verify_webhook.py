"""Verify a tryon-core webhook: copy ``verify`` into your receiver (standard library only).

    TRYON_WEBHOOK_SECRET=whsec_... python verify_webhook.py "$TRYON_SIGNATURE" < body.json

exits 0 and prints ``valid`` when the ``Tryon-Signature`` header signs the body, else 1.
"""

import hashlib
import hmac
import os
import sys
import time


def verify(secret: str, header: str, body: bytes, tolerance: int = 300) -> bool:
    """True when ``header`` (``t=...,v1=...``) signs the raw ``body`` with ``secret``."""
    timestamp, signatures = None, []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isascii() and value.isdigit():
            timestamp = int(value)
        elif key == "v1":
            signatures.append(value)
    if timestamp is None or abs(time.time() - timestamp) > tolerance:
        return False  # missing, or too old (a replay) or too far ahead
    signed = f"{timestamp}.".encode() + body
    expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected, signature) for signature in signatures)


if __name__ == "__main__":
    body = sys.stdin.buffer.read()
    valid = verify(os.environ["TRYON_WEBHOOK_SECRET"], sys.argv[1], body)
    print("valid" if valid else "invalid")
    sys.exit(0 if valid else 1)
