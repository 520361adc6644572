"""Where a Milvus store is, and what its names are called there.

``milvus://[user:password@]host[:19530][/db][?secure=true]`` is a Milvus server or
cluster; ``milvus-lite:///abs/path/file.db`` is milvus-lite, run in this process (one
engine per path, shared by the handles of this process and stopped with the last).

Milvus names are ``[A-Za-z_][A-Za-z0-9_]*``, while embedops names may hold ``.`` and
``-``: an embedops collection or alias ``name`` is the Milvus collection or alias
``eo_`` + ``name`` with ``_`` → ``__``, ``.`` → ``_d``, ``-`` → ``_h`` (reversible, and
names without the prefix are not embedops').
"""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from embedops.errors import StoreError
from embedops.store.names import InvalidName

PREFIX = "eo_"
_ESCAPES = {"_": "__", ".": "_d", "-": "_h"}
_UNESCAPE = re.compile(r"_(.)")
_LITE_LOCK = threading.Lock()
_LITE_USERS: dict[str, int] = {}


def engine_name(name: str) -> str:
    """The Milvus name of an embedops collection or alias name (``[A-Za-z0-9_]`` only):
    ``eo_`` + the name with ``_`` → ``__``, ``.`` → ``_d``, ``-`` → ``_h``."""
    out = PREFIX + "".join(_ESCAPES.get(ch, ch) for ch in name)
    if len(out) > 255:
        raise InvalidName(f"{name!r} is too long for Milvus once escaped ({len(out)} > 255 "
                          "characters)")
    return out


def embedops_name(engine: str) -> str | None:
    """The embedops name of a Milvus name, or None for a name embedops did not make."""
    if not engine.startswith(PREFIX):
        return None
    back = {v[1]: k for k, v in _ESCAPES.items()}
    name = _UNESCAPE.sub(lambda m: back.get(m.group(1), "\0"), engine[len(PREFIX):])
    return None if "\0" in name else name


def connect(location: str, read_only: bool) -> tuple[Any, str | None, str]:
    """``(MilvusClient, lite data path or None, where)`` for a store URL."""
    from pymilvus import MilvusClient

    parts = urlsplit(location)
    if parts.scheme == "milvus-lite":
        path = Path(unquote(parts.path))
        if not parts.path or parts.netloc not in ("", "localhost"):
            raise StoreError(f"{location!r}: write a milvus-lite store as "
                             "milvus-lite:///abs/path/file.db")
        if read_only and not path.exists():
            raise StoreError(f"no milvus-lite store at {path}")
        # the in-process engine accepts no keepalive pings (gRPC's default server
        # policy): without this, every idle minute logs a GOAWAY "too_many_pings"
        quiet = {"grpc.keepalive_time_ms": 2**31 - 1,
                 "grpc.keepalive_permit_without_calls": False}
        client = MilvusClient(uri=_lite_uri(path), grpc_options=quiet)
        return client, str(path), f"milvus-lite://{path}"
    query = parse_qs(parts.query)
    secure = query.get("secure", ["false"])[0].lower() in ("1", "true", "yes")
    token = ""
    if parts.username:
        token = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
    uri = f"{'https' if secure else 'http'}://{parts.hostname}:{parts.port or 19530}"
    db = parts.path.strip("/")
    client = MilvusClient(uri=uri, token=token, db_name=db)
    return client, None, f"milvus://{parts.hostname}:{parts.port or 19530}/{db}"


def _lite_uri(path: Path) -> str:
    """Start (or share) the milvus-lite engine of ``path`` in this process."""
    from milvus_lite.server_manager import server_manager_instance

    path.parent.mkdir(parents=True, exist_ok=True)
    with _LITE_LOCK:
        uri = server_manager_instance.start_and_get_uri(str(path))
        if uri is None:
            raise StoreError(f"milvus-lite could not open {path}")
        _LITE_USERS[str(path)] = _LITE_USERS.get(str(path), 0) + 1
    return uri


def release_lite(path: str) -> None:
    """Stop the milvus-lite engine of ``path`` when its last handle closes (it flushes
    and unlocks the data directory)."""
    from milvus_lite.server_manager import server_manager_instance

    with _LITE_LOCK:
        _LITE_USERS[path] -= 1
        if _LITE_USERS[path] == 0:
            del _LITE_USERS[path]
            server_manager_instance.release_server(path)
