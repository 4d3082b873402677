"""Open a ledger from a URL: ``postgresql://...`` (or ``postgres://...``) or ``sqlite:///path``.

SQLite URLs follow the usual convention: after ``sqlite:///`` comes the path, so
``sqlite:///ledger.db`` and ``sqlite:///./ledger.db`` are relative to the working
directory and ``sqlite:////var/lib/sluicegate/ledger.db`` (four slashes) is absolute.
``sqlite:///:memory:`` is a private in-memory ledger, gone when it is closed.
"""

from __future__ import annotations

import urllib.parse

from sluicegate.ledger._clock import Clock
from sluicegate.ledger._postgres import PostgresLedger
from sluicegate.ledger._protocol import Ledger
from sluicegate.ledger._sqlite import SqliteLedger

_SQLITE_PREFIX = "sqlite:///"
_HINT = "use postgresql://USER@HOST:PORT/DATABASE or sqlite:///PATH (sqlite:////ABSOLUTE/PATH for an absolute path)"


def connect(url: str, *, clock: Clock | None = None) -> Ledger:
    """Return the ledger at ``url``; connections open on first use, so call ``migrate()`` first.

    ``clock`` replaces the database clock, for tests. Raises ValueError for a URL of any
    other scheme, naming the URL with its password removed.

    Example: ``ledger = connect("sqlite:///./sluicegate-ledger.db"); await ledger.migrate()``.
    """
    scheme, separator, _ = url.partition("://")
    scheme = scheme.lower()
    if separator and scheme in ("postgresql", "postgres"):
        return PostgresLedger(dsn=url, clock=clock)
    if separator and scheme == "sqlite":
        return SqliteLedger(sqlite_path(url), clock=clock)
    raise ValueError(f"unsupported ledger URL {redact_url(url)!r}: {_HINT}")


def sqlite_path(url: str) -> str:
    """Return the file path of a ``sqlite:///PATH`` URL; raise ValueError for a malformed one."""
    if not url.lower().startswith(_SQLITE_PREFIX):
        raise ValueError(
            f"invalid SQLite ledger URL {redact_url(url)!r}: a SQLite URL has no host, so it starts with three slashes; {_HINT}"
        )
    path = url[len(_SQLITE_PREFIX) :]
    if not path or "?" in path or "#" in path:
        raise ValueError(f"invalid SQLite ledger URL {redact_url(url)!r}: give a file path and no query; {_HINT}")
    return path


def redact_url(url: str) -> str:
    """Return ``url`` with any password replaced by ``***``, for messages and logs."""
    try:
        parts = urllib.parse.urlsplit(url)
        password = parts.password
    except ValueError:
        return "<unparsable URL>"
    if password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    netloc = f"{parts.username or ''}:***@{host}"
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))
