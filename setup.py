"""The compiled part of embedops' single search (store/graph_search.py, store/hit_rows.py).

Everything else is declared in pyproject.toml. The extension is optional: where no C
compiler is found the package installs without it and the store searches through
faiss's own search and makes its hits in Python instead (slower by the figures in
docs/benchmarks-store.md).
"""

from setuptools import Extension, setup

FLAGS = ["-O3", "-std=c11", "-Wall", "-Wextra"]

setup(ext_modules=[
    Extension("embedops.store._graph_search", sources=["src/embedops/store/_graph_search.c"],
              # -ffp-contract=fast: the plain kernels' multiplies and adds fused where
              # the target has FMA in its base instruction set (aarch64; C11 mode leaves
              # them apart otherwise). The x86 kernels use FMA intrinsics themselves.
              extra_compile_args=[*FLAGS, "-ffp-contract=fast"],
              optional=True),
])
