"""Scenario validation, TOML scenario files, and flags-over-file precedence."""

from __future__ import annotations

from pathlib import Path

import pytest

from embedops.cost import Scenario, default_sources, load_scenario, scenario_from
from embedops.cost.units import parse_count
from embedops.errors import InvalidCostInput


@pytest.mark.parametrize(("field", "value", "words"), [
    ("documents", -1, "greater than 0"),
    ("documents", 0, "greater than 0"),
    ("documents", 1.5, "whole number"),
    ("tokens_per_doc", 0, "greater than 0"),
    ("dim", 0, "greater than 0"),
    ("dtype", "int4", "unknown dtype"),
    ("index_type", "lsh", "unknown index type"),
    ("hnsw_m", 1, "at least 2"),
    ("replicas", 0, "at least 1"),
    ("qps", -0.1, "at least 0"),
    ("api_price_per_mtok", -0.02, "at least 0"),
    ("gpu_docs_per_second", 0, "greater than 0"),
    ("ram_per_node_gb", 0, "greater than 0"),
    ("storage_price_per_gb_month", float("nan"), "finite"),
    ("dim", "768", "expected a number"),
    ("replicas", True, "expected a number"),
])
def test_invalid_inputs_name_their_field(field: str, value: object, words: str) -> None:
    with pytest.raises(InvalidCostInput) as info:
        Scenario(**{field: value})  # type: ignore[arg-type]
    assert info.value.field == field
    assert words in info.value.message
    assert info.value.status_code == 400


def test_zero_is_allowed_where_it_means_none() -> None:
    s = Scenario(qps=0, re_embeds_per_year=0, api_price_per_mtok=0, gpu_price_per_hour=0,
                 self_hosted_setup_usd=0, storage_price_per_gb_month=0)
    assert (s.qps, s.re_embeds_per_year) == (0.0, 0.0)


def test_overhead_bounds_must_be_ordered() -> None:
    with pytest.raises(InvalidCostInput, match="index_overhead_high"):
        Scenario(index_overhead_low=3, index_overhead_high=2)


def test_integral_floats_become_ints_and_dtype_is_normalised() -> None:
    s = Scenario(documents=5e8, dtype=" Float16 ")
    assert s.documents == 500_000_000 and isinstance(s.documents, int)
    assert s.dtype == "float16" and s.bytes_per_value == 2


@pytest.mark.parametrize(("text", "value"), [
    ("500000000", 500_000_000), ("500_000_000", 500_000_000), ("5e8", 500_000_000),
    ("500M", 500_000_000), ("1B", 10**9), ("2.5k", 2500), ("1,000", 1000),
])
def test_parse_count(text: str, value: int) -> None:
    assert parse_count("documents", text) == value


@pytest.mark.parametrize("text", ["", "ten", "1.5", "1e400", "5X"])
def test_parse_count_rejects(text: str) -> None:
    with pytest.raises(InvalidCostInput, match="documents"):
        parse_count("documents", text)


def test_every_default_has_a_source() -> None:
    sources = default_sources()
    assert set(sources) == {f for f in Scenario.__dataclass_fields__}
    assert all(len(source) > 10 for _, source in sources.values())


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "scenario.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_toml_scenario_loads(tmp_path: Path) -> None:
    path = _write(tmp_path, 'documents = 5e8\ndim = 384\ndtype = "int8"\nqps = 100\n')
    s = load_scenario(path)
    assert (s.documents, s.dim, s.dtype, s.qps) == (500_000_000, 384, "int8", 100.0)
    assert s.tokens_per_doc == Scenario().tokens_per_doc


def test_toml_scenario_table_and_flags_override_file(tmp_path: Path) -> None:
    path = _write(tmp_path, '[scenario]\ndocuments = 1000\ndim = 384\n')
    s = load_scenario(path, dim=1024, qps=None)
    assert (s.documents, s.dim) == (1000, 1024)


def test_throughput_flag_replaces_the_files_throughput(tmp_path: Path) -> None:
    path = _write(tmp_path, "gpu_tokens_per_minute = 600000\n")
    assert load_scenario(path).gpu_docs_per_second is None
    from_flag = load_scenario(path, gpu_docs_per_second=50)
    assert from_flag.gpu_tokens_per_minute is None and from_flag.docs_per_second == 50
    both = scenario_from({"gpu_docs_per_second": 50}, {"gpu_tokens_per_minute": 1_200_000})
    assert both.gpu_docs_per_second is None and both.docs_per_second == 100


@pytest.mark.parametrize(("text", "words"), [
    ("documents = 10\ncolour = 'red'\n", "colour"),
    ("documents = \n", "not valid TOML"),
    ("dim = -3\n", "dim"),
    ("dtype = 'bfloat16'\n", "dtype"),
])
def test_bad_scenario_files(tmp_path: Path, text: str, words: str) -> None:
    with pytest.raises(InvalidCostInput, match=words):
        load_scenario(_write(tmp_path, text))


def test_missing_scenario_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidCostInput, match="cannot read"):
        load_scenario(tmp_path / "absent.toml")


def test_unknown_override_is_refused() -> None:
    with pytest.raises(InvalidCostInput, match="colour"):
        load_scenario(colour="red")
