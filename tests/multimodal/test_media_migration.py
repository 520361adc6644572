"""Media collections under re-embedding and model migration: the ledger keeps a media
document's caption and metadata but not its bytes, so a re-embed from the ledger never
embeds an image from its caption (a silent change of space); it fails as ``no_content``
and the source files, ingested into the new collection, complete it. A CLIP migration
moves both towers at once."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

import embedops
from embedops.freshness.reembed import reembed_documents
from embedops.migrate import Migrations
from tests.multimodal.media_files import encode, picture, png_with_text
from tests.multimodal.tiny_clip import perturb_tower


def _letters(client: embedops.Client, collection: str) -> dict[str, str]:
    assert client.ledger is not None
    return {d.doc_id: d.reason for d in client.ledger.dead_letters(collection)}


def _gallery(root: Path) -> Path:
    """Two text notes, a captioned PNG and a plain JPEG."""
    (root / "notes").mkdir(parents=True)
    (root / "notes" / "cars.txt").write_text("a red car parked by the sea")
    (root / "notes" / "cats.txt").write_text("the striped cat sleeps in the sun")
    (root / "pics").mkdir()
    (root / "pics" / "caption.png").write_bytes(
        png_with_text(picture(11), "Description", "a red car"))
    (root / "pics" / "plain.jpg").write_bytes(encode(picture(12), "JPEG", quality=90))
    return root


def test_reembedding_media_from_the_ledger_fails_clearly(tmp_path: Path) -> None:
    folder = _gallery(tmp_path / "gallery")
    with embedops.open(tmp_path / "store") as client:
        client.ingest([folder], "photos", model="testing/pixels-48")
        before = client.get_points("photos", ["pics/caption.png#0"], with_vectors=True)[0]
        summary = reembed_documents(client, "photos", ["pics/caption.png", "pics/plain.jpg"])
        assert summary.chunks_embedded == 0 and summary.documents_failed == 2
        assert _letters(client, "photos") == {"pics/caption.png": "no_content",
                                              "pics/plain.jpg": "no_content"}
        after = client.get_points("photos", ["pics/caption.png#0"], with_vectors=True)[0]
        assert np.array_equal(after.vector, before.vector)  # the old vector is kept


def test_a_clip_migration_moves_both_towers_and_takes_images_from_the_sources(
        tmp_path: Path, tiny_clip: Path) -> None:
    folder = _gallery(tmp_path / "gallery")
    v1, v2 = tmp_path / "clip-v1", tmp_path / "clip-v2"
    shutil.copytree(tiny_clip, v1)
    shutil.copytree(tiny_clip, v2)
    perturb_tower(v2, "text")
    perturb_tower(v2, "image")
    with embedops.open(tmp_path / "store") as client:
        client.ingest([folder], "gallery-v1", model=f"clip:{v1}")
        client.create_alias("gallery", "gallery-v1")
        old = client.get_collection("gallery-v1").fingerprint
        migrations = Migrations(client)
        m = migrations.start("gallery", f"clip:{v2}")
        assert migrations.backfill("gallery").phase == "ready"
        # text comes from the ledger; the images are refused, never embedded from a caption
        assert {p.payload["doc_id"] for page in client.scan(m.shadow) for p in page} == {
            "notes/cars.txt", "notes/cats.txt"}
        assert _letters(client, m.shadow) == {"pics/caption.png": "no_content",
                                              "pics/plain.jpg": "no_content"}
        # the sources, ingested into the new collection, complete it: the images are
        # embedded, the text (already backfilled, unchanged) is not embedded again
        summary = client.ingest([folder], m.shadow)
        assert (summary.documents_new, summary.chunks_embedded) == (2, 2)
        assert client.count(m.shadow) == client.count("gallery-v1") == 4
        assert _letters(client, m.shadow) == {}
        new = client.get_collection(m.shadow).fingerprint
        assert new[:8] != old[:8] and new[8:] != old[8:]  # both towers moved together
        migrations.swap("gallery", force=True)
        query = encode(picture(12), "PNG")
        top = client.search(query, "gallery", k=1, exact=True)[0]
        assert top.doc_id == "pics/plain.jpg"
        assert top.payload["fingerprint"] == new
