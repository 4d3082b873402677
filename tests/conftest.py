"""Fixtures shared by every test ring: a throwaway PostgreSQL database per test.

The server comes from ``SLUICEGATE_TEST_POSTGRES_URL`` (default
``postgresql://postgres@127.0.0.1:5432/postgres``); ``.ci/run`` makes sure one answers there.
Each test gets a database of its own, created from that server and dropped afterwards,
so tests never see each other's rows.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest

ADMIN_URL = os.environ.get("SLUICEGATE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def _database_url(name: str) -> str:
    base, _, _ = ADMIN_URL.rpartition("/")
    return f"{base}/{name}"


async def _create_database(name: str) -> None:
    connection = await asyncpg.connect(ADMIN_URL)
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()


async def _drop_database(name: str) -> None:
    connection = await asyncpg.connect(ADMIN_URL)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    """URL of a new, empty PostgreSQL database, dropped after the test."""
    name = f"sg_test_{uuid.uuid4().hex[:12]}"
    try:
        await _create_database(name)
    except (OSError, asyncpg.PostgresError) as error:
        pytest.fail(
            f"cannot create a test database on {ADMIN_URL}: {error}. Start PostgreSQL "
            "(bash .ci/run does) or point SLUICEGATE_TEST_POSTGRES_URL at a server"
        )
    yield _database_url(name)
    await _drop_database(name)


@pytest.fixture
def sqlite_url(tmp_path: "os.PathLike[str]") -> Iterator[str]:
    """URL of a new SQLite ledger file in the test's temporary folder."""
    yield f"sqlite:///{os.fspath(tmp_path)}/ledger.db"
