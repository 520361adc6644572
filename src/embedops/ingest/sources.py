"""Find the files an ingest run reads: directory trees, single files, include/exclude globs."""

from __future__ import annotations

import fnmatch
import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from embedops.errors import InputRejected
from embedops.preprocess.media import MEDIA_SUFFIXES

if TYPE_CHECKING:
    from embedops.ledger.ledger import DeadLetter

SUPPORTED_SUFFIXES = frozenset({
    ".txt", ".md", ".markdown", ".rst", ".html", ".htm", ".xhtml", ".pdf",
    ".json", ".jsonl", ".ndjson",
})


def suffixes_for(modalities: Sequence[str]) -> frozenset[str]:
    """The suffixes a directory walk takes for a model that embeds ``modalities``:
    the text suffixes for ``text``, the image or audio ones (``MEDIA_SUFFIXES``) for
    ``image`` and ``audio``."""
    media = {s for s, m in MEDIA_SUFFIXES.items() if m in modalities}
    return frozenset(media | (SUPPORTED_SUFFIXES if "text" in modalities else set()))


@dataclass(frozen=True)
class SourceFile:
    """A file to ingest; ``root`` makes its document id (the path relative to root)."""

    path: Path
    root: Path


def source_of_dead_letter(letter: DeadLetter) -> SourceFile:
    """The file to re-read for a dead letter, with the root that gives it its original
    document id (``dlq retry``, over the CLI and HTTP)."""
    path = Path(str(letter.source))
    if letter.root:
        return SourceFile(path, Path(letter.root))
    if path.as_posix().endswith("/" + letter.doc_id):
        return SourceFile(path, Path(path.as_posix()[: -len(letter.doc_id) - 1]))
    return SourceFile(path, path.parent)


@dataclass
class Discovery:
    """The files a run takes, and how many it found and skipped, by reason."""

    files: list[SourceFile] = field(default_factory=list)
    found: int = 0
    skipped: Counter[str] = field(default_factory=Counter)


def scan(paths: Sequence[Path], include: Sequence[str] = (),
         exclude: Sequence[str] = (), modalities: Sequence[str] = ("text",)) -> Discovery:
    """Files under ``paths`` in a stable order. Directories are walked recursively and
    keep the suffixes of ``modalities`` only (text by default; see :func:`suffixes_for`);
    a file named explicitly is always taken. Hidden files
    and directories are skipped, and so are a BEIR dataset's queries and judgments (a
    folder with ``corpus.jsonl``, ``queries.jsonl`` and ``qrels/`` gives its corpus only).
    Raises ``InputRejected`` for a path that does not exist."""
    found = Discovery()
    for raw in paths:
        path = raw.expanduser()
        if path.is_file():
            found.found += 1
            if _wanted(path.name, include, exclude):
                found.files.append(SourceFile(path.resolve(), path.resolve().parent))
            else:
                found.skipped["excluded"] += 1
        elif path.is_dir():
            _walk(path.resolve(), include, exclude, found, suffixes_for(modalities))
        else:
            raise InputRejected("missing_path", f"no such file or directory: {raw}")
    return found


def _walk(root: Path, include: Sequence[str], exclude: Sequence[str],
          found: Discovery, suffixes: frozenset[str] = SUPPORTED_SUFFIXES) -> None:
    beir_roots = {p.parent for p in root.rglob("corpus.jsonl")
                  if (p.parent / "queries.jsonl").is_file() and (p.parent / "qrels").is_dir()}
    for file in sorted(root.rglob("*")):
        if not file.is_file():
            continue
        found.found += 1
        rel = file.relative_to(root).as_posix()
        if any(part.startswith(".") for part in rel.split("/")):
            found.skipped["hidden"] += 1
        elif any(file == b / "queries.jsonl" or file.is_relative_to(b / "qrels")
                 for b in beir_roots):
            found.skipped["beir_queries_or_qrels"] += 1
        elif file.suffix.lower() not in suffixes:
            found.skipped[f"unsupported_type:{file.suffix.lower() or 'none'}"] += 1
        elif not _wanted(rel, include, exclude):
            found.skipped["excluded"] += 1
        else:
            found.files.append(SourceFile(file, root))


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
