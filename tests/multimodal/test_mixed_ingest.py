"""A mixed folder through the real pipeline: each file goes to the model of its modality
and the collection configured for it; bad media become dead letters; re-runs are
idempotent by decoded content; text and images share a CLIP collection under the
cross-modal alignment guard."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

import embedops
from embedops.errors import ConfigError, FingerprintMismatch, ModelConflict
from embedops.ingest.modalities import Route
from tests.multimodal.media_files import audio_bytes, encode, picture, png_with_text, tone
from tests.multimodal.tiny_clip import perturb_tower

ROUTES = [Route("text", "docs", "testing/hash-64"),
          Route("image", "photos", "testing/pixels-48"),
          Route("audio", "sounds", "testing/audio-32")]


def _route(client: embedops.Client, folder: Path):  # type: ignore[no-untyped-def]
    return client.ingest_by_modality([folder], ROUTES)


def _doc_ids(client: embedops.Client, collection: str) -> set[str]:
    return {p.payload["doc_id"] for page in client.scan(collection) for p in page}


def _letters(client: embedops.Client, collection: str) -> dict[str, str]:
    assert client.ledger is not None
    return {d.doc_id: d.reason for d in client.ledger.dead_letters(collection)}


def test_a_mixed_folder_is_routed_by_modality(tmp_path: Path, mixed_folder: Path) -> None:
    with embedops.open(tmp_path / "store") as client:
        summaries = _route(client, mixed_folder)
        assert _doc_ids(client, "docs") == {"notes/refunds.txt", "notes/cats.md"}
        assert _doc_ids(client, "photos") == {"pics/one.png", "pics/two.jpg",
                                              "pics/three.webp", "pics/four.gif"}
        assert _doc_ids(client, "sounds") == {"sounds/low.wav", "sounds/mid.flac",
                                              "sounds/high.ogg"}
        assert _letters(client, "photos") == {"pics/broken.png": "corrupt_image"}
        assert _letters(client, "sounds") == {"sounds/quiet.wav": "silent"}
        # one scan, each file to the run of its modality: nothing skipped here
        assert (summaries.total.files_found, summaries.total.files_taken) == (11, 11)
        assert summaries.total.files_skipped == {}
        assert (summaries["image"].files_found, summaries["image"].files_taken) == (5, 5)
        assert summaries.routes == {"text": "docs", "image": "photos", "audio": "sounds"}
        assert set(summaries.collections) == {"docs", "photos", "sounds"}
        assert summaries["audio"].documents_failed == 1
        photo = client.get_points("photos", ["pics/one.png#0"])[0].payload
        assert (photo["kind"], photo["width"], photo["height"]) == ("image", 96, 72)
        assert photo["source"] == "pics/one.png" and photo["fingerprint"]
        sound = client.get_points("sounds", ["sounds/mid.flac#0"])[0].payload
        assert (sound["duration"], sound["sample_rate"]) == (1.0, 16000)
        # each collection was built by the model of its modality
        assert client.get_collection("photos").model == "testing/pixels-48"
        assert client.get_collection("sounds").model == "testing/audio-32"


def test_re_runs_are_idempotent_by_decoded_content(tmp_path: Path,
                                                   mixed_folder: Path) -> None:
    with embedops.open(tmp_path / "store") as client:
        _route(client, mixed_folder)
        again = _route(client, mixed_folder)
        assert all(s.chunks_embedded == 0 for s in again.values())
        # the same pixels re-encoded with a caption: a payload update, never re-embedded
        (mixed_folder / "pics" / "one.png").write_bytes(
            png_with_text(picture(1), "Description", "a red square", level=1))
        # the same samples with a title tag: a payload update too
        (mixed_folder / "sounds" / "low.wav").write_bytes(audio_bytes(tone(220), title="x"))
        before = client.get_points("photos", ["pics/one.png#0"], with_vectors=True)[0]
        third = _route(client, mixed_folder)
        assert third["image"].chunks_embedded == 0
        assert third["image"].documents_metadata_updated == 1
        assert third["audio"].chunks_embedded == 0
        assert third["audio"].documents_metadata_updated == 1
        after = client.get_points("photos", ["pics/one.png#0"], with_vectors=True)[0]
        assert after.payload["title"] == "a red square"
        assert np.array_equal(after.vector, before.vector)
        # new pixels: re-embedded under the same id, one point
        (mixed_folder / "pics" / "one.png").write_bytes(encode(picture(99), "PNG"))
        fourth = _route(client, mixed_folder)
        assert fourth["image"].documents_changed == 1 and fourth["image"].chunks_embedded == 1
        assert client.count("photos") == 4


def test_files_of_a_modality_without_a_route_are_counted_not_read(
        tmp_path: Path, mixed_folder: Path) -> None:
    with embedops.open(tmp_path / "store") as client:
        named = mixed_folder / "pics" / "one.png"  # named explicitly: still routed by type
        summary = client.ingest_by_modality([mixed_folder / "notes", named,
                                             mixed_folder / "sounds"], ROUTES[:1])
        assert summary.total.files_skipped == {"no_model:audio": 4, "no_model:image": 1}
        assert (summary.total.files_found, summary.total.files_taken) == (7, 2)
        assert summary.total.documents_new == 2 and summary.total.documents_failed == 0
        assert summary.to_dict()["collections"]["docs"]["documents_new"] == 2
        assert client.list_collections()[0].name == "docs"
        with pytest.raises(ConfigError, match="two models"):
            client.ingest_by_modality([mixed_folder], [
                Route("text", "shared", "testing/hash-64"),
                Route("image", "shared", "testing/pixels-48")])


def test_routes_are_checked_before_any_work(tmp_path: Path, mixed_folder: Path) -> None:
    with embedops.open(tmp_path / "store") as client:
        with pytest.raises(ConfigError, match="two routes for image"):
            client.ingest_by_modality([mixed_folder], [Route("image", "a", "testing/pixels-48"),
                                                       Route("image", "b", "testing/pixels-12")])
        with pytest.raises(ConfigError, match="embeds audio, not image"):
            client.ingest_by_modality([mixed_folder], [Route("text", "t", "testing/hash-64"),
                                                       Route("image", "a", "testing/audio-32")])
        assert client.list_collections() == []


def test_a_model_run_takes_the_files_of_its_modalities(tmp_path: Path,
                                                       mixed_folder: Path) -> None:
    with embedops.open(tmp_path / "store") as client:
        text = client.ingest([mixed_folder], "text-only", model="testing/hash-64")
        assert text.documents_new == 2 and "unsupported_type:.png" in text.files_skipped
        images = client.ingest([mixed_folder], "pixels", model="testing/pixels-48")
        assert images.documents_new == 4 and images.documents_failed == 1
        assert "unsupported_type:.txt" in images.files_skipped


def test_text_and_images_share_a_clip_collection(tmp_path: Path, mixed_folder: Path,
                                                 tiny_clip: Path) -> None:
    model = f"clip:{tiny_clip}"
    with embedops.open(tmp_path / "store") as client:
        summary = client.ingest([mixed_folder], "clip", model=model)
        assert summary.documents_new == 6 and summary.documents_failed == 1
        assert summary.files_skipped == {"unsupported_type:.flac": 1,
                                         "unsupported_type:.ogg": 1,
                                         "unsupported_type:.wav": 2}
        info = client.get_collection("clip")
        embedder = client.embedder("clip")
        assert info.fingerprint == embedder.info.fingerprint
        # text -> image: the query's text tower against the stored image vectors
        hits = client.search("a red car", "clip", k=6, exact=True)
        query = embedder.embed(["a red car"], "query")[0]
        stored = client.get_points("clip", [h.id for h in hits], with_vectors=True)
        assert [round(h.score, 4) for h in hits] == \
            [round(float(p.vector @ query), 4) for p in stored]
        assert {h.doc_id for h in hits} >= {"pics/one.png", "notes/refunds.txt"}
        # image -> image: a copy of one.png finds it first
        copy = encode(picture(1), "JPEG", quality=95)
        top = client.search(copy, "clip", k=1, exact=True)[0]
        assert top.doc_id == "pics/one.png" and top.score > 0.95
        assert client.ingest([mixed_folder], "clip").chunks_embedded == 0


def test_alignment_guard_refuses_a_tower_of_another_version(
        tmp_path: Path, mixed_folder: Path, tiny_clip: Path) -> None:
    model_dir = tmp_path / "clip-model"
    shutil.copytree(tiny_clip, model_dir)
    with embedops.open(tmp_path / "store") as client:
        client.ingest([mixed_folder], "shared", model=f"clip:{model_dir}")
        old = client.get_collection("shared").fingerprint
    perturb_tower(model_dir, "text")  # the text tower is replaced in place
    with embedops.open(tmp_path / "store") as client:
        with pytest.raises(FingerprintMismatch, match="text tower"):
            client.search("a red car", "shared")
        with pytest.raises(FingerprintMismatch, match="text tower"):
            client.search(encode(picture(1), "PNG"), "shared")  # a mix, whichever tower
        (mixed_folder / "pics" / "new.png").write_bytes(encode(picture(50), "PNG"))
        with pytest.raises(FingerprintMismatch, match="text tower"):
            client.ingest([mixed_folder], "shared")
        new = embedops.embedders.load_embedder(f"clip:{model_dir}", client.settings.cache_dir)
        vectors = new.embed([encode(picture(50), "PNG")], "document")
        with pytest.raises(FingerprintMismatch):
            client.upsert("shared", ["x"], vectors, fingerprint=new.info.fingerprint)
        with pytest.raises(ModelConflict):
            client.ingest([mixed_folder], "shared", model="testing/pixels-48")
        # a migration moves every tower at once: a new collection of the new version
        summary = client.ingest([mixed_folder], "shared-v2", model=f"clip:{model_dir}")
        assert summary.documents_new == 7
        info = client.get_collection("shared-v2")
        assert info.fingerprint[8:] == old[8:] and info.fingerprint[:8] != old[:8]
