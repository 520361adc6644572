/* The AVX-512F intrinsics of the store's distance kernels (src/embedops/store/
 * _graph_search.c), written out lane by lane for CPUs without AVX-512: for tests alone
 * (tests/store/test_avx512_kernels.py). Built with -DEMBEDOPS_EMULATED_AVX512, the
 * module includes this after <immintrin.h>, compiles its AVX-512 kernels without the
 * avx512f target and lets `_kernels("avx512")` choose them on any x86-64 CPU. What runs
 * is then the kernels' own code -- their steps, tails, loads and sums -- with each
 * intrinsic as Intel documents it:
 *
 * - loads read 64 (`_mm512_loadu_ps`) or 16 (`_mm_loadu_si128`, native) bytes from any
 *   address, as many as the instructions read;
 * - `_mm512_fmadd_ps` rounds once per lane (`fmaf`), as the instruction does;
 * - `_mm512_reduce_add_ps` adds in GCC's order (avx512fintrin.h: the upper half to the
 *   lower, then the upper quarter, then lanes 0+2 and 1+3, then those two), so sums
 *   round as the compiled intrinsic rounds them;
 * - `_mm256_zeroupper` does nothing (no upper halves are left dirty here).
 */
#ifndef EMBEDOPS_AVX512_EMULATION_H
#define EMBEDOPS_AVX512_EMULATION_H

#include <math.h>
#include <stdint.h>
#include <string.h>

typedef float emu_m512 __attribute__((vector_size(64)));
typedef int32_t emu_m512i __attribute__((vector_size(64)));

static inline emu_m512 emu_mm512_setzero_ps(void) {
    emu_m512 z = {0};
    return z;
}

static inline emu_m512 emu_mm512_loadu_ps(const float *p) {
    emu_m512 v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline emu_m512 emu_mm512_add_ps(emu_m512 a, emu_m512 b) { return a + b; }

static inline emu_m512 emu_mm512_sub_ps(emu_m512 a, emu_m512 b) { return a - b; }

static inline emu_m512 emu_mm512_fmadd_ps(emu_m512 a, emu_m512 b, emu_m512 c) {
    emu_m512 r;
    for (int i = 0; i < 16; i++) r[i] = fmaf(a[i], b[i], c[i]);
    return r;
}

static inline float emu_mm512_reduce_add_ps(emu_m512 a) {
    float half[8], quarter[4];
    for (int i = 0; i < 8; i++) half[i] = a[8 + i] + a[i];
    for (int i = 0; i < 4; i++) quarter[i] = half[4 + i] + half[i];
    return (quarter[0] + quarter[2]) + (quarter[1] + quarter[3]);
}

/* 16 unsigned bytes (the low 16 of a 128-bit value) widened to 32-bit integers. */
static inline emu_m512i emu_mm512_cvtepu8_epi32(__m128i bytes) {
    uint8_t b[16];
    memcpy(b, &bytes, sizeof b);
    emu_m512i r;
    for (int i = 0; i < 16; i++) r[i] = b[i];
    return r;
}

static inline emu_m512 emu_mm512_cvtepi32_ps(emu_m512i a) {
    return __builtin_convertvector(a, emu_m512);
}

#define __m512 emu_m512
#define __m512i emu_m512i
#define _mm512_setzero_ps emu_mm512_setzero_ps
#define _mm512_loadu_ps emu_mm512_loadu_ps
#define _mm512_add_ps emu_mm512_add_ps
#define _mm512_sub_ps emu_mm512_sub_ps
#define _mm512_fmadd_ps emu_mm512_fmadd_ps
#define _mm512_reduce_add_ps emu_mm512_reduce_add_ps
#define _mm512_cvtepu8_epi32 emu_mm512_cvtepu8_epi32
#define _mm512_cvtepi32_ps emu_mm512_cvtepi32_ps
#define _mm256_zeroupper() ((void)0)

#endif
