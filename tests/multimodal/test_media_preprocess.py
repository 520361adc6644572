"""Decoding and validating media: the bad-media battery becomes typed rejections, good
media become documents with their metadata, the content hash is that of the decoded
pixels or samples, and no bytes make preprocessing raise."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from embedops.preprocess.audio import AudioLimits, decode_audio
from embedops.preprocess.images import ImageLimits, decode_image
from embedops.preprocess.media import (
    MEDIA_SUFFIXES,
    media_content_hash,
    media_modality,
    sniff_modality,
)
from embedops.preprocess.pipeline import REJECTION_REASONS, preprocess_bytes
from tests.multimodal.media_files import (
    audio_bytes,
    bad_media,
    encode,
    picture,
    png_with_text,
    tone,
)

BATTERY = bad_media()


@pytest.mark.parametrize("name", sorted(BATTERY))
def test_bad_media_become_rejections_with_a_reason(name: str) -> None:
    data, reason = BATTERY[name]
    result = preprocess_bytes(data, name)
    assert not result.documents
    [rejection] = result.rejections
    assert (rejection.source, rejection.reason) == (name, reason), rejection.detail
    assert rejection.reason in REJECTION_REASONS and rejection.detail


def test_an_image_becomes_a_document_with_its_bytes_and_dimensions() -> None:
    data = encode(picture(1, (120, 80)), "PNG")
    [doc] = preprocess_bytes(data, "pics/a.png").documents
    assert (doc.id, doc.modality, doc.data, doc.text) == ("pics/a.png", "image", data, "")
    assert doc.metadata["width"] == 120 and doc.metadata["height"] == 80
    assert doc.metadata["format"] == "png" and doc.metadata["bytes"] == len(data)


def test_a_sound_becomes_a_document_with_its_duration() -> None:
    data = audio_bytes(tone(440, seconds=1.5, rate=22050), rate=22050, fmt="FLAC")
    [doc] = preprocess_bytes(data, "a.flac").documents
    assert doc.modality == "audio" and doc.data == data
    assert doc.metadata["duration"] == 1.5 and doc.metadata["sample_rate"] == 22050
    assert doc.metadata["format"] == "flac" and doc.metadata["channels"] == 1


def test_mp3_decodes_and_finds_its_wav_original() -> None:
    from embedops.embedders.testing_media import AudioBandsEmbedder

    samples = tone(660, seconds=1.2, rate=44100, noise=0.02)
    mp3 = audio_bytes(samples, rate=44100, fmt="MP3", subtype="MPEG_LAYER_III")
    assert sniff_modality(mp3) == "audio"
    [doc] = preprocess_bytes(mp3, "clip.mp3").documents
    assert (doc.metadata["format"], doc.metadata["codec"]) == ("mp3", "mpeg_layer_iii")
    assert abs(doc.metadata["duration"] - 1.2) < 0.1  # the decoder's padding aside
    others = [audio_bytes(tone(f, seconds=1.2, rate=44100), rate=44100) for f in (220, 1500)]
    index = AudioBandsEmbedder(32).embed(
        [audio_bytes(samples, rate=44100), *others], "document")
    query = AudioBandsEmbedder(32).embed([mp3], "query")[0]
    assert int(np.argmax(index @ query)) == 0


def test_gif_takes_the_first_frame_and_counts_frames() -> None:
    frames = [picture(4), picture(5), picture(6)]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:])
    decoded = decode_image(data)
    assert not hasattr(decoded, "reason")
    assert decoded.frames == 3  # type: ignore[union-attr]
    first = decode_image(encode(frames[0], "GIF"))
    assert decoded.digest == first.digest  # type: ignore[union-attr]


def test_png_caption_becomes_the_title() -> None:
    data = png_with_text(picture(1), "Description", "a striped square")
    [doc] = preprocess_bytes(data, "c.png").documents
    assert doc.title == "a striped square"


def test_same_pixels_re_encoded_keep_the_content_hash() -> None:
    img = picture(7)
    a = preprocess_bytes(encode(img, "PNG", compress_level=1), "x.png").documents[0]
    b = preprocess_bytes(png_with_text(img, "Title", "new caption"), "x.png").documents[0]
    c = preprocess_bytes(encode(img, "WEBP", lossless=True), "x.webp").documents[0]
    assert a.data != b.data and media_content_hash(a) == media_content_hash(b) \
        == media_content_hash(c)
    changed = img.copy()
    changed.putpixel((0, 0), (0, 0, 0) if img.getpixel((0, 0)) != (0, 0, 0) else (9, 9, 9))
    d = preprocess_bytes(encode(changed, "PNG"), "x.png").documents[0]
    assert media_content_hash(d) != media_content_hash(a)


def test_exif_orientation_is_applied_before_hashing() -> None:
    img = picture(8, (64, 32))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise when shown
    rotated = decode_image(encode(img, "JPEG", quality=95, exif=exif.tobytes()))
    assert (rotated.width, rotated.height) == (32, 64)  # type: ignore[union-attr]


def test_same_samples_in_another_container_keep_the_content_hash() -> None:
    samples = tone(330, seconds=0.8)
    wav = preprocess_bytes(audio_bytes(samples), "a.wav").documents[0]
    flac = preprocess_bytes(audio_bytes(samples, fmt="FLAC"), "a.flac").documents[0]
    titled = preprocess_bytes(audio_bytes(samples, title="take 2"), "a.wav").documents[0]
    assert media_content_hash(wav) == media_content_hash(flac) == media_content_hash(titled)
    louder = preprocess_bytes(audio_bytes(samples * 1.5), "a.wav").documents[0]
    assert media_content_hash(louder) != media_content_hash(wav)


def test_limits_are_configurable() -> None:
    data = encode(picture(1, (64, 64)), "PNG")
    assert decode_image(data, ImageLimits(min_side=100)).reason == "image_too_small"  # type: ignore[union-attr]
    assert decode_image(data, ImageLimits(max_pixels=1000)).reason == "image_too_large"  # type: ignore[union-attr]
    wav = audio_bytes(tone(440, seconds=3))
    assert decode_audio(wav, AudioLimits(max_seconds=2)).reason == "audio_too_long"  # type: ignore[union-attr]
    quiet = audio_bytes(tone(440, amp=0.01))
    assert decode_audio(quiet, AudioLimits(silence_dbfs=-30)).reason == "silent"  # type: ignore[union-attr]
    assert not hasattr(decode_audio(quiet), "reason")


def test_stereo_is_kept_and_mixed_down_for_models() -> None:
    left, right = tone(220), tone(440)
    decoded = decode_audio(audio_bytes(np.stack([left, right], axis=1)))
    assert decoded.channels == 2  # type: ignore[union-attr]
    assert decoded.mono().shape == left.shape  # type: ignore[union-attr]


def test_modality_by_suffix_and_by_signature() -> None:
    assert media_modality("a/B.JPG") == "image" and media_modality("x.flac") == "audio"
    assert media_modality("notes.txt") is None and media_modality(".png") is None
    assert set(MEDIA_SUFFIXES.values()) == {"image", "audio"}
    assert sniff_modality(encode(picture(1), "PNG")) == "image"
    assert sniff_modality(encode(picture(1), "WEBP")) == "image"
    assert sniff_modality(audio_bytes(tone(200))) == "audio"
    assert sniff_modality(audio_bytes(tone(200), fmt="FLAC")) == "audio"
    assert sniff_modality(b"hello") is None


def test_a_text_parser_forced_by_the_options_wins_over_the_suffix() -> None:
    from embedops.preprocess.pipeline import PreprocessOptions

    result = preprocess_bytes(b"plain words in a file", "odd.png",
                              PreprocessOptions(kind="text"))
    assert result.documents[0].modality == "text"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=4096),
       name=st.sampled_from(sorted(f"f{s}" for s in MEDIA_SUFFIXES)))
def test_no_bytes_make_media_preprocessing_raise(data: bytes, name: str) -> None:
    result = preprocess_bytes(data, name)
    assert len(result.documents) + len(result.rejections) == 1


@settings(max_examples=60, deadline=None)
@given(cut=st.integers(min_value=0, max_value=4000), flip=st.integers(0, 255),
       fmt=st.sampled_from(["PNG", "JPEG", "WEBP", "GIF", "WAV", "FLAC", "OGG"]))
def test_damaged_real_files_never_raise(cut: int, flip: int, fmt: str) -> None:
    if fmt in ("WAV", "FLAC", "OGG"):
        good = audio_bytes(tone(440), fmt=fmt, subtype="VORBIS" if fmt == "OGG" else "PCM_16")
    else:
        good = encode(picture(3), fmt)
    damaged = bytearray(good[: max(1, len(good) - cut)])
    damaged[len(damaged) // 2] ^= flip
    result = preprocess_bytes(bytes(damaged), f"x.{fmt.lower()}")
    assert len(result.documents) + len(result.rejections) == 1
