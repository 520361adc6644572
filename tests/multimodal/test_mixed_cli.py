"""`embedops ingest FOLDER` on a mixed folder, routed by modality from the command line
(`--image-model`, `--audio-collection` ...) and from embedops.toml (`[media]`), and a
CLIP directory named by a configured short name (`[clip_models]`). Real subprocesses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.conftest import Cli

TEXT = ("--model", "testing/hash-64", "--collection", "docs")


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path / "store")


def _config(tmp_path: Path, text: str) -> dict[str, str]:
    path = tmp_path / "embedops.toml"
    path.write_text(text)
    return {"EMBEDOPS_CONFIG": str(path)}


def _json(cli: Cli, *args: str, env: dict[str, str] | None = None,
          ) -> dict[str, object]:
    return json.loads(cli.run(*args, "--json", env_extra=env).stdout)


def _collection_models(cli: Cli) -> dict[str, str]:
    rows = json.loads(cli.run("collections", "--json").stdout)
    return {row["name"]: row["model"] for row in rows}


def test_flags_route_images_and_skip_audio_without_a_model(cli: Cli,
                                                            mixed_folder: Path) -> None:
    summary = _json(cli, "ingest", str(mixed_folder), *TEXT,
                    "--image-model", "testing/pixels-48", "--image-collection", "photos")
    assert summary["routes"] == {"text": "docs", "image": "photos"}
    # 2 text files, 5 images (one corrupt), 4 sounds: the sounds have no model
    assert summary["files_found"] == 11 and summary["files_taken"] == 7
    assert summary["files_skipped"] == {"no_model:audio": 4}
    assert summary["documents_new"] == 6 and summary["documents_failed"] == 1
    parts = summary["collections"]
    assert isinstance(parts, dict)
    assert (parts["docs"]["documents_new"], parts["docs"]["files_taken"]) == (2, 2)
    assert (parts["photos"]["documents_new"], parts["photos"]["documents_failed"]) == (4, 1)
    assert _collection_models(cli) == {"docs": "testing/hash-64",
                                       "photos": "testing/pixels-48"}
    letters = json.loads(cli.run("dlq", "list", "--json").stdout)
    assert [(d["collection"], d["doc_id"], d["reason"]) for d in letters] == [
        ("photos", "pics/broken.png", "corrupt_image")]
    table = cli.run("ingest", str(mixed_folder), *TEXT, "--image-model",
                    "testing/pixels-48", "--image-collection", "photos",
                    env_extra={"COLUMNS": "200"}).stdout
    assert "no_model:audio" in table and "photos: files_taken 5" in table


def test_media_table_in_settings_routes_every_modality(cli: Cli, mixed_folder: Path,
                                                       tmp_path: Path) -> None:
    env = _config(tmp_path, '[media]\n'
                  'image = {model = "testing/pixels-48", collection = "photos"}\n'
                  'audio = {model = "testing/audio-32"}\n')
    first = _json(cli, "ingest", str(mixed_folder), *TEXT, env=env)
    assert first["routes"] == {"text": "docs", "image": "photos", "audio": "docs-audio"}
    assert first["files_skipped"] == {} and first["files_taken"] == 11
    assert first["documents_new"] == 9 and first["documents_failed"] == 2
    assert _collection_models(cli) == {"docs": "testing/hash-64",
                                       "photos": "testing/pixels-48",
                                       "docs-audio": "testing/audio-32"}
    again = _json(cli, "ingest", str(mixed_folder), *TEXT, env=env)
    assert again["chunks_embedded"] == 0 and again["documents_new"] == 0
    # a flag overrides the table field by field: the audio model stays, the collection moves
    moved = _json(cli, "ingest", str(mixed_folder), *TEXT, "--audio-collection", "voices",
                  env=env)
    assert moved["routes"]["audio"] == "voices"
    assert moved["collections"]["voices"]["documents_new"] == 3
    assert _collection_models(cli)["voices"] == "testing/audio-32"


def test_bad_routes_are_refused_before_any_work(cli: Cli, mixed_folder: Path,
                                                tiny_clip: Path) -> None:
    wrong = cli.run("ingest", str(mixed_folder), *TEXT, "--image-model", "testing/audio-32",
                    check=False)
    assert wrong.returncode == 2 and "embeds audio, not image" in wrong.stderr
    nameless = cli.run("ingest", str(mixed_folder), *TEXT, "--image-collection", "pics",
                       check=False)
    assert nameless.returncode == 2 and "no model for the image files" in nameless.stderr
    clip = cli.run("ingest", str(mixed_folder), "--model", f"clip:{tiny_clip}",
                   "--image-model", "testing/pixels-48", check=False)
    assert clip.returncode == 2 and "embeds image files itself" in clip.stderr
    ray = cli.run("ingest", str(mixed_folder), *TEXT, "--image-model", "testing/pixels-48",
                  "--runner", "ray", check=False)
    assert ray.returncode == 2 and "--runner local" in ray.stderr
    assert _collection_models(cli) == {}


def test_a_clip_run_keeps_images_and_routes_audio(cli: Cli, mixed_folder: Path,
                                                  tiny_clip: Path) -> None:
    summary = _json(cli, "ingest", str(mixed_folder), "--model", f"clip:{tiny_clip}",
                    "--collection", "clip", "--audio-model", "testing/audio-32",
                    "--audio-collection", "sounds")
    assert summary["routes"] == {"text": "clip", "image": "clip", "audio": "sounds"}
    assert summary["collections"]["clip"]["documents_new"] == 6
    assert summary["collections"]["sounds"]["documents_new"] == 3
    assert summary["files_skipped"] == {}


def test_a_configured_clip_short_name(cli: Cli, mixed_folder: Path, tiny_clip: Path,
                                      tmp_path: Path) -> None:
    from embedops.embedders.clip import ClipSpec

    env = _config(tmp_path, f'[clip_models]\n"clip-tiny" = "{tiny_clip}"\n'
                  f'"clip-gone" = "{tmp_path / "nothing"}"\n')
    rows = {r["name"]: r for r in json.loads(
        cli.run("models", "--json", env_extra=env).stdout)}
    tiny = rows["clip-tiny"]
    spec = ClipSpec(tiny_clip.resolve(), tmp_path / "cache")
    assert (tiny["modality"], tiny["dim"], tiny["installed"]) == ("image-text", 16, True)
    assert tiny["fingerprint"] == spec.fingerprint and str(tiny_clip.resolve()) in tiny["note"]
    assert rows["clip-gone"]["installed"] is False and "no CLIP model" in rows["clip-gone"]["note"]
    summary = _json(cli, "ingest", str(mixed_folder / "pics"), "--model", "clip-tiny",
                    "--collection", "pics", env=env)
    assert summary["documents_new"] == 4
    assert _collection_models(cli)["pics"] == f"clip:{tiny_clip.resolve()}"
    # the short name as an image route: the same model version writes the same collection
    routed = _json(cli, "ingest", str(mixed_folder), *TEXT, "--image-model", "clip-tiny",
                   "--image-collection", "pics", env=env)
    assert routed["routes"] == {"text": "docs", "image": "pics"}
    assert routed["collections"]["pics"]["documents_new"] == 4  # ids now under pics/
    bad = cli.run("models", env_extra=_config(tmp_path, '[clip_models]\n"a/b" = "/x"\n'),
                  check=False)
    assert bad.returncode != 0 and "not a short name" in bad.stderr
