"""Audio similarity with two offline models shipped in their packages:

- ``resemblyzer`` (speaker embeddings, 256-d): a 3-layer LSTM over 40-band mel frames
  of 16 kHz audio, run on 1.6 s windows and averaged; the package's own preprocessing
  (long silences trimmed by WebRTC VAD), with the loudness set to -30 dBFS in both
  directions (the package only raises it), so a clip's gain does not move its vector.
- ``aisfx`` (sound-effect embeddings, 512-d): a CNN over 96-band log-mel frames of
  44.1 kHz audio, run on ~2.3 s blocks with 50 % overlap and averaged.

Audio is decoded with soundfile and resampled with soxr (``preprocess/audio.py``) for
both, so the same file gives the same samples to either model.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np

from embedops.embedders.base import EmbedderInfo, make_fingerprint
from embedops.embedders.media_base import (
    MediaEmbedder,
    decode_or_refuse,
    package_file,
    weight_digest,
)
from embedops.preprocess.audio import load_mono

AUDIO_INPUTS = {"document": ("audio",), "query": ("audio",)}
# resemblyzer: windows shorter than this after silence trimming keep the untrimmed clip
MIN_VOICED_SECONDS = 0.5


def resemblyzer_info(cache_dir: Path) -> EmbedderInfo:
    weights, version = package_file("resemblyzer", "resemblyzer", "pretrained.pt")
    digest = weight_digest(weights, cache_dir)
    fingerprint = make_fingerprint({
        "name": "resemblyzer", "weights": digest, "package": version, "rate": 16000,
        "resampler": "soxr-hq", "preprocess": "volume=-30dBFS-both-ways,vad-trim",
        "min_voiced": MIN_VOICED_SECONDS, "windows": "1.6s@1.3/s-mean", "normalize": True})
    return EmbedderInfo("resemblyzer", digest[:12], 256, 0, "audio", "torch",
                        f"resemblyzer=={version}", fingerprint, inputs=AUDIO_INPUTS)


class ResemblyzerEmbedder(MediaEmbedder):
    """Speaker embeddings (256-d) of speech clips."""

    def __init__(self, cache_dir: Path, batch_size: int = 8) -> None:
        super().__init__(batch_size)
        self.info = resemblyzer_info(cache_dir)
        self._encoder: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        with self._lock:
            if self._encoder is None:
                from resemblyzer import VoiceEncoder

                self._encoder = VoiceEncoder(device="cpu", verbose=False).eval()
            return self._encoder

    def _embed_media(self, items: list[bytes]) -> np.ndarray:
        from resemblyzer.audio import normalize_volume, trim_long_silences
        from resemblyzer.hparams import audio_norm_target_dBFS

        encoder = self._load()
        out = []
        for data in items:
            wav = decode_or_refuse("resemblyzer", lambda d: load_mono(d, 16000), data)
            wav = normalize_volume(wav, audio_norm_target_dBFS).astype(np.float32)
            voiced = trim_long_silences(wav)
            if len(voiced) < MIN_VOICED_SECONDS * 16000:  # no speech found: the whole clip
                voiced = wav
            out.append(encoder.embed_utterance(voiced.astype(np.float32)))
        return np.stack(out).astype(np.float32)


AISFX_RATE = 44100
AISFX_BLOCK, AISFX_HOP = 100, 50  # spectrogram frames per block (~2.3 s), hop (50 %)
AISFX_SPEC_MAX = 9.457798957824707  # the package's min-max normalisation ("original")


def aisfx_info(cache_dir: Path) -> EmbedderInfo:
    weights, version = package_file("aisfx", "aisfx", "models/checkpoint.pth")
    digest = weight_digest(weights, cache_dir)
    fingerprint = make_fingerprint({
        "name": "aisfx", "weights": digest, "package": version, "rate": AISFX_RATE,
        "resampler": "soxr-hq", "mel": "librosa-htk-96-2048-1024-log10(1e4x+1)",
        "blocks": [AISFX_BLOCK, AISFX_HOP], "pooling": "mean", "normalize": True})
    return EmbedderInfo("aisfx", digest[:12], 512, 0, "audio", "torch",
                        f"aisfx=={version}", fingerprint, inputs=AUDIO_INPUTS)


def load_aisfx_model(weights: Path) -> Any:
    """The package's network with its checkpoint. The checkpoint pickles numpy integers
    beside the tensors, so torch's safe loader is told to allow exactly those."""
    import torch
    from aisfx.models.cnn2d import CrossNet, EmbeddingNet

    scalar = np._core.multiarray.scalar  # pickled under its numpy 1 name
    allowed = [(scalar, "numpy.core.multiarray.scalar"), scalar, np.dtype,
               type(np.dtype(np.int64))]
    with torch.serialization.safe_globals(allowed):
        state, datasets = torch.load(weights, map_location="cpu", weights_only=True)
    model = CrossNet(EmbeddingNet("max", 3, 1, 64), datasets, "cpu")
    model.load_state_dict(state)
    return model.eval()


def aisfx_spectrogram(wav: np.ndarray) -> np.ndarray:
    """Frames x 96 log-mel spectrogram, as ``aisfx`` computes it with librosa
    (peak-normalised audio, HTK mel, power 2, log10(1e4·S + 1), min-max scaled)."""
    import librosa

    peak = float(np.abs(wav).max()) or 1.0
    spec = librosa.feature.melspectrogram(
        y=wav / peak, sr=AISFX_RATE, n_mels=96, norm=1.0, fmin=0.0, fmax=22050.0, htk=True,
        power=2.0, hop_length=1024, win_length=2048)
    return (np.log10(spec * 10000.0 + 1) / AISFX_SPEC_MAX).T.astype(np.float32)


def spectrogram_blocks(spec: np.ndarray) -> np.ndarray:
    """Blocks of ``AISFX_BLOCK`` frames every ``AISFX_HOP`` (the last partial one
    dropped unless it is the only one, which is zero-padded)."""
    if spec.shape[0] < AISFX_BLOCK:
        spec = np.vstack([spec, np.zeros((AISFX_BLOCK - spec.shape[0], spec.shape[1]),
                                         dtype=np.float32)])
    starts = range(0, spec.shape[0] - AISFX_BLOCK + 1, AISFX_HOP)
    return np.stack([spec[s:s + AISFX_BLOCK] for s in starts])


class AisfxEmbedder(MediaEmbedder):
    """Sound-effect embeddings (512-d) of audio clips."""

    def __init__(self, cache_dir: Path, batch_size: int = 8) -> None:
        super().__init__(batch_size)
        self.info = aisfx_info(cache_dir)
        self._weights = package_file("aisfx", "aisfx", "models/checkpoint.pth")[0]
        self._model: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                self._model = load_aisfx_model(self._weights)
            return self._model

    def _embed_media(self, items: list[bytes]) -> np.ndarray:
        import torch

        model = self._load()
        out = []
        for data in items:
            wav = decode_or_refuse("aisfx", lambda d: load_mono(d, AISFX_RATE), data)
            blocks = spectrogram_blocks(aisfx_spectrogram(wav))
            with torch.inference_mode():
                per_block = model.get_embedding(torch.from_numpy(blocks)).numpy()
            out.append(per_block.mean(axis=0))
        return np.stack(out).astype(np.float32)
