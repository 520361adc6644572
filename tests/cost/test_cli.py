"""`embedops cost` through Typer: JSON keys, flags over scenario file, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import pytest
import typer
from typer.testing import CliRunner

from embedops.cli import cost_cmd


def _app() -> typer.Typer:
    app = typer.Typer(pretty_exceptions_enable=False, add_completion=False)

    @app.callback()
    def root(ctx: typer.Context,
             json_out: Annotated[bool, typer.Option("--json")] = False) -> None:
        ctx.obj = {"store": None, "json": json_out}

    app.command(name="cost")(cost_cmd.cost)
    return app


def _run(*args: str) -> Any:
    return CliRunner().invoke(_app(), ["cost", *args])


def _json(*args: str) -> dict[str, Any]:
    result = _run(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_json_has_the_documented_nested_keys() -> None:
    data = _json("--documents", "500M", "--tokens-per-doc", "200", "--api-price-per-mtok", "0.02")
    for section, keys in {
        "generation": ["tokens", "api_cost_usd", "gpu_hours", "gpu_cost_usd",
                       "time_to_embed_hours", "break_even_re_embeds",
                       "break_even_monthly_tokens"],
        "storage": ["raw_bytes", "index_bytes_low", "index_bytes_high", "ram_bytes",
                    "nodes_needed", "usd_per_month"],
        "query": ["distances_per_query", "distances_per_second", "nodes_needed"],
    }.items():
        assert set(keys) <= set(data[section]), section
    assert list(data["what_ifs"]) == ["baseline", "half_dim", "int8", "float16"]
    assert data["generation"]["tokens"] == 100e9
    assert data["generation"]["api_cost_usd"] == pytest.approx(2000.0)
    assert data["storage"]["raw_bytes"] == 1_536_000_000_000


def test_every_issue_flag_reaches_the_scenario() -> None:
    data = _json("--documents", "1000", "--tokens-per-doc", "50", "--dim", "256",
                 "--dtype", "float16", "--api-price-per-mtok", "0.1",
                 "--gpu-price-per-hour", "2", "--gpu-docs-per-second", "40", "--qps", "7",
                 "--replicas", "2", "--index-type", "ivf", "--ivf-nlist", "10",
                 "--ef-search", "32", "--hnsw-m", "8", "--re-embeds-per-year", "3",
                 "--storage-price-per-gb-month", "0.01", "--ram-per-node-gb", "32",
                 "--node-price-per-hour", "0.3")
    got = data["inputs"]
    assert (got["documents"], got["tokens_per_doc"], got["dim"], got["dtype"]) == \
        (1000, 50.0, 256, "float16")
    assert (got["api_price_per_mtok"], got["gpu_price_per_hour"], got["gpu_docs_per_second"],
            got["qps"], got["replicas"], got["index_type"], got["ivf_nlist"]) == \
        (0.1, 2.0, 40.0, 7.0, 2, "ivf", 10)
    assert (got["ef_search"], got["hnsw_m"], got["re_embeds_per_year"]) == (32, 8, 3.0)
    assert data["storage"]["raw_bytes"] == 1000 * 256 * 2


def test_flags_override_the_scenario_file(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text('documents = 2000\ndim = 384\ndtype = "int8"\n', encoding="utf-8")
    data = _json("--scenario", str(path), "--dim", "128")
    assert data["storage"]["raw_bytes"] == 2000 * 128 * 1


def test_root_json_flag_also_selects_json() -> None:
    result = CliRunner().invoke(_app(), ["--json", "cost", "--documents", "10"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["inputs"]["documents"] == 10


def test_tables_for_people() -> None:
    result = _run("--documents", "1B", "--gpu-docs-per-second", "10000")
    assert result.exit_code == 0, result.output
    for words in ("generation", "storage", "what-ifs", "half_dim", "27.8 h", "decimal"):
        assert words in result.stdout


@pytest.mark.parametrize(("args", "field"), [
    (["--documents", "-5"], "documents"),
    (["--documents", "0"], "documents"),
    (["--dtype", "int4"], "dtype"),
    (["--dim", "0"], "dim"),
    (["--qps", "-1"], "qps"),
    (["--gpu-docs-per-second", "0"], "gpu_docs_per_second"),
])
def test_invalid_input_exits_non_zero_with_one_line(args: list[str], field: str) -> None:
    result = _run(*args)
    assert result.exit_code == 2
    assert result.exception is None or isinstance(result.exception, SystemExit)
    message = " ".join(result.output.split())
    assert f"invalid_cost_input): {field}:" in message
    assert "Traceback" not in result.output
    assert result.stdout.count("\n") <= 2


def test_cost_has_help() -> None:
    result = _run("--help")
    assert result.exit_code == 0
    assert "--gpu-docs-per-second" in result.stdout and "--json" in result.stdout
