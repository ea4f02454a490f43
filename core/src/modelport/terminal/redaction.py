"""Remove credentials from text before it is printed, logged or recorded.

A token reaches output in more forms than the one in the environment: with the trailing ``\\r`` or ``\\n`` of
a CRLF ``.env`` file, trimmed by an HTTP client, repr-escaped or URL-quoted inside an error message, typed
into a URL as ``https://user:TOKEN@host`` or ``?token=TOKEN``, or sent as ``Authorization: Bearer TOKEN``.
Every form is replaced with ``***``. Which environment variables hold tokens is declared by the publishers that
read them (``PublisherSpec.token_env``); the plugin host registers each one here when it loads the publisher.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from urllib.parse import quote

MASK = "***"
_TOKEN_ENV: set[str] = set()  # names declared by every publisher loaded in this process (only grows)
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/@\s'\"<>]+)@")
_QUERY = re.compile(
    r"(?P<key>[?&;](?:access_token|token|api_key|apikey|api-key|key|password|passwd|secret|sig|signature|auth)=)"
    r"(?P<value>[^&#\s'\"<>]+)", re.IGNORECASE)
_BEARER = re.compile(r"(?P<key>\b(?:Bearer|token|Basic)\s+)(?P<value>[A-Za-z0-9._~+/=-]{8,})")


def secret_forms(secret: str | None) -> list[str]:
    """Every spelling of ``secret`` worth looking for, longest first (raw, trimmed, escaped, URL-quoted)."""
    if not secret:
        return []
    forms = {secret, secret.strip(), secret.strip("\r\n"), secret.encode("unicode_escape").decode("ascii", "replace"),
             quote(secret, safe=""), quote(secret.strip(), safe="")}
    return sorted((f for f in forms if len(f) >= 4), key=len, reverse=True)


def register_token_env(names: Iterable[str]) -> None:
    """Treat the values of these environment variables as tokens from now on (a publisher declares them)."""
    _TOKEN_ENV.update(names)


def token_env() -> tuple[str, ...]:
    """Every environment variable a loaded publisher declared as holding a token."""
    return tuple(sorted(_TOKEN_ENV))


def redact(text: str, secrets: Iterable[str | None] | None = None) -> str:
    """``text`` with every form of each secret, URL credentials and bearer tokens replaced by ``***``;
    by default the secrets are the values of :func:`token_env`."""
    if not text:
        return text
    if secrets is None:
        secrets = [os.environ.get(name) for name in token_env()]
    for secret in secrets:
        for form in secret_forms(secret):
            text = text.replace(form, MASK)
    text = _USERINFO.sub(lambda m: f"{m.group('scheme')}{MASK}@", text)
    text = _QUERY.sub(lambda m: f"{m.group('key')}{MASK}", text)
    text = _BEARER.sub(lambda m: f"{m.group('key')}{MASK}", text)
    return text
