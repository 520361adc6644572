"""Fixtures of the multimodal tests: a tiny random CLIP directory (built once per
session) and a mixed folder of text, images and audio."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.multimodal.media_files import audio_bytes, encode, picture, tone
from tests.multimodal.tiny_clip import build_tiny_clip


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_clip(tmp_path_factory.mktemp("tiny-clip") / "clip")


@pytest.fixture
def mixed_folder(tmp_path: Path) -> Path:
    """2 text files, 4 images (PNG, JPEG, WebP, animated GIF), 3 sounds (WAV, FLAC,
    Ogg), and a corrupt image and a silent sound."""
    root = tmp_path / "mixed"
    (root / "notes").mkdir(parents=True)
    (root / "notes" / "refunds.txt").write_text("Refunds are paid back within five days.")
    (root / "notes" / "cats.md").write_text("# Cats\n\nCats sleep most of the day.")
    (root / "pics").mkdir()
    (root / "pics" / "one.png").write_bytes(encode(picture(1), "PNG"))
    (root / "pics" / "two.jpg").write_bytes(encode(picture(2), "JPEG", quality=92))
    (root / "pics" / "three.webp").write_bytes(encode(picture(3), "WEBP", lossless=True))
    frames = [picture(4), picture(5)]
    (root / "pics" / "four.gif").write_bytes(
        encode(frames[0], "GIF", save_all=True, append_images=frames[1:]))
    (root / "pics" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    (root / "sounds").mkdir()
    (root / "sounds" / "low.wav").write_bytes(audio_bytes(tone(220)))
    (root / "sounds" / "mid.flac").write_bytes(audio_bytes(tone(880), fmt="FLAC"))
    (root / "sounds" / "high.ogg").write_bytes(
        audio_bytes(tone(3000, noise=0.05), fmt="OGG", subtype="VORBIS"))
    (root / "sounds" / "quiet.wav").write_bytes(audio_bytes(tone(440, amp=0.0)))
    return root
