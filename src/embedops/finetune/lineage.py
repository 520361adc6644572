"""``training.json``: what a fine-tuned model was made from, so it can be trusted,
compared and made again."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from embedops.embedders.named_models import LINEAGE_FILE
from embedops.finetune.trainer import Hyperparameters

# Two runs with the same pairs, seed and settings on the same machine give the same
# metrics; across machines and thread counts float reductions differ, within this many
# points (absolute, on a 0-1 scale) of recall@10 and nDCG@10.
METRIC_TOLERANCE = 0.02
VERSIONED = ("embedops", "torch", "transformers", "sentence-transformers", "bm25s", "datasets")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as src:
        while block := src.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in VERSIONED:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def training_record(*, name: str, base: dict[str, str], fingerprint: str,
                    data: dict[str, Any], params: Hyperparameters,
                    metrics: dict[str, Any], seconds: dict[str, float], device: str,
                    split: dict[str, list[str]]) -> dict[str, Any]:
    """The content of ``training.json`` (see docs/finetune.md for every key)."""
    return {
        "name": name,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "fingerprint": fingerprint,
        "base_model": base,
        "training_data": data,
        "hyperparameters": asdict(params),
        "metrics": metrics,
        "split": split,
        "seconds": seconds,
        "device": device,
        "versions": package_versions(),
        "reproducibility": {"seed": params.seed, "metric_tolerance": METRIC_TOLERANCE},
    }


def write_record(directory: Path, record: dict[str, Any]) -> Path:
    """Write ``training.json`` into the model directory atomically."""
    path = directory / LINEAGE_FILE
    staging = path.with_suffix(".json.tmp")
    staging.write_text(json.dumps(record, indent=2, sort_keys=True), encoding="utf-8")
    os.replace(staging, path)
    return path
