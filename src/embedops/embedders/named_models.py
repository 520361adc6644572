"""Local model directories registered under a name of their own.

A fine-tuned model (``embedops finetune train --out DIR``) is a sentence-transformers
directory; registering it maps a short name to that directory in
``<cache_dir>/named_models.json``, so ``--model NAME`` and ``migrate start ALIAS --to NAME``
find it like a shipped model. The name is part of the model's fingerprint, and so are its
weights: a registered model never shares vectors with its base.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from embedops.embedders.weights import KNOWN_MODELS, canonical_name, is_model_dir, read_json_object
from embedops.errors import ConfigError, ModelNotFound

REGISTRY_FILE = "named_models.json"
LINEAGE_FILE = "training.json"  # written beside the weights by embedops.finetune
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def _registry_path(cache_dir: Path) -> Path:
    return cache_dir / REGISTRY_FILE


def _read(cache_dir: Path) -> dict[str, dict[str, str]]:
    return read_json_object(_registry_path(cache_dir), ConfigError, "the model registry ")


def check_name(name: str) -> str:
    """``name`` when it can name a local model: letters, digits, ``.``, ``_``, ``-``
    (no ``/``, so it never looks like an API model or a hub id), and not the name of a
    shipped model. Raises ConfigError."""
    if not NAME_RE.match(name):
        raise ConfigError(f"invalid model name {name!r}: use letters, digits, '.', '_' "
                          "and '-' (at most 64 characters, no '/')")
    if canonical_name(name) in KNOWN_MODELS:
        raise ConfigError(f"{name!r} is the name of a shipped model; choose another name")
    return name


def register(name: str, directory: Path, cache_dir: Path) -> Path:
    """Map ``name`` to ``directory`` (a sentence-transformers directory); replaces an
    earlier entry of the same name. Written atomically. Returns the absolute directory."""
    check_name(name)
    directory = directory.expanduser().resolve()
    if not is_model_dir(directory):
        raise ModelNotFound(f"{directory} is not a model directory (no config.json)")
    entries = _read(cache_dir)
    entries[name] = {"directory": str(directory)}
    path = _registry_path(cache_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_suffix(".json.tmp")
    staging.write_text(json.dumps(entries, indent=2, sort_keys=True), encoding="utf-8")
    os.replace(staging, path)
    return directory


def lookup(name: str, cache_dir: Path) -> Path | None:
    """The directory registered as ``name``, or None when no such name is registered.
    Raises ModelNotFound when the name is registered but its directory is gone."""
    entry = _read(cache_dir).get(name)
    if entry is None:
        return None
    directory = Path(entry["directory"])
    if not is_model_dir(directory):
        raise ModelNotFound(f"model {name!r} is registered at {directory}, which no longer "
                            "holds a model; train it again or register another directory")
    return directory


def registered(cache_dir: Path) -> dict[str, Path]:
    """Every registered name and its directory, sorted by name."""
    return {name: Path(e["directory"]) for name, e in sorted(_read(cache_dir).items())}


def lineage(directory: Path) -> dict[str, Any]:
    """The ``training.json`` beside a model's weights ({} when it has none)."""
    path = directory / LINEAGE_FILE
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def lineage_note(directory: Path) -> str:
    """One line for ``embedops models``: base model and held-out recall@10 before/after."""
    data = lineage(directory)
    base = data.get("base_model", {})
    if not base:
        return "local model directory"
    note = f"fine-tuned from {base.get('name')} ({str(base.get('fingerprint', ''))[:12]})"
    before = data.get("metrics", {}).get("before", {})
    after = data.get("metrics", {}).get("after", {})
    if "recall@10" in before and "recall@10" in after:
        note += f"; held-out recall@10 {before['recall@10']:.3f} -> {after['recall@10']:.3f}"
    return note
