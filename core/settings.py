"""Instance settings: where data lives, which database, which plugins.toml.

Everything comes from environment variables with safe defaults, so `make run` needs no
configuration and a production deployment sets only what differs.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    database_url: str
    plugins_toml: Path
    debug: bool = False
    redis_url: str | None = None
    base_url: str = "http://127.0.0.1:8000"
    # Cookies are Secure by default; `make run` on plain http://127.0.0.1 is a secure context
    # for browsers, so this only needs turning off behind odd proxies.
    secure_cookies: bool = True
    theme: str = "default"
    instance_name: str = "Rapport"
    # Addresses or networks (CIDR) of the reverse proxies whose X-Forwarded-For and
    # X-Forwarded-Proto are believed (RAPPORT_TRUSTED_PROXIES, comma-separated). Empty: none
    # is, so a client cannot choose its own address for the audit log and rate limits.
    trusted_proxies: tuple[str, ...] = ()
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides) -> Settings:
        env = os.environ if environ is None else environ
        data_dir = Path(env.get("RAPPORT_DATA_DIR", "data")).resolve()
        default_db = f"sqlite:///{data_dir / 'rapport.sqlite3'}"
        values = dict(
            data_dir=data_dir,
            database_url=env.get("RAPPORT_DATABASE_URL", default_db),
            plugins_toml=Path(env.get("RAPPORT_PLUGINS_TOML", "plugins.toml")).resolve(),
            debug=env.get("RAPPORT_DEBUG", "") in {"1", "true", "yes"},
            redis_url=env.get("RAPPORT_REDIS_URL") or None,
            base_url=env.get("RAPPORT_BASE_URL", "http://127.0.0.1:8000").rstrip("/"),
            secure_cookies=env.get("RAPPORT_INSECURE_COOKIES", "") not in {"1", "true", "yes"},
            theme=env.get("RAPPORT_THEME", "default"),
            instance_name=env.get("RAPPORT_INSTANCE_NAME", "Rapport"),
            trusted_proxies=tuple(p.strip() for p in env.get("RAPPORT_TRUSTED_PROXIES", "")
                                  .split(",") if p.strip()),
        )
        values.update(overrides)
        return cls(**values)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def secret(self, name: str, nbytes: int = 32) -> str:
        """Return the instance secret `name`, generating it on first use.

        Secrets live in the data directory (never in the repository), one file each,
        readable only by the owner.
        """
        secrets_dir = self.data_dir / "secrets"
        path = secrets_dir / name
        if path.exists():
            return path.read_text().strip()
        secrets_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        value = secrets.token_urlsafe(nbytes)
        # O_EXCL: two workers starting together must not overwrite each other's key.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return path.read_text().strip()
        with os.fdopen(fd, "w") as handle:
            handle.write(value)
        return value

    @property
    def secret_key(self) -> str:
        return self.secret("secret_key")
