"""Search by image and by sound through the real interfaces: the CLI (`embedops ingest`
with an image or audio model, `embedops search --image/--audio`) and HTTP (base64 in
`/search`, the raw file in `/search/media`)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from embedops.config import load_settings
from embedops.server import create_app
from tests.e2e.conftest import Cli
from tests.multimodal.media_files import audio_bytes, encode, picture, tone
from tests.server.live import live_server


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path / "store")


def test_cli_builds_an_image_collection_and_searches_by_image(
        cli: Cli, mixed_folder: Path, tmp_path: Path) -> None:
    summary = cli.json("ingest", str(mixed_folder / "pics"), "--model", "testing/pixels-48",
                       "--collection", "photos")
    assert summary["documents_new"] == 4 and summary["documents_failed"] == 1
    query = tmp_path / "query.jpg"
    query.write_bytes(encode(picture(2).resize((80, 60)), "JPEG", quality=80))
    hits = cli.json("search", "--image", str(query), "--collection", "photos", "-k", "2")
    assert hits[0]["doc_id"] == "two.jpg"
    payload = hits[0]["payload"]
    assert (payload["source"], payload["width"], payload["height"]) == ("two.jpg", 96, 72)
    table = cli.run("search", "--image", str(query), "--collection", "photos").stdout
    assert "two.jpg" in table and "96x72" in table
    letters = cli.json("dlq", "list")
    assert [(d["doc_id"], d["reason"]) for d in letters] == [("broken.png",
                                                              "corrupt_image")]
    # the file repaired, `dlq retry` re-reads it with the collection's image model
    (mixed_folder / "pics" / "broken.png").write_bytes(encode(picture(6), "PNG"))
    retried = cli.json("dlq", "retry")
    assert retried["remaining"] == 0
    assert retried["runs"]["photos"]["documents_new"] == 1


def test_cli_searches_by_audio_and_refuses_bad_usage(cli: Cli, mixed_folder: Path,
                                                     tmp_path: Path) -> None:
    cli.json("ingest", str(mixed_folder), "--model", "testing/audio-32",
             "--collection", "sounds")
    query = tmp_path / "q.wav"
    query.write_bytes(audio_bytes(tone(880, seconds=0.7, rate=22050), rate=22050))
    hits = cli.json("search", "--audio", str(query), "--collection", "sounds", "-k", "3")
    assert hits[0]["doc_id"] == "sounds/mid.flac"
    assert hits[0]["payload"]["duration"] == 1.0
    both = cli.run("search", "words", "--audio", str(query), "--collection", "sounds",
                   check=False)
    assert both.returncode == 2 and "exactly one" in both.stderr
    missing = cli.run("search", "--image", str(tmp_path / "nope.png"), check=False)
    assert missing.returncode == 2 and "cannot read" in missing.stderr
    silent = tmp_path / "silent.wav"
    silent.write_bytes(audio_bytes(tone(440, amp=0.0)))
    refused = cli.run("search", "--audio", str(silent), "--collection", "sounds",
                      check=False)
    assert refused.returncode != 0 and "silent" in refused.stderr
    text = cli.run("search", "a tone", "--collection", "sounds", check=False)
    assert text.returncode != 0 and "text" in text.stderr


def test_models_lists_media_models_with_their_modality(cli: Cli) -> None:
    rows = {r["name"]: r for r in json.loads(cli.run("models", "--json").stdout)}
    for name, modality, dim in (("efficientnet-lite0", "image", 1280),
                                ("resemblyzer", "audio", 256), ("aisfx", "audio", 512)):
        assert rows[name]["modality"] == modality and rows[name]["dim"] == dim
        if rows[name]["installed"]:
            assert len(rows[name]["fingerprint"]) == 16
    table = cli.run("models", env_extra={"COLUMNS": "400"}).stdout.splitlines()
    assert any("resemblyzer" in line and "audio" in line for line in table)


@pytest.fixture
def http(tmp_path: Path, mixed_folder: Path, tiny_clip: Path) -> Iterator[httpx.Client]:
    import embedops

    store = tmp_path / "store"
    with embedops.open(store) as client:
        client.ingest([mixed_folder], "clip", model=f"clip:{tiny_clip}")
        client.ingest([mixed_folder], "sounds", model="testing/audio-32")
    settings = load_settings(store=str(store))
    with live_server(create_app(settings, open_store=True)) as url, \
            httpx.Client(base_url=url, timeout=60) as client:
        yield client


def test_http_searches_by_base64_media_and_by_upload(http: httpx.Client) -> None:
    image = encode(picture(3), "PNG")
    body = {"image_base64": base64.b64encode(image).decode(), "k": 2, "exact": True}
    found = http.post("/collections/clip/search", json=body)
    assert found.status_code == 200, found.text
    top = found.json()["hits"][0]
    assert top["doc_id"] == "pics/three.webp" and top["payload"]["width"] == 96
    text = http.post("/collections/clip/search", json={"query": "a red car", "k": 3})
    assert text.status_code == 200 and len(text.json()["hits"]) == 3
    sound = audio_bytes(tone(220, seconds=0.5))
    upload = http.post("/collections/sounds/search/media?modality=audio&k=1", content=sound,
                       headers={"content-type": "audio/wav"})
    assert upload.status_code == 200, upload.text
    assert upload.json()["hits"][0]["doc_id"] == "sounds/low.wav"
    sniffed = http.post("/collections/sounds/search/media?k=1", content=sound)
    assert sniffed.json()["hits"][0]["doc_id"] == "sounds/low.wav"
    form = http.post("/collections/clip/search/media?k=1",
                     files={"file": ("q.png", image, "image/png")})
    assert form.status_code == 200, form.text
    assert form.json()["hits"][0]["doc_id"] == "pics/three.webp"


def test_http_refuses_bad_media_queries(http: httpx.Client) -> None:
    bad = http.post("/collections/clip/search",
                    json={"image_base64": base64.b64encode(b"junk").decode()})
    assert bad.status_code == 422 and "corrupt_image" in bad.text
    not_b64 = http.post("/collections/clip/search", json={"image_base64": "@@@"})
    assert not_b64.status_code == 422
    two = http.post("/collections/clip/search",
                    json={"query": "x", "image_base64": base64.b64encode(b"x").decode()})
    assert two.status_code == 422
    sound = base64.b64encode(audio_bytes(tone(440))).decode()
    wrong = http.post("/collections/clip/search", json={"audio_base64": sound})
    assert wrong.status_code == 422 and "unsupported_modality" in wrong.text
    empty = http.post("/collections/sounds/search/media", content=b"")
    assert empty.status_code == 422
    two_files = http.post("/collections/clip/search/media",
                          files=[("a", ("a.png", b"x", "image/png")),
                                 ("b", ("b.png", b"y", "image/png"))])
    assert two_files.status_code == 422 and "2 files" in two_files.text


def test_cli_ingests_a_mixed_folder_into_a_clip_collection(
        cli: Cli, mixed_folder: Path, tiny_clip: Path, tmp_path: Path) -> None:
    model = f"clip:{tiny_clip}"
    summary = cli.json("ingest", str(mixed_folder), "--model", model, "--collection", "clip")
    assert summary["documents_new"] == 6 and summary["documents_failed"] == 1
    assert summary["files_skipped"] == {"unsupported_type:.flac": 1,
                                        "unsupported_type:.ogg": 1,
                                        "unsupported_type:.wav": 2}
    text_hits = cli.json("search", "a striped cat", "--collection", "clip", "-k", "6")
    assert {h["payload"].get("kind") for h in text_hits} >= {"image", "markdown"}
    query = tmp_path / "q.png"
    query.write_bytes(encode(picture(4), "PNG"))  # the first frame of four.gif
    image_hits = cli.json("search", "--image", str(query), "--collection", "clip", "-k", "1")
    assert image_hits[0]["doc_id"] == "pics/four.gif"
    # a re-run writing nothing: test_mixed_ingest.py (in process, without a CLI start)
