"""Schema migrations shipped as SQL files in ``sluicegate/ledger/sql``.

Files are named ``<backend>_<version>_<title>.sql`` (``postgres_0001_initial.sql``).
Each backend applies, in version order, the files it has not recorded in its
``sluicegate_schema_version`` table, inside one transaction that holds a lock only one
process can take at a time (an advisory lock on PostgreSQL, the write lock on SQLite), so
four replicas starting at once apply each file exactly once.
"""

from __future__ import annotations

import dataclasses
import importlib.resources
import sqlite3


@dataclasses.dataclass(frozen=True)
class Migration:
    """One SQL file: its version, title and text."""

    version: int
    title: str
    sql: str


def migrations(backend: str) -> list[Migration]:
    """Return the migrations of ``backend`` ("postgres" or "sqlite") in version order."""
    found = []
    folder = importlib.resources.files("sluicegate.ledger").joinpath("sql")
    for entry in folder.iterdir():
        prefix, _, rest = entry.name.partition("_")
        if prefix != backend or not entry.name.endswith(".sql"):
            continue
        version, _, title = rest.removesuffix(".sql").partition("_")
        found.append(Migration(version=int(version), title=title, sql=entry.read_text(encoding="utf-8")))
    found.sort(key=lambda migration: migration.version)
    versions = [migration.version for migration in found]
    if not found or len(set(versions)) != len(versions):
        raise RuntimeError(f"the installed sluicegate has broken {backend} migrations (versions {versions}); reinstall it")
    return found


def sqlite_statements(sql: str) -> list[str]:
    """Split a SQL script into statements, keeping trigger bodies whole.

    ``sqlite3.Connection.executescript`` would do this, but it commits first and so cannot
    run inside the migration's transaction.
    """
    statements = []
    pending = ""
    for line in sql.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            statements.append(pending.strip())
            pending = ""
    if pending.strip() and not _only_comments(pending):
        raise RuntimeError(f"unterminated SQL statement in a migration: {pending.strip()[:80]!r}")
    return statements


def _only_comments(text: str) -> bool:
    return all(not line.strip() or line.strip().startswith("--") for line in text.splitlines())
