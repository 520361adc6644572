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
              # -Wno-psabi: the distance kernels' 64-byte vectors change the calling
              # convention of the versions built without AVX-512; they are static and
              # never cross a library boundary.
              # -ffp-contract=fast: a multiply and an add fused (FMA) where the
              # instruction set has it (C11 mode leaves them apart otherwise).
              extra_compile_args=[*FLAGS, "-Wno-psabi", "-ffp-contract=fast"],
              optional=True),
])
