"""Settings of one ``modelport serve`` process."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from modelport.errors import ConfigError

TOKEN_ENV = "MODELPORT_SERVE_TOKEN"
LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclass
class ServeConfig:
    """Where the server listens, what it may load, where it writes, and how many jobs it runs at once."""

    exports_root: Path
    models_dir: Path
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 2
    job_timeout_s: float = 1800.0
    max_upload_bytes: int = 512 * 1024 * 1024
    executor: str = "local"
    ray_address: str | None = None
    warm: bool = True
    threads: int | None = None
    token: str | None = None

    @property
    def state_dir(self) -> Path:
        """``<exports-root>/.serve``: the jobs database and pending uploads, beside the exports store."""
        return self.exports_root / ".serve"

    def check(self) -> None:
        """Refuse settings that would be unsafe or cannot work (exit 3 from the CLI)."""
        if self.token is None and self.host not in LOOPBACK:
            raise ConfigError(
                f"--host {self.host} would expose the server without authentication; set {TOKEN_ENV} to a secret "
                "token (clients send 'Authorization: Bearer TOKEN'), or bind to 127.0.0.1")
        if self.token is not None and len(self.token) < 16:
            raise ConfigError(f"{TOKEN_ENV} is too short: use at least 16 random characters")
        if self.workers < 1:
            raise ConfigError("--workers must be at least 1")
        if self.job_timeout_s <= 0:
            raise ConfigError("--job-timeout must be positive")
        if self.max_upload_bytes <= 0:
            raise ConfigError("--max-upload-mb must be positive")
        if self.exports_root.exists() and not self.exports_root.is_dir():
            raise ConfigError(f"--exports-root {self.exports_root}: exists and is not a directory")
        if not self.models_dir.is_dir():
            raise ConfigError(f"--models-dir {self.models_dir}: no such directory")
        if self.executor not in ("local", "ray"):
            raise ConfigError(f"--executor {self.executor!r}: use local or ray")

    @staticmethod
    def token_from_env() -> str | None:
        value = os.environ.get(TOKEN_ENV)
        return value if value else None
