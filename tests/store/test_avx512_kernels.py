"""The AVX-512 distance kernels, run on a CPU without AVX-512.

The compiled search is built again with ``-DEMBEDOPS_EMULATED_AVX512``: its AVX-512
kernels compile from the same source with their intrinsics written out lane by lane
(``tests/store/avx512_emulation.h``), and ``_kernels("avx512")`` chooses them on any
x86-64 CPU. ``test_graph_search.py``'s kernel tests (scores in every dimension against
numpy, the search against faiss's, int8 codes) then run on that build in a process of
their own with the "avx512" kernels, so a kernel's steps, tails, loads and sums are
checked here and in CI, not only on AVX-512 machines.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "src" / "embedops" / "store" / "_graph_search.c"

# Loads the emulated build as ``embedops.store._graph_search`` before anything imports
# the store, checks that it is the one in use, and runs pytest on the arguments.
LOADER = """
import importlib.util, sys
spec = importlib.util.spec_from_file_location("embedops.store._graph_search", sys.argv[1])
module = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = module
spec.loader.exec_module(module)
assert module._EMULATED_AVX512 == 1, "not the emulated build"
assert module._kernels() == "avx512", module._kernels()
from embedops.store import _graph_search, graph_search
assert _graph_search is module and graph_search.compiled()
import pytest
sys.exit(pytest.main(sys.argv[2:]))
"""

pytestmark = pytest.mark.skipif(
    platform.machine() not in ("x86_64", "AMD64") or sys.platform != "linux",
    reason="the x86 kernels are built on x86-64 Linux")


def _emulated_build(directory: Path) -> Path:
    """The compiled search built with the AVX-512 intrinsics emulated, in ``directory``."""
    compiler = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
    if compiler is None:
        pytest.skip("no C compiler")
    target = directory / f"_graph_search{sysconfig.get_config_var('EXT_SUFFIX')}"
    built = subprocess.run([compiler, "-shared", "-fPIC", "-O2", "-std=c11", "-Wall",
                            "-Wextra", "-Wno-psabi", "-pthread", "-DEMBEDOPS_EMULATED_AVX512",
                            f"-I{sysconfig.get_paths()['include']}",
                            f"-I{Path(__file__).parent}", str(SOURCE), "-o", str(target),
                            "-lm"], capture_output=True, text=True)
    assert built.returncode == 0, built.stderr[-4000:]
    return target


def test_the_avx512_kernels_pass_the_kernel_tests(tmp_path: Path) -> None:
    built = _emulated_build(tmp_path)
    run = subprocess.run(
        [sys.executable, "-c", LOADER, str(built), "tests/store/test_graph_search.py",
         "-k", "avx512", "-q", "-p", "no:cacheprovider", "-p", "no:xdist", "-rfEs"],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    summary = run.stdout.strip().splitlines()[-1] if run.stdout.strip() else ""
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    passed = re.search(r"(\d+) passed", summary)
    # every kernel test ran with the "avx512" kernels (none skipped for want of them)
    assert passed is not None and int(passed.group(1)) >= 20, summary
    assert "skipped" not in summary and "failed" not in summary, summary
