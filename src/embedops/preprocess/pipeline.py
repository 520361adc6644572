"""The entry points of preprocessing: bytes, files or text in; documents and rejections out.

Contract of every function here: it never raises on any input. Whatever cannot become a
document comes back as a :class:`~embedops.types.Rejection` with a reason from
:data:`REJECTION_REASONS` and the stage that refused it (``decode``, ``parse`` or
``validate``). Every document's text is cleaned (see :mod:`embedops.preprocess.clean`) and
passed validation (see :mod:`embedops.preprocess.validate`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePath
from typing import Any, Final

from embedops.config import Settings
from embedops.errors import ConfigError
from embedops.preprocess.audio import DEFAULT_AUDIO_LIMITS
from embedops.preprocess.clean import UnicodeForm, clean_text
from embedops.preprocess.decode import DecodeFailure, binary_signature, decode_bytes
from embedops.preprocess.images import DEFAULT_IMAGE_LIMITS, ImageLimits
from embedops.preprocess.kinds import BINARY, KINDS, detect_kind
from embedops.preprocess.media import (
    MEDIA_REJECTION_REASONS,
    MediaLimits,
    content_modality,
    media_document,
)
from embedops.preprocess.records import (
    RawRecord,
    RecordFailure,
    RecordFields,
    parse_json,
    parse_jsonl,
)
from embedops.preprocess.validate import looks_binary, validate_text
from embedops.types import Document, Rejection

#: Every reason a rejection can carry, with the stage that gives it.
REJECTION_REASONS: Final[dict[str, str]] = {
    "too_large": "decode",
    "unreadable": "decode",
    "binary": "decode or validate",
    "undecodable": "decode",
    "malformed_pdf": "parse",
    "encrypted": "parse",
    "malformed_html": "parse",
    "malformed_record": "parse",
    "missing_field": "parse",
    "duplicate_id": "parse",
    "empty": "parse or validate",
    "garbage": "validate",
    "too_short": "validate",
    **MEDIA_REJECTION_REASONS,
}


@dataclass(frozen=True)
class PreprocessOptions:
    """How to preprocess. Invalid values raise :class:`ConfigError` at construction."""

    unicode_form: UnicodeForm = "NFC"
    min_words: int = 1
    id_field: str = "_id"
    text_field: str = "text"
    title_field: str = "title"
    metadata_field: str = "metadata"
    kind: str | None = None  # force a parser (one of KINDS) instead of detecting it
    max_bytes: int = 200 * 1024 * 1024
    # media validation limits (``ImageLimits``, ``AudioLimits``; settings image_*, audio_*)
    image_min_side: int = DEFAULT_IMAGE_LIMITS.min_side
    image_max_side: int = DEFAULT_IMAGE_LIMITS.max_side
    image_max_pixels: int = DEFAULT_IMAGE_LIMITS.max_pixels
    audio_min_seconds: float = DEFAULT_AUDIO_LIMITS.min_seconds
    audio_max_seconds: float = DEFAULT_AUDIO_LIMITS.max_seconds
    audio_silence_dbfs: float = DEFAULT_AUDIO_LIMITS.silence_dbfs

    def __post_init__(self) -> None:
        if self.unicode_form not in ("NFC", "NFKC"):
            raise ConfigError(f"unicode_form must be NFC or NFKC, not {self.unicode_form!r}")
        if self.kind is not None and self.kind not in KINDS:
            raise ConfigError(f"kind must be one of {', '.join(KINDS)}, not {self.kind!r}")
        if self.min_words < 0 or self.max_bytes < 1:
            raise ConfigError("min_words must be >= 0 and max_bytes >= 1")

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> PreprocessOptions:
        """Options from the shared settings (``unicode_form``, ``min_words``) plus overrides;
        an override of ``None`` means "not given" and keeps the default."""
        base = cls(unicode_form=settings.unicode_form, min_words=settings.min_words,
                   **{name: getattr(settings, name) for name in _MEDIA_LIMIT_FIELDS})
        return replace(base, **{k: v for k, v in overrides.items() if v is not None})

    @property
    def media_limits(self) -> MediaLimits:
        """The image and audio validation limits these options carry."""
        return MediaLimits(
            ImageLimits(self.image_min_side, self.image_max_side, self.image_max_pixels),
            replace(DEFAULT_AUDIO_LIMITS, min_seconds=self.audio_min_seconds,
                    max_seconds=self.audio_max_seconds,
                    silence_dbfs=self.audio_silence_dbfs))

    @property
    def record_fields(self) -> RecordFields:
        """The declared record field names."""
        return RecordFields(self.id_field, self.text_field, self.title_field,
                            self.metadata_field)


_MEDIA_LIMIT_FIELDS: Final = ("image_min_side", "image_max_side", "image_max_pixels",
                               "audio_min_seconds", "audio_max_seconds", "audio_silence_dbfs")


@dataclass(frozen=True)
class PreprocessResult:
    """What came out of one input: zero or more documents, zero or more rejections."""

    documents: list[Document] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)

    def extend(self, other: PreprocessResult) -> None:
        """Append another result's documents and rejections to this one."""
        self.documents.extend(other.documents)
        self.rejections.extend(other.rejections)


DEFAULT_OPTIONS: Final = PreprocessOptions()


def preprocess_bytes(
    data: bytes, source: str, options: PreprocessOptions = DEFAULT_OPTIONS
) -> PreprocessResult:
    """Turn the bytes of one file into documents. ``source`` is its id (a relative path).

    The kind is ``options.kind`` when set, else detected (:func:`detect_kind`). Plain text,
    Markdown, HTML and PDF give at most one document; JSON and JSONL give one per record.
    A media file (an image or audio suffix, see ``preprocess/media.py``, or binary bytes
    with an image or audio signature under a name without one, as a document written over
    HTTP) gives one image or audio document, unless ``options.kind`` forces a text parser.
    """
    if len(data) > options.max_bytes:
        return _rejected(source, "too_large", "decode",
                         f"{len(data)} bytes > limit {options.max_bytes}")
    modality = None if options.kind else content_modality(source, data)
    if modality is not None:
        media = media_document(data, source, modality, options.media_limits)
        if isinstance(media, Rejection):
            return PreprocessResult(rejections=[media])
        return PreprocessResult(documents=[media])
    kind = options.kind or detect_kind(source, data)
    if kind == BINARY:
        return _rejected(source, "binary", "decode", f"{binary_signature(data)} signature")
    if kind == "pdf":
        return _from_pdf(data, source, options)
    decoded = decode_bytes(data)
    if isinstance(decoded, DecodeFailure):
        return _rejected(source, decoded.reason, "decode", decoded.detail)
    metadata = {"encoding": decoded.encoding, "kind": kind}
    if kind in ("json", "jsonl"):
        return _from_records(decoded.text, source, kind, options)
    if kind == "html":
        return _from_html(decoded.text, source, metadata, options)
    return _finish(decoded.text, source, source, options, metadata=metadata)


def preprocess_text(
    text: str,
    doc_id: str,
    options: PreprocessOptions = DEFAULT_OPTIONS,
    *,
    title: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> PreprocessResult:
    """Clean and validate in-memory text as the document ``doc_id`` (no decoding step)."""
    return _finish(text, doc_id, doc_id, options, title=title, metadata=dict(metadata or {}))


def preprocess_file(
    path: Path, root: Path | None = None, options: PreprocessOptions = DEFAULT_OPTIONS
) -> PreprocessResult:
    """Read and preprocess one file; its id is its path relative to ``root`` (POSIX style).

    An I/O error gives an ``unreadable`` rejection; a file over ``max_bytes`` is refused as
    ``too_large`` before it is read.
    """
    source = source_id(path, root)
    try:
        size = path.stat().st_size
        if size > options.max_bytes:
            return _rejected(source, "too_large", "decode",
                             f"{size} bytes > limit {options.max_bytes}")
        with path.open("rb") as handle:
            data = handle.read(options.max_bytes + 1)  # +1: files that grow or lie
    except OSError as exc:
        return _rejected(source, "unreadable", "decode", f"{type(exc).__name__}: {exc}")
    return preprocess_bytes(data, source, options)


def source_id(path: Path, root: Path | None) -> str:
    """``path`` relative to ``root`` with forward slashes; the path itself when outside."""
    if root is None:
        return PurePath(path).as_posix()
    relative = os.path.relpath(os.path.abspath(path), os.path.abspath(root))
    if relative == os.pardir or relative.startswith(os.pardir + os.sep):
        return PurePath(path).as_posix()
    return PurePath(relative).as_posix()


def _rejected(source: str, reason: str, stage: str, detail: str) -> PreprocessResult:
    return PreprocessResult(rejections=[Rejection(source, reason, stage, detail)])


def _from_pdf(data: bytes, source: str, options: PreprocessOptions) -> PreprocessResult:
    from embedops.preprocess.pdf import PdfFailure, pdf_to_text  # pypdf: on first PDF only

    extracted = pdf_to_text(data)
    if isinstance(extracted, PdfFailure):
        return _rejected(source, extracted.reason, "parse", extracted.detail)
    metadata = {"kind": "pdf", "pages": extracted.pages}
    return _finish(extracted.text, source, source, options, title=extracted.title,
                   metadata=metadata)


def _from_html(
    markup: str, source: str, metadata: dict[str, Any], options: PreprocessOptions
) -> PreprocessResult:
    from embedops.preprocess.html import HtmlFailure, html_to_text  # bs4: on first HTML only

    page = html_to_text(markup)
    if isinstance(page, HtmlFailure):
        return _rejected(source, "malformed_html", "parse", page.detail)
    return _finish(page.text, source, source, options, title=page.title, metadata=metadata)


def _from_records(
    text: str, source: str, kind: str, options: PreprocessOptions
) -> PreprocessResult:
    parse = parse_jsonl if kind == "jsonl" else parse_json
    result = PreprocessResult()
    for item in parse(text, source, options.record_fields):
        result.extend(_from_record(item, source, options))
    if not (result.documents or result.rejections):
        return _rejected(source, "empty", "parse", "no records in the file")
    return result


def _from_record(
    item: RawRecord | RecordFailure, source: str, options: PreprocessOptions
) -> PreprocessResult:
    if isinstance(item, RecordFailure):
        return _rejected(item.locator, item.reason, "parse", item.detail)
    return _finish(item.text, item.id, source, options, title=item.title,
                   metadata=item.metadata, locator=item.locator)


def _finish(
    raw: str,
    doc_id: str,
    source: str,
    options: PreprocessOptions,
    *,
    title: str | None = None,
    metadata: dict[str, Any],
    locator: str | None = None,
) -> PreprocessResult:
    """Binary check on the raw text, then clean, then validate; one document or rejection."""
    where = locator or doc_id
    problem = looks_binary(raw)
    if problem is None:
        text = clean_text(raw, options.unicode_form)
        problem = validate_text(text, options.min_words)
    if problem is not None:
        return _rejected(where, problem.reason, "validate", problem.detail)
    document = Document(id=doc_id, text=text, metadata=metadata,
                        title=_clean_title(title, options), source=source)
    return PreprocessResult(documents=[document])


def _clean_title(title: str | None, options: PreprocessOptions) -> str | None:
    if title is None:
        return None
    return " ".join(clean_text(title, options.unicode_form).split()) or None

