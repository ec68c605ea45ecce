"""Where the gallery lives: ``DPRIME_GALLERY_URL`` parsed into a SQLite file or a PostgreSQL database."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

Backend = Literal["sqlite", "postgresql"]
SQLITE_PREFIX = "sqlite:///"
POSTGRES_SCHEMES = ("postgresql", "postgres")


@dataclass(frozen=True)
class GalleryLocation:
    """A parsed gallery URL: the SQLite gallery file, or a PostgreSQL connection string (libpq form)."""

    backend: Backend
    url: str
    sqlite_path: Path | None = None

    @property
    def dsn(self) -> str:
        """The libpq connection string of a PostgreSQL gallery (postgresql://...)."""
        if self.backend != "postgresql":
            raise ValueError(f"{self.url} is not a PostgreSQL gallery")
        return "postgresql://" + self.url.split("://", 1)[1]

    @property
    def sqlalchemy_url(self) -> str:
        """The same location as SQLAlchemy spells it (what Alembic connects with)."""
        if self.backend == "sqlite":
            return f"sqlite:///{self.sqlite_path}"
        return "postgresql+psycopg://" + self.url.split("://", 1)[1]

    def redacted(self) -> str:
        """The URL without its password, for logs and messages."""
        if self.backend == "sqlite":
            return self.url
        parts = urlsplit(self.url)
        if parts.password is None:
            return self.url
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
        return parts._replace(netloc=netloc).geturl()


def parse_gallery_url(url: str) -> GalleryLocation:
    """``sqlite:///relative/or//absolute/path`` or ``postgresql://user:pass@host:port/db?...``.

    Raises:
        ValueError: any other scheme, or a SQLite URL without a path.
    """
    text = url.strip()
    if text.startswith(SQLITE_PREFIX):
        path = text[len(SQLITE_PREFIX) :]
        if not path:
            raise ValueError(f"{url!r} names no file: write sqlite:///var/gallery.sqlite3 or sqlite:////abs/path")
        return GalleryLocation(backend="sqlite", url=text, sqlite_path=Path(path))
    scheme = text.split("://", 1)[0].lower() if "://" in text else ""
    if scheme in POSTGRES_SCHEMES:
        return GalleryLocation(backend="postgresql", url="postgresql://" + text.split("://", 1)[1])
    raise ValueError(f"{url!r} is neither sqlite:///PATH nor postgresql://...")
