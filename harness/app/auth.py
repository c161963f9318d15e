"""Passwords (scrypt) and bearer tokens (HMAC-signed, stateless) for the reference service.

Tokens are signed with a secret kept in the database, so every replica and worker accepts
every other one's tokens and a restarted replica does not log anyone out.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import time


def hash_password(password: str, cost: int) -> str:
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=cost, r=8, p=1, dklen=32)
    return f"scrypt${cost}${salt.hex()}${digest.hex()}"


def check_password(password: str, stored: str) -> bool:
    try:
        _, cost, salt, digest = stored.split("$")
        actual = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), n=int(cost), r=8, p=1, dklen=32)
    except ValueError:
        return False
    return hmac.compare_digest(actual.hex(), digest)


def issue_token(user_id: int, secret: bytes, ttl_s: int, now: float | None = None) -> str:
    expires = int((now if now is not None else time.time()) + ttl_s)
    body = f"{user_id}.{expires}"
    sig = hmac.new(secret, body.encode(), hashlib.sha256).digest()
    return body + "." + base64.urlsafe_b64encode(sig).decode().rstrip("=")


def verify_token(token: str, secret: bytes, now: float | None = None) -> int | None:
    """The user id a valid, unexpired token names; None otherwise."""
    try:
        user_id, expires, sig = token.split(".")
        body = f"{user_id}.{expires}"
        expected = base64.urlsafe_b64encode(hmac.new(secret, body.encode(), hashlib.sha256).digest())
        if not same_secret(expected.decode().rstrip("="), sig):
            return None
        if int(expires) < (now if now is not None else time.time()):
            return None
        return int(user_id)
    except ValueError:
        return None


def same_secret(expected: str, given: str) -> bool:
    """Constant-time comparison of a secret with what a client sent, whatever the client sent.

    hmac.compare_digest raises TypeError on a str with non-ASCII characters (a header decoded as
    Latin-1 may hold any byte), so both sides are compared as UTF-8 bytes.
    """
    try:
        return hmac.compare_digest(expected.encode(), given.encode())
    except UnicodeEncodeError:  # a lone surrogate: cannot be what was issued
        return False
