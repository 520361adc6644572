"""Thumbnails of image search hits (``GET /ui/api/thumbnails/{c}/{doc}``): made from the
source file of an ingested image while it still holds the embedded pixels; never from a
path the ledger does not know, a changed file, or a document of another modality."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import embedops
from embedops.config import load_settings
from embedops.server import create_app
from tests.server.live import live_server

Image = pytest.importorskip("PIL.Image")


def _png(path: Path, colour: tuple[int, int, int], size: tuple[int, int]) -> None:
    image = Image.new("RGB", size, colour)
    for x in range(0, size[0], 7):  # a stripe, so the pixels are not one colour
        image.putpixel((x, size[1] // 2), (255 - colour[0], 0, 0))
    image.save(path)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    patch = pytest.MonkeyPatch()
    patch.setenv("EMBEDOPS_ENABLE_TEST_MODELS", "1")  # testing/pixels-48 is test-only
    root = tmp_path_factory.mktemp("thumbs")
    images = root / "images"
    images.mkdir()
    _png(images / "red.png", (200, 30, 30), (640, 480))
    _png(images / "blue.png", (30, 30, 200), (300, 900))
    notes = root / "notes"
    notes.mkdir()
    (notes / "note.txt").write_text("a note about pictures of red squares")
    with embedops.open(root / "store") as client:
        client.ingest([images], "photos", model="testing/pixels-48")
        client.ingest([notes], "notes", model="testing/hash-64")
    settings = load_settings(store=root / "store")
    with live_server(create_app(settings, open_store=True)) as url:
        yield url, images
    patch.undo()


def test_an_ingested_image_gets_a_small_jpeg(served: tuple[str, Path]) -> None:
    url, _ = served
    for name, size in (("red.png", (640, 480)), ("blue.png", (300, 900))):
        answer = httpx.get(f"{url}/ui/api/thumbnails/photos/{_photo_id(url, name)}")
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"] == "image/jpeg"
        with Image.open(io.BytesIO(answer.content)) as thumb:
            assert max(thumb.size) == 160
            assert thumb.size[0] / thumb.size[1] == pytest.approx(size[0] / size[1], rel=0.02)


def test_only_the_embedded_image_is_served(served: tuple[str, Path]) -> None:
    url, images = served
    photo = _photo_id(url, "blue.png")
    # not a document of the ledger, even when a point's payload names a real file
    assert httpx.get(f"{url}/ui/api/thumbnails/photos/missing.png").status_code == 404
    (note_id,) = [h["doc_id"] for h in httpx.post(
        f"{url}/collections/notes/search", json={"query": "red squares"}).json()["hits"]]
    assert httpx.get(f"{url}/ui/api/thumbnails/notes/{note_id}").status_code == 404
    # a source file changed since it was embedded: refused, named
    _png(images / "blue.png", (30, 200, 30), (300, 900))
    changed = httpx.get(f"{url}/ui/api/thumbnails/photos/{photo}")
    assert changed.status_code == 409
    assert changed.json()["error"]["code"] == "source_changed"
    # and a source that is gone
    (images / "blue.png").unlink()
    assert httpx.get(f"{url}/ui/api/thumbnails/photos/{photo}").status_code == 404


def _photo_id(url: str, name: str) -> str:
    """The document id the folder ingest gave the image ``name``."""
    with httpx.Client(base_url=url) as http:
        for doc_id in (name, f"images/{name}"):
            if http.get(f"/collections/photos/documents/{doc_id}").status_code == 200:
                return doc_id
    raise AssertionError(f"no document for {name}")
