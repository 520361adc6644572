"""A model directory registered under a name loads by that name, with a fingerprint of
its own, and a broken registration says what is wrong. Registrations go to the test
session's cache (``model_cache``), under names no other test uses."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from embedops.embedders import list_models, load_embedder
from embedops.embedders.local import LocalModel
from embedops.embedders.named_models import lookup, register, registered
from embedops.errors import ConfigError, ModelNotFound


def test_a_registered_directory_loads_by_name(model_cache: Path, tiny_model: Path) -> None:
    names = ("named-alpha", "named-beta")
    for name in names:
        register(name, tiny_model, model_cache)
    assert {n: registered(model_cache)[n] for n in names} == dict.fromkeys(
        names, tiny_model.resolve())
    alpha, beta = (LocalModel.resolve(n, model_cache).info("torch", "fp32") for n in names)
    assert alpha.name == "named-alpha" and alpha.dim == 32
    assert alpha.fingerprint != beta.fingerprint  # the name is part of the identity
    embedder = load_embedder("named-alpha", model_cache, backend="torch")
    assert embedder.embed(["a seal for the digger"], "query").shape == (1, 32)
    rows = {r.name: r for r in list_models(model_cache)}
    assert rows["named-alpha"].installed
    assert rows["named-alpha"].fingerprint == alpha.fingerprint


def test_bad_registrations_are_refused(tmp_path: Path, model_cache: Path,
                                       tiny_model: Path) -> None:
    with pytest.raises(ConfigError, match="invalid model name"):
        register("team/model", tiny_model, model_cache)
    with pytest.raises(ConfigError, match="shipped model"):
        register("all-minilm-l6-v2", tiny_model, model_cache)
    with pytest.raises(ModelNotFound, match=r"no config\.json"):
        register("named-empty", tmp_path, model_cache)
    assert lookup("never-registered", model_cache) is None


def test_a_registered_directory_that_is_gone_is_named(tmp_path: Path, model_cache: Path,
                                                      tiny_model: Path) -> None:
    copy = shutil.copytree(tiny_model, tmp_path / "copy")
    register("named-gone", copy, model_cache)
    shutil.rmtree(copy)
    with pytest.raises(ModelNotFound, match="no longer holds a model"):
        LocalModel.resolve("named-gone", model_cache)
    assert not {r.name: r for r in list_models(model_cache)}["named-gone"].installed
    register("named-gone", tiny_model, model_cache)  # re-pointing repairs it
    assert LocalModel.resolve("named-gone", model_cache).directory == tiny_model.resolve()
