"""One typed settings object, built once by an interface (CLI, server) and passed down.

Sources, highest priority first: explicit keyword arguments, ``EMBEDOPS_*`` environment
variables, ``embedops.toml`` in the working directory (or the file named by
``EMBEDOPS_CONFIG``), then the defaults below. Nothing reads settings at import time.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from embedops.errors import ConfigError

DEFAULT_MODEL = "all-MiniLM-L6-v2"


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "embedops"


class Settings(BaseSettings):
    """Every knob of embedops with its default. Zero config works."""

    model_config = SettingsConfigDict(
        env_prefix="EMBEDOPS_", extra="ignore", validate_default=True
    )

    store: Path = Field(Path(".embedops"), description="Directory of the embedded store.")
    model: str = Field(DEFAULT_MODEL, description="Default embedding model.")
    backend: Literal["auto", "torch", "onnx"] = Field(
        "auto", description="Local inference engine; auto picks the fastest installed one."
    )
    cache_dir: Path = Field(
        default_factory=_default_cache_dir,
        description="Where reassembled weights and exported ONNX graphs are kept.",
    )
    chunker: Literal["tokens", "sentences"] = "tokens"
    chunk_tokens: int = Field(256, ge=8)
    chunk_overlap: int = Field(32, ge=0)
    sentences_per_chunk: int = Field(4, ge=1)
    unicode_form: Literal["NFC", "NFKC"] = "NFC"
    min_words: int = Field(1, ge=0, description="Inputs with fewer real words are rejected.")
    batch_size: int = Field(32, ge=1, description="Texts per model forward pass.")

    @model_validator(mode="after")
    def _check_overlap(self) -> Settings:
        if self.chunk_overlap >= self.chunk_tokens:
            raise ValueError("chunk_overlap must be smaller than chunk_tokens")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_path = Path(os.environ.get("EMBEDOPS_CONFIG", "embedops.toml"))
        return (
            init_settings,
            env_settings,
            TomlConfigSettingsSource(settings_cls, toml_file=toml_path),
        )


def load_settings(**overrides: object) -> Settings:
    """Build the settings; invalid values raise :class:`ConfigError` naming the field."""
    clean = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(**clean)  # type: ignore[arg-type]
    except ValueError as exc:  # pydantic.ValidationError subclasses ValueError
        raise ConfigError(f"invalid settings: {exc}") from exc
