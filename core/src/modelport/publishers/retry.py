"""Retrying a call to a remote: the server's Retry-After (seconds or an HTTP date), else exponential backoff.
Used by the publishers' clients (hf://, github://); a failure that stays becomes one PublishError line."""

from __future__ import annotations

import email.utils
import re
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from modelport.errors import PublishError
from modelport.terminal.console import say

T = TypeVar("T")


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date."""
    if value is None:
        return None
    value = value.strip()
    if re.fullmatch(r"\d+(\.\d+)?", value):
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class RetryPolicy:
    """How many times to retry, and how long to wait: the server's Retry-After, else exponential backoff."""

    def __init__(self, retries: int = 4, base: float = 1.0, cap: float = 30.0, max_retry_after: float = 300.0) -> None:
        self.retries = max(0, int(retries))
        self.base = base
        self.cap = cap
        self.max_retry_after = max_retry_after

    @classmethod
    def from_options(cls, options: Mapping[str, Any], default: int = 4) -> RetryPolicy:
        """The policy for a publisher's ``retries`` option (``default`` when it is not set)."""
        retries = options.get("retries")
        return cls(int(retries if retries is not None else default))

    def backoff(self, attempt: int) -> float:
        return min(self.cap, self.base * (2 ** (attempt - 1)))

    def run(self, fn: Callable[[], T], *, what: str, classify: Callable[[BaseException], tuple[str, float | None] | None],
            where: str = "") -> T:
        """Call ``fn``; on an error that ``classify`` calls transient, wait and call it again.

        ``classify(exc)`` returns None for a permanent error, else ``(reason, retry_after_seconds or None)``.
        A Retry-After longer than ``max_retry_after`` fails at once rather than hang.
        """
        attempt = 0
        while True:
            try:
                return fn()
            except Exception as exc:
                verdict = classify(exc)
                attempt += 1
                if verdict is None or attempt > self.retries:
                    raise
                reason, retry_after = verdict
                if retry_after is not None and retry_after > self.max_retry_after:
                    raise
                wait = retry_after if retry_after is not None else self.backoff(attempt)
                say(f"{where}{what}: {reason}; retrying in {wait:.0f} s (retry {attempt} of {self.retries})")
                time.sleep(wait)

    def call(self, fn: Callable[[], T], *, what: str, classify: Callable[[BaseException], tuple[str, float | None] | None],
             error: Callable[[BaseException, str], PublishError], where: str = "") -> T:
        """:meth:`run`, and a failure that is not a PublishError already becomes ``error(exc, what)`` (one line, no traceback)."""
        try:
            return self.run(fn, what=what, classify=classify, where=where)
        except PublishError:
            raise
        except Exception as exc:
            raise error(exc, what) from None
