"""Find the files an ingest run reads: directory trees, single files, include/exclude globs."""

from __future__ import annotations

import fnmatch
import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from embedops.errors import InputRejected

SUPPORTED_SUFFIXES = frozenset({
    ".txt", ".md", ".markdown", ".rst", ".html", ".htm", ".xhtml", ".pdf",
    ".json", ".jsonl", ".ndjson",
})


@dataclass(frozen=True)
class SourceFile:
    """A file to ingest; ``root`` makes its document id (the path relative to root)."""

    path: Path
    root: Path


def discover(paths: Sequence[Path], include: Sequence[str] = (),
             exclude: Sequence[str] = ()) -> Iterator[SourceFile]:
    """Files under ``paths`` in a stable order. Directories are walked recursively and
    keep supported suffixes only; a file named explicitly is always taken. Hidden files
    and directories are skipped. Raises ``InputRejected`` for a path that does not exist."""
    for raw in paths:
        path = raw.expanduser()
        if path.is_file():
            if _wanted(path.name, include, exclude):
                yield SourceFile(path.resolve(), path.resolve().parent)
        elif path.is_dir():
            root = path.resolve()
            for file in sorted(root.rglob("*")):
                rel = file.relative_to(root).as_posix()
                if (file.is_file() and file.suffix.lower() in SUPPORTED_SUFFIXES
                        and not any(part.startswith(".") for part in rel.split("/"))
                        and _wanted(rel, include, exclude)):
                    yield SourceFile(file, root)
        else:
            raise InputRejected("missing_path", f"no such file or directory: {raw}")


def _wanted(rel: str, include: Sequence[str], exclude: Sequence[str]) -> bool:
    name = rel.rsplit("/", 1)[-1]

    def match(patterns: Sequence[str]) -> bool:
        return any(fnmatch.fnmatch(rel, p) or fnmatch.fnmatch(name, p) for p in patterns)

    return (not include or match(include)) and not match(exclude)


def file_digest(path: Path) -> str | None:
    """SHA-256 of a file's bytes, or None when it cannot be read (the preprocessing stage
    then reports why)."""
    digest = hashlib.sha256()
    try:
        with path.open("rb") as handle:
            while block := handle.read(1 << 20):
                digest.update(block)
    except OSError:
        return None
    return digest.hexdigest()
