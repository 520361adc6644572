"""The machine a benchmark ran on, as its JSON reports it: the CPU's model name, its
cores, and the vector instructions that decide how fast the compiled distances and
int8 models run (the machines of one kind differ: some AVX2 only, some AVX-512 VNNI)."""

from __future__ import annotations

import os
import platform
from pathlib import Path

SIMD_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni")


def machine() -> str:
    """E.g. ``AMD EPYC, 2 cores, avx2`` (``no AVX2`` where it has none of them)."""
    name, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and name in ("", platform.machine()):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    simd = [f for f in SIMD_FLAGS if f in flags]
    return f"{name}, {os.cpu_count()} cores, {' '.join(simd) or 'no AVX2'}"
