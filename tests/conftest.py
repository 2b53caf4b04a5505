"""Shared fixtures: a PostgreSQL server for the tests that need one.

PostgreSQL comes from ``$JSFLOW_TEST_PG_URL`` (``make test`` and ``.ci/run``
start a throwaway cluster and set it, see pg_cluster.py). Without it, a
session-wide throwaway cluster is started here when the server binaries are
installed. If neither works the PostgreSQL tests FAIL, so CI can never go
green without running them; a developer without the binaries may set
``JSFLOW_TEST_PG_OPTIONAL=1`` to skip them instead.

Each PostgreSQL test gets its own schema (the URL sets ``search_path``),
dropped afterwards: creating one and migrating it takes milliseconds.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator

import pytest
from pg_cluster import ENV_URL, ClusterError, cluster, find_bindir

OPTIONAL_ENV = "JSFLOW_TEST_PG_OPTIONAL"


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """The URL of a PostgreSQL database the tests may create schemas in."""
    url = os.environ.get(ENV_URL)
    if url:
        yield url
        return
    if find_bindir() is None:
        if os.environ.get(OPTIONAL_ENV) == "1":
            pytest.skip(f"no PostgreSQL: {ENV_URL} unset and no server binaries ({OPTIONAL_ENV}=1)")
        pytest.fail(
            f"PostgreSQL tests need {ENV_URL} or the server binaries (apt-get install postgresql); "
            f"set {OPTIONAL_ENV}=1 to skip them"
        )
    try:
        with cluster() as started:
            yield started
    except ClusterError as exc:
        if os.environ.get(OPTIONAL_ENV) == "1":
            pytest.skip(str(exc))
        pytest.fail(str(exc))


def _schema_url(base: str, schema: str) -> str:
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options=-csearch_path%3D{schema}"


@pytest.fixture
def pg_schema(pg_server: str) -> Iterator[Callable[[], str]]:
    """A factory of fresh, empty schemas (URLs); all dropped after the test."""
    import psycopg

    made: list[str] = []

    def make() -> str:
        schema = f"t_{uuid.uuid4().hex[:16]}"
        with psycopg.connect(pg_server, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
        made.append(schema)
        return _schema_url(pg_server, schema)

    yield make
    if made:
        with psycopg.connect(pg_server, autocommit=True) as conn:
            for schema in made:
                conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def pg_url(pg_schema: Callable[[], str]) -> str:
    """One fresh PostgreSQL schema for this test."""
    return pg_schema()
