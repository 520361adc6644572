"""The media limits are settings (`image_min_side`, `image_max_side`, `image_max_pixels`,
`audio_min_seconds`, `audio_max_seconds`, `audio_silence_dbfs`) carried by
PreprocessOptions: their defaults are the decoders' own, and changing one changes what
is accepted, in the pipeline and in an `embedops ingest` run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from embedops.config import load_settings
from embedops.errors import ConfigError
from embedops.preprocess.audio import DEFAULT_AUDIO_LIMITS
from embedops.preprocess.images import DEFAULT_IMAGE_LIMITS
from embedops.preprocess.pipeline import PreprocessOptions, preprocess_bytes
from tests.e2e.conftest import Cli
from tests.multimodal.media_files import audio_bytes, encode, picture, tone

IMAGE = encode(picture(1), "PNG")  # 96 x 72
SOUND = audio_bytes(tone(440))  # 1 s, peak 0.4 (about -8 dBFS)


def _outcome(data: bytes, source: str, **settings: object) -> str:
    options = PreprocessOptions.from_settings(load_settings(**settings))
    result = preprocess_bytes(data, source, options)
    return result.rejections[0].reason if result.rejections else "accepted"


def test_defaults_are_the_decoders_limits() -> None:
    limits = PreprocessOptions.from_settings(load_settings()).media_limits
    assert limits.image == DEFAULT_IMAGE_LIMITS and limits.audio == DEFAULT_AUDIO_LIMITS
    assert _outcome(IMAGE, "a.png") == "accepted" and _outcome(SOUND, "a.wav") == "accepted"


@pytest.mark.parametrize(("setting", "value", "data", "source", "reason"), [
    ("image_min_side", 80, IMAGE, "a.png", "image_too_small"),
    ("image_max_side", 90, IMAGE, "a.png", "image_too_large"),
    ("image_max_pixels", 96 * 72 - 1, IMAGE, "a.png", "image_too_large"),
    ("audio_max_seconds", 0.5, SOUND, "a.wav", "audio_too_long"),
    ("audio_min_seconds", 2.0, SOUND, "a.wav", "audio_too_short"),
    ("audio_silence_dbfs", -6.0, SOUND, "a.wav", "silent"),
])
def test_each_setting_changes_what_is_accepted(setting: str, value: object, data: bytes,
                                               source: str, reason: str) -> None:
    assert _outcome(data, source) == "accepted"
    assert _outcome(data, source, **{setting: value}) == reason


def test_raised_limits_accept_what_the_defaults_refuse() -> None:
    tiny = encode(Image.new("RGB", (8, 8), "red"), "PNG")
    assert _outcome(tiny, "t.png") == "image_too_small"
    assert _outcome(tiny, "t.png", image_min_side=4) == "accepted"
    whisper = audio_bytes(tone(440, amp=0.0005))  # peak about -66 dBFS
    assert _outcome(whisper, "w.wav") == "silent"
    assert _outcome(whisper, "w.wav", audio_silence_dbfs=-80.0) == "accepted"


def test_limits_beyond_what_the_decoders_allow_are_refused() -> None:
    with pytest.raises(ConfigError, match="image_max_pixels"):
        load_settings(image_max_pixels=200_000_000)
    with pytest.raises(ConfigError, match="audio_silence_dbfs"):
        load_settings(audio_silence_dbfs=3.0)


def test_an_ingest_run_applies_the_configured_limits(tmp_path: Path) -> None:
    folder = tmp_path / "pics"
    folder.mkdir()
    (folder / "small.png").write_bytes(IMAGE)
    (folder / "large.png").write_bytes(encode(picture(2, size=(160, 120)), "PNG"))
    cli = Cli(tmp_path / "store")
    args = ("ingest", str(folder), "--model", "testing/pixels-48", "--collection", "p",
            "--json")
    summary = json.loads(cli.run(*args, env_extra={"EMBEDOPS_IMAGE_MIN_SIDE": "100"}).stdout)
    assert summary["documents_new"] == 1 and summary["documents_failed"] == 1
    letters = json.loads(cli.run("dlq", "list", "--json").stdout)
    assert [(d["doc_id"], d["reason"]) for d in letters] == [("small.png",
                                                              "image_too_small")]
