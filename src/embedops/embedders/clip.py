"""CLIP-style text+image embeddings from a local directory (transformers' CLIP classes).

``clip:DIR`` names a directory saved by ``CLIPModel.save_pretrained`` (``config.json``,
``model.safetensors`` or ``pytorch_model.bin``) with the text tokenizer's
``tokenizer.json`` and, optionally, ``preprocessor_config.json`` (image size, mean, std).
Nothing is downloaded.

Both towers embed into one space: the text tower takes queries and text documents, the
image tower takes images (in either role). They are one model version and one
fingerprint family, and the fingerprint names each tower: its first 8 hex digits are
the text tower's version, the last 8 the image tower's (each covers its weights, its
preprocessing and the shared projection size). A collection therefore records the
version of both towers, and a model whose either tower differs is refused by name
(:func:`alignment_error`) — never a silent mix of two spaces.
"""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path
from typing import Any

import numpy as np

from embedops.embedders.base import BaseEmbedder, EmbedderInfo, Role
from embedops.embedders.media_base import decode_or_refuse
from embedops.errors import FingerprintMismatch, ModelNotFound, PermanentEmbedderError
from embedops.preprocess.images import centre_square

PREFIX = "clip:"
TEXT_KEYS = ("text_model.", "text_projection.")
IMAGE_KEYS = ("vision_model.", "visual_projection.")
# OpenAI CLIP's image normalisation, used when the directory has no preprocessor config
OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)


def is_clip_name(name: str) -> bool:
    return name.startswith(PREFIX) and len(name) > len(PREFIX)


def clip_dir(name: str) -> Path:
    """The directory ``clip:DIR`` names; ModelNotFound when it holds no CLIP model."""
    path = Path(name[len(PREFIX):] if is_clip_name(name) else name).expanduser()
    config = path / "config.json"
    if not config.is_file():
        raise ModelNotFound(f"no CLIP model in {path}: expected config.json, the weights "
                            "and tokenizer.json (see docs/multimodal.md)")
    model_type = json.loads(config.read_text(encoding="utf-8")).get("model_type")
    if model_type != "clip":
        raise ModelNotFound(f"{path} holds a {model_type!r} model, not a CLIP model")
    if not (path / "tokenizer.json").is_file():
        raise ModelNotFound(f"{path} has no tokenizer.json (save the CLIP tokenizer with "
                            "the model: tokenizer.save_pretrained(DIR))")
    return path.resolve()


class ClipSpec:
    """What a CLIP directory says about itself: sizes, preprocessing, tower versions.
    Reading it hashes the weights per tower (memoised by file size and mtime); it never
    builds the network."""

    def __init__(self, path: Path, cache_dir: Path) -> None:
        self.path = path
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
        text_cfg, vision_cfg = config.get("text_config", {}), config.get("vision_config", {})
        self.dim = int(config.get("projection_dim", 512))
        self.max_positions = int(text_cfg.get("max_position_embeddings", 77))
        pre = _read_json(path / "preprocessor_config.json")
        size = pre.get("crop_size", vision_cfg.get("image_size", 224))
        self.image_size = int(size.get("height", 224) if isinstance(size, dict) else size)
        self.mean = tuple(float(x) for x in pre.get("image_mean", OPENAI_MEAN))
        self.std = tuple(float(x) for x in pre.get("image_std", OPENAI_STD))
        weights = tower_digests(path, cache_dir)
        tokenizer = hashlib.sha256((path / "tokenizer.json").read_bytes()).hexdigest()
        self.towers = {
            "text": _version({"tower": "text", "weights": weights["text"],
                              "tokenizer": tokenizer, "positions": self.max_positions,
                              "dim": self.dim}),
            "image": _version({"tower": "image", "weights": weights["image"],
                               "size": self.image_size, "mean": self.mean, "std": self.std,
                               "resize": "short-side-bicubic", "crop": "center",
                               "dim": self.dim}),
        }

    @property
    def fingerprint(self) -> str:
        return self.towers["text"] + self.towers["image"]

    def info(self) -> EmbedderInfo:
        revision = f"text-{self.towers['text']}+image-{self.towers['image']}"
        return EmbedderInfo(f"{PREFIX}{self.path}", revision, self.dim, self.max_positions - 2,
                            "image-text", "torch", str(self.path), self.fingerprint,
                            inputs={"document": ("text", "image"), "query": ("text", "image")})


def _version(parts: dict[str, object]) -> str:
    blob = json.dumps(parts, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:8]


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    return data if isinstance(data, dict) else {}


def tower_digests(path: Path, cache_dir: Path) -> dict[str, str]:
    """SHA-256 of each tower's tensors (names, dtypes, shapes, bytes), memoised in
    ``cache_dir`` by the weight files' paths, sizes and mtimes."""
    files = sorted(path.glob("*.safetensors")) or sorted(path.glob("pytorch_model*.bin"))
    if not files:
        raise ModelNotFound(f"no weight files (*.safetensors, pytorch_model.bin) in {path}")
    key_src = json.dumps([[str(f), f.stat().st_size, f.stat().st_mtime_ns] for f in files])
    memo = cache_dir / "digests" / f"clip-{hashlib.sha256(key_src.encode()).hexdigest()[:24]}.json"
    if memo.is_file():
        return dict(json.loads(memo.read_text()))
    digests = {"text": hashlib.sha256(), "image": hashlib.sha256()}
    for name, array in sorted(_tensors(files), key=lambda kv: kv[0]):
        tower = ("text" if name.startswith(TEXT_KEYS) else
                 "image" if name.startswith(IMAGE_KEYS) else None)
        for key in ([tower] if tower else ["text", "image"]):  # logit_scale: both
            digests[key].update(f"{name}:{array.dtype}:{array.shape}".encode())
            digests[key].update(np.ascontiguousarray(array).tobytes())
    out = {k: d.hexdigest() for k, d in digests.items()}
    memo.parent.mkdir(parents=True, exist_ok=True)
    memo.write_text(json.dumps(out))
    return out


def _tensors(files: list[Path]) -> list[tuple[str, np.ndarray]]:
    import torch

    out: list[tuple[str, np.ndarray]] = []
    for file in files:
        if file.suffix == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(file), framework="pt") as handle:
                for name in handle.keys():  # noqa: SIM118 (not a dict)
                    out.append((_strip(name), handle.get_tensor(name).float().numpy()))
        else:
            state = torch.load(file, map_location="cpu", weights_only=True)
            out += [(_strip(k), v.float().numpy()) for k, v in state.items()]
    return out


def _strip(name: str) -> str:
    return name.removeprefix("model.")


def alignment_error(recorded: str, spec_towers: dict[str, str], name: str) -> str | None:
    """Why vectors of ``name`` (towers ``spec_towers``) may not join a collection whose
    fingerprint is ``recorded``; None when both towers match."""
    if len(recorded) != 16:
        return f"the collection's fingerprint {recorded} is not a CLIP fingerprint"
    was = {"text": recorded[:8], "image": recorded[8:]}
    changed = [t for t in ("text", "image") if was[t] != spec_towers[t]]
    if not changed:
        return None
    what = ", ".join(f"{t} tower {was[t]} -> {spec_towers[t]}" for t in changed)
    return (f"{name} is not the model version this collection was built with ({what}): "
            "vectors of two versions never share a space. Move to the new version with "
            "all its towers together: build a new collection with it (ingest the sources "
            "with --model) and repoint the alias")


def image_pixels(data: bytes, size: int, mean: tuple[float, ...],
                 std: tuple[float, ...]) -> np.ndarray:
    """3 x size x size float32 CLIP input: short side resized to ``size`` (bicubic),
    centre crop, scaled to [0, 1], normalised by ``mean``/``std``."""
    pixels = centre_square(data, size)
    pixels = (pixels / 255.0 - np.array(mean, np.float32)) / np.array(std, np.float32)
    return pixels.transpose(2, 0, 1).astype(np.float32)


class ClipEmbedder(BaseEmbedder):
    """Text and images into one space: ``str`` items go through the text tower, ``bytes``
    items (image files) through the image tower, in either role."""

    def __init__(self, spec: ClipSpec, batch_size: int = 32) -> None:
        super().__init__(batch_size)
        from embedops.embedders.hf_tokenizer import HFTokenizer

        self.spec = spec
        self.info = spec.info()
        self.tokenizer = HFTokenizer(spec.path / "tokenizer.json", spec.max_positions)
        self._model: Any = None
        self._lock = threading.Lock()

    @classmethod
    def load(cls, name: str, cache_dir: Path, batch_size: int = 32) -> ClipEmbedder:
        return cls(ClipSpec(clip_dir(name), cache_dir), batch_size)

    @property
    def towers(self) -> dict[str, str]:
        """Version of each tower (the two halves of the fingerprint)."""
        return dict(self.spec.towers)

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                from transformers import CLIPModel
                from transformers.utils import logging as hf_logging

                hf_logging.disable_progress_bar()  # keeps a command's stderr to its own lines
                self._model = CLIPModel.from_pretrained(
                    str(self.spec.path), local_files_only=True).eval()
            return self._model

    def _embed_role(self, texts: list[str], role: Role) -> np.ndarray:
        items: list[str | bytes] = list(texts)
        out = np.empty((len(items), self.info.dim), dtype=np.float32)
        text_idx = [i for i, x in enumerate(items) if isinstance(x, str)]
        image_idx = [i for i, x in enumerate(items) if isinstance(x, bytes)]
        if text_idx:
            out[text_idx] = self.embed_text([str(items[i]) for i in text_idx])
        if image_idx:
            out[image_idx] = self.embed_images([bytes(items[i]) for i in image_idx])  # type: ignore[arg-type]
        return out

    def embed_text(self, texts: list[str]) -> np.ndarray:
        """Raw (unnormalised) text-tower vectors."""
        import torch

        inputs = self.tokenizer.model_inputs(texts)
        model = self._load()
        with torch.inference_mode():
            out = model.get_text_features(
                input_ids=torch.from_numpy(inputs["input_ids"]),
                attention_mask=torch.from_numpy(inputs["attention_mask"]))
        return _features(out)

    def embed_images(self, images: list[bytes]) -> np.ndarray:
        """Raw (unnormalised) image-tower vectors of image files."""
        import torch

        s = self.spec
        batch = np.stack([decode_or_refuse(
            self.info.name, lambda d: image_pixels(d, s.image_size, s.mean, s.std), d)
            for d in images])
        model = self._load()
        with torch.inference_mode():
            out = model.get_image_features(pixel_values=torch.from_numpy(batch))
        return _features(out)


def _features(out: Any) -> np.ndarray:
    """transformers 4 returns the projected features; 5 an output whose pooler_output
    holds them."""
    tensor = out if hasattr(out, "numpy") else out.pooler_output
    array = tensor.float().numpy()
    if array.ndim != 2:
        raise PermanentEmbedderError(f"CLIP returned features of shape {array.shape}")
    return array.astype(np.float32)


def matching_clip(name: str, fingerprint: str, cache_dir: Path,
                  batch_size: int = 32) -> ClipEmbedder:
    """The CLIP embedder of ``name`` when both its towers are the versions
    ``fingerprint`` records; FingerprintMismatch naming the tower otherwise."""
    spec = ClipSpec(clip_dir(name), cache_dir)
    problem = alignment_error(fingerprint, spec.towers, f"{PREFIX}{spec.path}")
    if problem is not None:
        raise FingerprintMismatch(problem)
    return ClipEmbedder(spec, batch_size)
