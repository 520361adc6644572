"""Preprocessing: bytes of any file -> cleaned, validated documents (or typed rejections).

Stages: :mod:`~embedops.preprocess.decode` (bytes -> text), the parsers
(:mod:`~embedops.preprocess.html`, :mod:`~embedops.preprocess.pdf`,
:mod:`~embedops.preprocess.records`), :mod:`~embedops.preprocess.clean` and
:mod:`~embedops.preprocess.validate`, driven by :mod:`~embedops.preprocess.pipeline`.
"""

from embedops.preprocess.clean import clean_text
from embedops.preprocess.decode import Decoded, DecodeFailure, decode_bytes
from embedops.preprocess.kinds import KINDS, detect_kind
from embedops.preprocess.pipeline import (
    REJECTION_REASONS,
    PreprocessOptions,
    PreprocessResult,
    preprocess_bytes,
    preprocess_file,
    preprocess_text,
)
from embedops.preprocess.validate import validate_text

__all__ = [
    "KINDS",
    "REJECTION_REASONS",
    "DecodeFailure",
    "Decoded",
    "PreprocessOptions",
    "PreprocessResult",
    "clean_text",
    "decode_bytes",
    "detect_kind",
    "preprocess_bytes",
    "preprocess_file",
    "preprocess_text",
    "validate_text",
]
