"""Audio near-duplicate retrieval: speech from espeak-ng in several voices and sound
effects synthesised by sox, each with three transformed copies (gain -6 dB, trimmed,
resampled). Recall@1 of the original given a copy, with resemblyzer and aisfx, against a
plain baseline (the cosine of mean log-magnitude spectra at 16 kHz); for speech also the
speaker recall (the nearest *other* clip has the same voice).
Throughput (clips/s and seconds of audio per second) as the median of ``--runs``.
Needs ``espeak-ng`` and ``sox`` (Debian packages). Prints JSON.

    .venv/bin/python bench/media_audio.py [--voices 6] [--sentences 10] [--sfx 48] [--runs 3]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# eight voices whose output differs (espeak-ng ignores variants of "en-gb": checked)
VOICES = ("en-us+m1", "en-us+f2", "en-gb", "en-gb-scotland+m5", "en-029+f1", "en-us+m7",
          "en-gb-x-rp+f3", "en-us+f4")
WORDS = (
    "river", "morning", "station", "yellow", "quietly", "garden", "seven", "window",
    "orange", "carefully", "mountain", "paper", "engine", "silver", "tomorrow", "kitchen",
    "evening", "winter", "number", "bridge", "slowly", "market", "doctor", "music",
    "village", "forest", "letter", "camera", "island", "summer",
)
TRANSFORMS = ("gain-6dB", "trimmed", "resampled")


def sentence(i: int) -> str:
    rng = np.random.default_rng(1000 + i)
    return " ".join(rng.choice(WORDS, size=9)) + "."


def speak(voice: str, text: str, work: Path) -> bytes:
    out = work / "speech.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-s", "160", "-w", str(out), text], check=True)
    return out.read_bytes()


def sox_effect(i: int, work: Path) -> bytes:
    """One of eight families of synthetic sounds, its parameters varied by ``i``."""
    rng = np.random.default_rng(i)
    out = work / "sfx.wav"
    seconds = f"{rng.uniform(1.5, 3.5):.2f}"
    f1, f2 = (int(x) for x in rng.integers(80, 4000, 2))
    family = [["sine", f"{f1}"], ["square", f"{f1}-{f2}"], ["sawtooth", f"{f1}"],
              ["pinknoise"], ["brownnoise"], ["pluck", f"{f1}"], ["triangle", f"{f1}:{f2}"],
              ["whitenoise"]][i % 8]
    effects = ["fade", "q", "0.05", seconds, "0.3"]
    if family[0].endswith("noise"):
        effects += ["bandpass", str(f1), f"{rng.uniform(0.3, 3):.2f}q"]
    else:
        effects += ["tremolo", f"{rng.uniform(2, 12):.1f}", f"{rng.uniform(20, 80):.0f}"]
    subprocess.run(["sox", "-n", "-r", "44100", "-b", "16", "-c", "1", str(out), "synth",
                    seconds, *family, *effects, "vol", f"{rng.uniform(0.3, 0.9):.2f}"],
                   check=True)
    return out.read_bytes()


def transformed(data: bytes) -> dict[str, bytes]:
    import soundfile as sf

    from embedops.preprocess.audio import resample

    samples, rate = sf.read(io.BytesIO(data), dtype="float32")
    n = len(samples)

    def wav(x: np.ndarray, r: int) -> bytes:
        buf = io.BytesIO()
        sf.write(buf, x, r, format="WAV", subtype="PCM_16")
        return buf.getvalue()

    low = 8000 if rate <= 22050 else 22050
    return {"gain-6dB": wav(samples * 0.5, rate),
            "trimmed": wav(samples[int(0.15 * n): int(0.9 * n)], rate),
            "resampled": wav(resample(samples, rate, low), low)}


def recall(index: np.ndarray, queries: np.ndarray) -> float:
    return float(np.mean((queries @ index.T).argmax(axis=1) == np.arange(len(queries))))


def duration(data: bytes) -> float:
    import soundfile as sf

    return float(sf.info(io.BytesIO(data)).duration)


class SpectrumBaseline:
    """The baseline: each clip's mean log-magnitude spectrum (mono, 16 kHz, 512-sample
    Hann frames, hop 256, 257 bins), centred and L2-normalised; compared by cosine."""

    rate = 16_000
    frame = 512

    def embed(self, clips: list[bytes], role: str) -> np.ndarray:
        from embedops.preprocess.audio import load_mono

        rows = []
        window = np.hanning(self.frame).astype(np.float32)
        for data in clips:
            x = load_mono(data, self.rate)
            if len(x) < self.frame:
                x = np.pad(x, (0, self.frame - len(x)))
            starts = range(0, len(x) - self.frame + 1, self.frame // 2)
            frames = np.stack([x[s:s + self.frame] * window for s in starts])
            spectrum = np.log1p(np.abs(np.fft.rfft(frames, axis=1))).mean(axis=0)
            spectrum = spectrum - spectrum.mean()
            rows.append(spectrum / (np.linalg.norm(spectrum) or 1.0))
        return np.asarray(rows, dtype=np.float32)


def load_model(name: str):  # type: ignore[no-untyped-def]
    if name == "spectrum-baseline":
        return SpectrumBaseline()
    from embedops.embedders import load_embedder

    return load_embedder(name, Path(tempfile.gettempdir()) / "embedops-bench")


def evaluate(name: str, sets: dict[str, list[bytes]], copies: dict[str, dict[str, list[bytes]]],
             runs: int) -> dict[str, object]:
    embedder = load_model(name)
    everything = [d for clips in sets.values() for d in clips]
    embedder.embed(everything[:2], "document")  # load + warm-up
    seconds = []
    for _ in range(runs):
        start = time.perf_counter()
        embedder.embed(everything, "document")
        seconds.append(time.perf_counter() - start)
    audio_seconds = sum(duration(d) for d in everything)
    rates = sorted(len(everything) / s for s in seconds)
    out: dict[str, object] = {"clips_per_s": {
        "median": round(statistics.median(rates), 2), "min": round(rates[0], 2),
        "max": round(rates[-1], 2), "runs": runs},
        "audio_seconds_per_s": round(audio_seconds / statistics.median(seconds), 1)}
    for set_name, clips in sets.items():
        index = embedder.embed(clips, "document")
        out[set_name] = {t: recall(index, embedder.embed(copies[set_name][t], "query"))
                         for t in TRANSFORMS}
        if set_name == "speech":
            out["speaker_recall_at_1"] = speaker_recall(index, len(VOICES_USED))
    return out


VOICES_USED: list[str] = []


def speaker_recall(index: np.ndarray, voices: int) -> float:
    """Clips are ordered voice-major: the nearest other clip should share the voice."""
    sims = index @ index.T
    np.fill_diagonal(sims, -np.inf)
    per_voice = len(index) // voices
    labels = np.arange(len(index)) // per_voice
    return float(np.mean(labels[sims.argmax(axis=1)] == labels))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--voices", type=int, default=6)
    parser.add_argument("--sentences", type=int, default=10)
    parser.add_argument("--sfx", type=int, default=48)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    VOICES_USED[:] = VOICES[:args.voices]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        speech = [speak(v, sentence(s), work) for v in VOICES_USED
                  for s in range(args.sentences)]
        sfx = [sox_effect(i, work) for i in range(args.sfx)]
    sets = {"speech": speech, "sfx": sfx}
    copies = {name: {t: [transformed(d)[t] for d in clips] for t in TRANSFORMS}
              for name, clips in sets.items()}
    result: dict[str, object] = {
        "speech_clips": len(speech), "voices": len(VOICES_USED), "sfx_clips": len(sfx),
        "speech_seconds": round(sum(duration(d) for d in speech), 1),
        "sfx_seconds": round(sum(duration(d) for d in sfx), 1), "threads": os.cpu_count()}
    for name in ("spectrum-baseline", "resemblyzer", "aisfx"):
        result[name] = evaluate(name, sets, copies, args.runs)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
