"""Images and audio on the real-time path over real HTTP: `PUT /documents/{id}` with
`content_base64` of a PNG or WAV embeds it with the collection's model (the tiny CLIP,
a test audio model) and it is searchable at once; media written into a text-only
collection is refused up front (422 naming the collection's modality); bad media and
the configured limits give failed writes with their reason."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from embedops.config import load_settings
from embedops.server import create_app
from tests.multimodal.media_files import audio_bytes, encode, picture, tone
from tests.server.live import live_server

SIZE = (128, 96)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture
def http(tmp_path: Path, mixed_folder: Path, tiny_clip: Path) -> Iterator[httpx.Client]:
    import embedops

    store = tmp_path / "store"
    with embedops.open(store) as client:
        client.ingest([mixed_folder / "notes"], "docs", model="testing/hash-64")
        client.ingest([mixed_folder / "pics"], "clip", model=f"clip:{tiny_clip}")
        client.ingest([mixed_folder / "sounds"], "sounds", model="testing/audio-32")
    # the limits are settings: 96 x 72 images (the folder's) are below this minimum
    settings = load_settings(store=str(store), model="testing/hash-64", image_min_side=90)
    with live_server(create_app(settings, open_store=True)) as url, \
            httpx.Client(base_url=url, timeout=60) as client:
        yield client


def _put(http: httpx.Client, collection: str, doc_id: str, data: bytes,
         **extra: object) -> httpx.Response:
    return http.put(f"/collections/{collection}/documents/{doc_id}?wait=true",
                    json={"content_base64": _b64(data), **extra})


def test_an_image_put_is_embedded_by_the_collections_clip(http: httpx.Client) -> None:
    image = encode(picture(21, SIZE), "PNG")
    done = _put(http, "clip", "uploads/red-car", image, metadata={"shop": "north"})
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "embedded" and done.json()["chunks"] == 1
    found = http.post("/collections/clip/search",
                      json={"image_base64": _b64(image), "k": 1, "exact": True})
    hit = found.json()["hits"][0]
    assert hit["doc_id"] == "uploads/red-car"
    payload = hit["payload"]
    assert (payload["kind"], payload["width"], payload["height"]) == ("image", 128, 96)
    assert payload["shop"] == "north" and payload["format"] == "png"
    # the same pixels re-encoded: not a content change
    again = _put(http, "clip", "uploads/red-car", encode(picture(21, SIZE), "WEBP",
                                                          lossless=True))
    assert again.status_code == 200 and again.json()["status"] == "embedded"
    text = http.post("/collections/clip/search", json={"query": "a red car", "k": 10})
    assert "uploads/red-car" in {h["doc_id"] for h in text.json()["hits"]}


def test_an_audio_put_is_embedded_and_found_by_sound(http: httpx.Client) -> None:
    sound = audio_bytes(tone(1500, seconds=0.8, noise=0.02))
    done = _put(http, "sounds", "beep.wav", sound)
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "embedded"
    found = http.post("/collections/sounds/search/media?modality=audio&k=1", content=sound)
    hit = found.json()["hits"][0]
    assert hit["doc_id"] == "beep.wav" and hit["payload"]["duration"] == 0.8


def test_media_into_a_text_collection_is_refused_up_front(http: httpx.Client) -> None:
    refused = _put(http, "docs", "photo", encode(picture(22, SIZE), "PNG"))
    assert refused.status_code == 422, refused.text
    assert "unsupported_modality" in refused.text
    assert "'docs'" in refused.text and "embeds text documents" in refused.text
    sound = http.put("/collections/clip/documents/voice",
                     json={"content_base64": _b64(audio_bytes(tone(300)))})
    assert sound.status_code == 422 and "embeds text and image" in sound.text
    new = _put(http, "brand-new", "photo.png", encode(picture(23, SIZE), "PNG"))
    assert new.status_code == 422  # the served model (text) would create it
    assert http.get("/collections/brand-new").status_code == 404  # not created
    missing = http.get("/collections/docs/documents/photo")
    assert missing.status_code == 404  # nothing was queued
    text = http.put("/collections/docs/documents/t?wait=true",
                    json={"content_base64": _b64("A plain text file.".encode("utf-16"))})
    assert text.status_code == 200 and text.json()["status"] == "embedded"


def _failed(response: httpx.Response) -> str:
    """The reason of a failed write (its status reads ``stage: reason (detail)``)."""
    assert response.status_code == 200, response.text
    item = response.json()
    assert item["status"] == "failed", item
    return str(item["reason"]).split(": ", 1)[1].split(" ", 1)[0]


def test_bad_media_and_the_configured_limits_fail_with_their_reason(
        http: httpx.Client) -> None:
    broken = _put(http, "clip", "broken", b"\x89PNG\r\n\x1a\n" + b"\x00" * 60)
    assert _failed(broken) == "corrupt_image"
    # the server's image_min_side is 90: 96 x 72 is refused, 120 x 100 taken
    assert _failed(_put(http, "clip", "small", encode(picture(24), "PNG"))) \
        == "image_too_small"
    large = _put(http, "clip", "large", encode(picture(25, (120, 100)), "PNG"))
    assert large.json()["status"] == "embedded"
    assert _failed(_put(http, "sounds", "hush", audio_bytes(tone(440, amp=0.0)))) == "silent"


@pytest.mark.parametrize(("data", "expected"), [
    (encode(picture(1), "WEBP", lossless=True), "image"),
    (encode(picture(1), "JPEG"), "image"),
    (audio_bytes(tone(300)), "audio"),
    (audio_bytes(tone(300), fmt="FLAC"), "audio"),
    (b"FORM 1040: how to file.", None),
    (b"ID3 tags name the artist.", None),
    ("A UTF-16 text.".encode("utf-16"), None),
])
def test_the_modality_of_bytes_without_a_suffix(data: bytes, expected: str | None) -> None:
    from embedops.preprocess.media import content_modality

    assert content_modality("doc-17", data) == expected
    assert content_modality("doc-17.txt", data) == expected  # .txt is not a media suffix
    assert content_modality("clip.wav", b"anything") == "audio"
