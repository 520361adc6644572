"""Settings: defaults, embedops.toml, EMBEDOPS_* environment, explicit overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from embedops.config import load_settings
from embedops.errors import ConfigError


def test_zero_config_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    s = load_settings()
    assert s.store == ".embedops" and s.model == "all-MiniLM-L6-v2"
    assert (s.chunk_tokens, s.chunk_overlap, s.chunker) == (256, 32, "tokens")


def test_precedence_flags_over_env_over_toml(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "embedops.toml").write_text(
        'model = "all-mpnet-base-v2"\nchunk_tokens = 128\nchunker = "sentences"\n')
    assert load_settings().model == "all-mpnet-base-v2"
    monkeypatch.setenv("EMBEDOPS_CHUNK_TOKENS", "64")
    s = load_settings()
    assert (s.chunk_tokens, s.chunker) == (64, "sentences")
    assert load_settings(chunk_tokens=100).chunk_tokens == 100


def test_config_file_named_by_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "other.toml"
    path.write_text('store = "/data/vectors"\n')
    monkeypatch.setenv("EMBEDOPS_CONFIG", str(path))
    assert load_settings().store == "/data/vectors"


@pytest.mark.parametrize("bad", [{"chunk_tokens": 4}, {"chunk_overlap": 300},
                                 {"chunker": "paragraphs"}, {"unicode_form": "NFD"}])
def test_invalid_settings_name_the_field(bad: dict[str, object]) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(**bad)
    assert next(iter(bad)) in str(err.value)
