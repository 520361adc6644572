"""Decode and validate audio with soundfile (libsndfile): WAV, FLAC, Ogg (Vorbis,
Opus), MP3, AIFF; resampling with soxr.

Contract: :func:`decode_audio` never raises. It returns a :class:`DecodedAudio` (float32
samples, frames x channels, at the file's own rate) or a
:class:`~embedops.preprocess.images.MediaFailure`. The duration is read from the header
and checked before the samples are decoded, so a file that claims hours of audio is
refused without reading them.
"""

from __future__ import annotations

import hashlib
import io
import struct
from dataclasses import dataclass
from typing import Final

import numpy as np

from embedops.preprocess.images import MediaFailure

#: Containers accepted, by libsndfile's name for them.
AUDIO_FORMATS: Final[frozenset[str]] = frozenset({"WAV", "WAVEX", "FLAC", "OGG", "MP3",
                                                  "AIFF"})


@dataclass(frozen=True)
class AudioLimits:
    """Shortest and longest duration, sample-rate range, and the level under which a
    clip counts as silent (peak, dBFS)."""

    min_seconds: float = 0.1
    max_seconds: float = 600.0
    min_rate: int = 4_000
    max_rate: int = 192_000
    silence_dbfs: float = -60.0


@dataclass(frozen=True)
class DecodedAudio:
    """Decoded samples (float32, frames x channels) at ``rate`` Hz. ``digest`` is the
    SHA-256 of the samples: the same samples in another container (WAV to FLAC) keep it."""

    samples: np.ndarray
    rate: int
    format: str
    subtype: str
    digest: str

    @property
    def channels(self) -> int:
        return int(self.samples.shape[1])

    @property
    def seconds(self) -> float:
        return self.samples.shape[0] / self.rate

    def mono(self) -> np.ndarray:
        return self.samples.mean(axis=1).astype(np.float32)

    def metadata(self) -> dict[str, object]:
        return {"kind": "audio", "format": self.format.lower(), "codec": self.subtype.lower(),
                "sample_rate": self.rate, "channels": self.channels,
                "duration": round(self.seconds, 3), "content_sha256": self.digest}


DEFAULT_AUDIO_LIMITS: Final = AudioLimits()
#: What embedders decode with: bytes they get were validated against the configured
#: limits (settings ``audio_*``, at most these ceilings), so only the ceilings apply.
EMBED_AUDIO_LIMITS: Final = AudioLimits(min_seconds=0.0, max_seconds=14_400.0,
                                        silence_dbfs=-400.0)


def decode_audio(data: bytes, limits: AudioLimits = DEFAULT_AUDIO_LIMITS
                 ) -> DecodedAudio | MediaFailure:
    """Decode ``data``; a failure names its reason (``corrupt_audio``,
    ``truncated_audio``, ``unsupported_codec``, ``empty``, ``silent``,
    ``audio_too_short``, ``audio_too_long``)."""
    if not data:
        return MediaFailure("empty", "decode", "zero bytes")
    try:
        import soundfile as sf
    except ImportError:  # pragma: no cover - the media extra is not installed
        return MediaFailure("unsupported_codec", "decode",
                            "audio needs soundfile: pip install 'embedops[media]'")
    try:
        info = sf.info(io.BytesIO(data))
        problem = _check_header(info.format, info.samplerate, info.frames, limits)
        if problem is not None:
            return problem
        if _truncated_wav(data):
            return MediaFailure("truncated_audio", "decode",
                                "the WAV data chunk is shorter than its header says")
        samples, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except Exception as exc:  # libsndfile's failure modes on hostile files are open-ended
        return _failure(exc)
    return _validate(samples, int(rate), str(info.format), str(info.subtype), limits)


def _check_header(fmt: str, rate: int, frames: int, limits: AudioLimits
                  ) -> MediaFailure | None:
    if fmt not in AUDIO_FORMATS:
        return MediaFailure("unsupported_codec", "decode",
                            f"{fmt} audio is not accepted; use "
                            f"{', '.join(sorted(AUDIO_FORMATS))}")
    if not limits.min_rate <= rate <= limits.max_rate:
        return MediaFailure("unsupported_codec", "decode",
                            f"sample rate {rate} Hz outside {limits.min_rate}.."
                            f"{limits.max_rate}")
    if frames / rate > limits.max_seconds:
        return MediaFailure("audio_too_long", "validate",
                            f"{frames / rate:.1f} s > limit {limits.max_seconds:g} s")
    return None


def _validate(samples: np.ndarray, rate: int, fmt: str, subtype: str,
              limits: AudioLimits) -> DecodedAudio | MediaFailure:
    if samples.shape[0] == 0:
        return MediaFailure("empty", "validate", "no samples")
    if not np.isfinite(samples).all():
        return MediaFailure("corrupt_audio", "decode", "NaN or infinite samples")
    seconds = samples.shape[0] / rate
    if seconds < limits.min_seconds:
        return MediaFailure("audio_too_short", "validate",
                            f"{seconds:.3f} s < minimum {limits.min_seconds:g} s")
    if seconds > limits.max_seconds:
        return MediaFailure("audio_too_long", "validate",
                            f"{seconds:.1f} s > limit {limits.max_seconds:g} s")
    peak = float(np.abs(samples).max())
    if peak <= 10 ** (limits.silence_dbfs / 20):
        level = 20 * np.log10(peak) if peak > 0 else float("-inf")
        return MediaFailure("silent", "validate",
                            f"peak {level:.1f} dBFS <= {limits.silence_dbfs:g} dBFS")
    return DecodedAudio(samples, rate, fmt, subtype, sample_digest(samples, rate))


def sample_digest(samples: np.ndarray, rate: int) -> str:
    """SHA-256 of the rate, the shape and the float32 samples (not of the file)."""
    frames, channels = samples.shape
    digest = hashlib.sha256(f"PCM:{rate}:{frames}x{channels}:".encode())
    digest.update(np.ascontiguousarray(samples, dtype="<f4").tobytes())
    return digest.hexdigest()


def _truncated_wav(data: bytes) -> bool:
    """True when a RIFF/WAVE file's ``data`` chunk claims more bytes than follow it
    (libsndfile reads such a file silently short)."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return False
    pos = 12
    while pos + 8 <= len(data):
        chunk, size = data[pos:pos + 4], struct.unpack("<I", data[pos + 4:pos + 8])[0]
        if chunk == b"data":
            return size != 0xFFFFFFFF and pos + 8 + size > len(data)
        pos += 8 + size + (size & 1)
    return False


def _failure(exc: Exception) -> MediaFailure:
    detail = f"{type(exc).__name__}: {exc}"[:500]
    text = str(exc).lower()
    if "format not recognised" in text or "unsupported" in text or "not supported" in text:
        return MediaFailure("unsupported_codec", "decode", detail)
    if "truncat" in text or "unexpected end" in text or "premature" in text:
        return MediaFailure("truncated_audio", "decode", detail)
    return MediaFailure("corrupt_audio", "decode", detail)


def resample(samples: np.ndarray, rate: int, target: int) -> np.ndarray:
    """``samples`` (1-d or frames x channels) at ``target`` Hz (soxr, high quality)."""
    if rate == target:
        return samples.astype(np.float32, copy=False)
    import soxr

    return np.asarray(soxr.resample(samples, rate, target, quality="HQ"), dtype=np.float32)


def load_mono(data: bytes, rate: int, limits: AudioLimits = EMBED_AUDIO_LIMITS
              ) -> np.ndarray:
    """Mono float32 samples of an audio file at ``rate`` Hz; raises ValueError with the
    reason when it cannot be decoded."""
    decoded = decode_audio(data, limits)
    if isinstance(decoded, MediaFailure):
        raise ValueError(f"{decoded.reason}: {decoded.detail}")
    return resample(decoded.mono(), decoded.rate, rate)
