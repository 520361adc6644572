"""Image near-duplicate retrieval: generated pictures, each with four transformed copies
(resized, cropped, re-encoded as JPEG, colour-jittered). Recall@1 of the original given a
copy, for EfficientNet-Lite0 (cosine) against two pixel-hash baselines: the SHA-256 of the
decoded pixels (embedops' content hash) and a 64-bit difference hash (Hamming distance).
Throughput (images/s, decode + preprocess + model) as the median of ``--runs``. Prints JSON.

    .venv/bin/python bench/media_images.py [--n 300] [--runs 3]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import statistics
import tempfile
import time

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance

os.environ.setdefault("HF_HUB_OFFLINE", "1")
TRANSFORMS = ("resized", "cropped", "jpeg-q40", "colour-jitter")


def generate(seed: int) -> Image.Image:
    """A picture of 192-320 x 160-256 px: gradient ground, texture, shapes and lines."""
    rng = np.random.default_rng(seed)
    w, h = int(rng.integers(192, 321)), int(rng.integers(160, 257))
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    ground = rng.uniform(0, 255, 3) + x[..., None] * rng.uniform(-0.6, 0.6, 3) \
        + y[..., None] * rng.uniform(-0.6, 0.6, 3)
    ground += rng.normal(0, rng.uniform(2, 20), (h, w, 1))
    img = Image.fromarray(np.clip(ground, 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(3, 9))):
        x0, y0 = int(rng.integers(0, w - 20)), int(rng.integers(0, h - 20))
        x1, y1 = x0 + int(rng.integers(15, w // 2)), y0 + int(rng.integers(15, h // 2))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        shape = rng.integers(0, 3)
        if shape == 0:
            draw.rectangle((x0, y0, x1, y1), fill=colour)
        elif shape == 1:
            draw.ellipse((x0, y0, x1, y1), fill=colour)
        else:
            draw.line((x0, y0, x1, y1), fill=colour, width=int(rng.integers(2, 9)))
    return img


def encode(img: Image.Image, fmt: str = "PNG", **params: object) -> bytes:
    out = io.BytesIO()
    img.save(out, format=fmt, **params)
    return out.getvalue()


def copies(img: Image.Image) -> dict[str, bytes]:
    w, h = img.size
    cut = img.crop((w // 10, h // 10, w - w // 10, h - h // 10))
    jitter = ImageEnhance.Color(ImageEnhance.Contrast(
        ImageEnhance.Brightness(img).enhance(1.2)).enhance(0.8)).enhance(1.3)
    return {"resized": encode(img.resize((w // 2, h // 2), Image.Resampling.BICUBIC)),
            "cropped": encode(cut),
            "jpeg-q40": encode(img, "JPEG", quality=40),
            "colour-jitter": encode(jitter)}


def dhash(data: bytes) -> int:
    grey = Image.open(io.BytesIO(data)).convert("L").resize((9, 8), Image.Resampling.LANCZOS)
    px = np.asarray(grey, dtype=np.int16)
    bits = (px[:, 1:] > px[:, :-1]).reshape(-1)
    return int("".join("1" if b else "0" for b in bits), 2)


def pixel_sha(data: bytes) -> str:
    from embedops.preprocess.images import decode_image

    return decode_image(data).digest  # type: ignore[union-attr]


def recall(pred: list[int]) -> float:
    return float(np.mean(np.array(pred) == np.arange(len(pred))))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    from pathlib import Path

    from embedops.embedders import load_embedder

    pictures = [generate(i) for i in range(args.n)]
    originals = [encode(p) for p in pictures]
    queries = {t: [] for t in TRANSFORMS}  # type: ignore[var-annotated]
    for p in pictures:
        for t, data in copies(p).items():
            queries[t].append(data)

    result: dict[str, object] = {"images": args.n, "copies_per_image": len(TRANSFORMS),
                                 "cpu": platform.processor() or platform.machine(),
                                 "threads": os.cpu_count()}
    shas = {pixel_sha(d): i for i, d in enumerate(originals)}
    result["pixel_sha256"] = {t: recall([shas.get(pixel_sha(d), -1) for d in queries[t]])
                              for t in TRANSFORMS}
    codes = np.array([dhash(d) for d in originals], dtype=np.uint64)

    def nearest(code: int) -> int:
        xor = np.bitwise_xor(codes, np.uint64(code))
        return int(np.array([bin(int(v)).count("1") for v in xor]).argmin())

    result["dhash64"] = {t: recall([nearest(dhash(d)) for d in queries[t]])
                         for t in TRANSFORMS}
    embedder = load_embedder("efficientnet-lite0", Path(tempfile.gettempdir()) / "embedops-bench")
    embedder.embed(originals[:4], "document")  # load + warm-up
    seconds = []
    for _ in range(args.runs):
        start = time.perf_counter()
        index = embedder.embed(originals, "document")
        seconds.append(time.perf_counter() - start)
    rates = sorted(args.n / s for s in seconds)
    result["efficientnet_lite0"] = {
        t: recall(list((embedder.embed(queries[t], "query") @ index.T).argmax(axis=1)))
        for t in TRANSFORMS}
    result["efficientnet_lite0_images_per_s"] = {
        "median": round(statistics.median(rates), 2), "min": round(rates[0], 2),
        "max": round(rates[-1], 2), "runs": args.runs}
    for method in ("pixel_sha256", "dhash64", "efficientnet_lite0"):
        table = result[method]
        assert isinstance(table, dict)
        table["all"] = round(float(np.mean(list(table.values()))), 4)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
