/*
 * One query's HNSW search over a faiss HnswFlat graph, read where faiss keeps it.
 *
 * The store's single-query path (store/graph_search.py): the standard HNSW search (a
 * greedy descent through the upper levels, then a beam of `ef` candidates at level 0,
 * as in Malkov & Yashunin and hnswlib), over faiss's own arrays (the links, each node's
 * offset into them, the float32 vectors), with each node's key and alive bit read from
 * the store's own arrays. It runs with the interpreter lock let go,
 * and keeps, per thread, the visited marks and the two heaps it needs from one search
 * to the next, so that a search allocates and clears nothing.
 *
 * A removed node (alive bit 0) routes the search but is never returned, as faiss's
 * IDSelectorBitmap does. Results come best first, padded to k with key -1 (and score
 * -inf for inner products, +inf for squared L2) when fewer live nodes are reached.
 *
 * The caller guarantees that the arrays do not change while a search runs (the store's
 * index lock: inserts, which reallocate faiss's arrays, hold it exclusively) and makes
 * a new GraphView after any insert.
 *
 * The module also makes a search's hits from the rows the store's hit cache keeps
 * (store/hit_rows.py): hits() from keys and scores already found, GraphView.hits() in
 * the same call as the search, so that a single search whose points are all cached
 * goes from the query to its hits in one call.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LEVELS 64

typedef struct {
    float dist; /* smaller is better: -inner product, or squared L2 */
    int32_t node;
} Item;

typedef struct {
    Item *items;
    size_t size, cap;
} Heap;

typedef struct {
    uint16_t *marks; /* marks[node] == epoch: visited in this search (2 bytes a node:
                        the marks of 1M nodes cleared once every 65,535 searches) */
    size_t marks_cap;
    uint16_t epoch;
    Heap candidates; /* min-heap: the closest unexpanded node on top */
    Heap best;       /* max-heap of at most ef: the farthest kept node on top */
    float *shifted;  /* an int8 graph's L2 query, shifted to the codes' offset */
    size_t shifted_cap;
} Scratch;

static pthread_key_t scratch_key;

static void scratch_free(void *p) {
    Scratch *s = (Scratch *)p;
    if (s == NULL) return;
    free(s->marks);
    free(s->candidates.items);
    free(s->best.items);
    free(s->shifted);
    free(s);
}

/* --- distances --------------------------------------------------------------------- */

/* Every distance is computed by a kernel written for one instruction set: AVX-512, AVX2
 * with FMA, or plain C (which GCC turns into SSE on x86-64), the widest this CPU runs
 * chosen when the module loads (choose_kernels). The float32 kernels were once GCC's
 * vector extension built three ways (target_clones): its AVX-512 version ran as fast as
 * faiss's own search, but in its AVX2 version GCC kept the sixteen-lane sums in memory,
 * moved through general registers, and left the multiplies and adds unfused, so on a CPU
 * without AVX-512 the store's search ran at 0.45x faiss's rate on the same graph
 * (docs/benchmarks-store.md, "Distance kernels for CPUs without AVX-512").
 *
 * float32 rows: a.b (inner_product) and |a - b|^2 (squared_l2).
 *
 * An int8 graph's codes (faiss's QT_8bit_direct_signed: each value stored as the byte
 * value + 128) against a float query: the sum of q[i] * code[i] (code_dot), and of the
 * squares of q[i] - code[i] (code_l2), the offset applied by the caller. Each code is
 * widened to a float in registers.
 *
 * Each AVX kernel clears the upper halves of the vector registers (vzeroupper) before it
 * returns or calls the plain kernel for its tail: GCC 12 left that out of these
 * functions, and the search's own SSE code, run after them with the upper state dirty,
 * took the int8 search down to 0.23x faiss's rate on the same graph (4,700 against
 * 20,900 searches/s, 100k clustered codes, ef 64; 22,900 with the registers cleared;
 * docs/benchmarks-store.md). */
typedef float (*FloatKernel)(const float *restrict, const float *restrict, Py_ssize_t);
typedef float (*CodeKernel)(const float *restrict, const uint8_t *restrict, Py_ssize_t);

/* Eight running sums, each lane its own: GCC vectorises them without reordering a sum. */
static float dot_plain(const float *restrict a, const float *restrict b, Py_ssize_t d) {
    float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    Py_ssize_t i = 0;
    for (; i + 8 <= d; i += 8)
        for (int j = 0; j < 8; j++) s[j] += a[i + j] * b[i + j];
    float total = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
    for (; i < d; i++) total += a[i] * b[i];
    return total;
}

static float l2_plain(const float *restrict a, const float *restrict b, Py_ssize_t d) {
    float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    Py_ssize_t i = 0;
    for (; i + 8 <= d; i += 8)
        for (int j = 0; j < 8; j++) {
            float t = a[i + j] - b[i + j];
            s[j] += t * t;
        }
    float total = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
    for (; i < d; i++) {
        float t = a[i] - b[i];
        total += t * t;
    }
    return total;
}

static float code_dot_plain(const float *restrict q, const uint8_t *restrict c, Py_ssize_t d) {
    float s[4] = {0, 0, 0, 0};
    Py_ssize_t i = 0;
    for (; i + 4 <= d; i += 4)
        for (int j = 0; j < 4; j++) s[j] += q[i + j] * (float)c[i + j];
    float total = (s[0] + s[1]) + (s[2] + s[3]);
    for (; i < d; i++) total += q[i] * (float)c[i];
    return total;
}

static float code_l2_plain(const float *restrict q, const uint8_t *restrict c, Py_ssize_t d) {
    float s[4] = {0, 0, 0, 0};
    Py_ssize_t i = 0;
    for (; i + 4 <= d; i += 4)
        for (int j = 0; j < 4; j++) {
            float t = q[i + j] - (float)c[i + j];
            s[j] += t * t;
        }
    float total = (s[0] + s[1]) + (s[2] + s[3]);
    for (; i < d; i++) {
        float t = q[i] - (float)c[i];
        total += t * t;
    }
    return total;
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#define AVX2 __attribute__((target("avx2,fma")))
#ifdef EMBEDOPS_EMULATED_AVX512 /* tests alone: tests/store/avx512_emulation.h */
#define AVX512
#else
#define AVX512 __attribute__((target("avx512f")))
#endif

AVX2 static inline float sum8(__m256 v) {
    __m128 x = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    x = _mm_add_ps(x, _mm_movehl_ps(x, x));
    return _mm_cvtss_f32(_mm_add_ss(x, _mm_shuffle_ps(x, x, 1)));
}

/* Four sums of eight lanes: 32 values a step, the loads folded into the FMAs. */
AVX2 static float dot_avx2(const float *restrict a, const float *restrict b, Py_ssize_t d) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    __m256 s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
    Py_ssize_t i = 0;
    for (; i + 32 <= d; i += 32) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
        s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), s2);
        s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), s3);
    }
    for (; i + 8 <= d; i += 8)
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    float total = sum8(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    _mm256_zeroupper();
    return total + dot_plain(a + i, b + i, d - i); /* (the tail) */
}

AVX2 static float l2_avx2(const float *restrict a, const float *restrict b, Py_ssize_t d) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    __m256 s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
    Py_ssize_t i = 0;
    for (; i + 32 <= d; i += 32) {
        __m256 t0 = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
        __m256 t1 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8));
        __m256 t2 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16));
        __m256 t3 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24));
        s0 = _mm256_fmadd_ps(t0, t0, s0);
        s1 = _mm256_fmadd_ps(t1, t1, s1);
        s2 = _mm256_fmadd_ps(t2, t2, s2);
        s3 = _mm256_fmadd_ps(t3, t3, s3);
    }
    for (; i + 8 <= d; i += 8) {
        __m256 t = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
        s0 = _mm256_fmadd_ps(t, t, s0);
    }
    float total = sum8(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    _mm256_zeroupper();
    return total + l2_plain(a + i, b + i, d - i); /* (the tail) */
}

AVX2 static inline __m256 widen8(const uint8_t *c) {
    return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)c)));
}

AVX2 static float code_dot_avx2(const float *restrict q, const uint8_t *restrict c,
                                Py_ssize_t d) {
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    Py_ssize_t i = 0;
    for (; i + 16 <= d; i += 16) {
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), widen8(c + i), a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i + 8), widen8(c + i + 8), a1);
    }
    float total = sum8(_mm256_add_ps(a0, a1));
    _mm256_zeroupper();
    return total + code_dot_plain(q + i, c + i, d - i); /* (the tail) */
}

AVX2 static float code_l2_avx2(const float *restrict q, const uint8_t *restrict c,
                               Py_ssize_t d) {
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    Py_ssize_t i = 0;
    for (; i + 16 <= d; i += 16) {
        __m256 t0 = _mm256_sub_ps(_mm256_loadu_ps(q + i), widen8(c + i));
        __m256 t1 = _mm256_sub_ps(_mm256_loadu_ps(q + i + 8), widen8(c + i + 8));
        a0 = _mm256_fmadd_ps(t0, t0, a0);
        a1 = _mm256_fmadd_ps(t1, t1, a1);
    }
    float total = sum8(_mm256_add_ps(a0, a1));
    _mm256_zeroupper();
    return total + code_l2_plain(q + i, c + i, d - i); /* (the tail) */
}

#ifdef EMBEDOPS_EMULATED_AVX512
#include "avx512_emulation.h"
#endif

/* Four sums of sixteen lanes for a.b, two for |a - b|^2: the steps of the vector
 * extension's kernels these replace, which ran as fast as faiss's search. */
AVX512 static float dot_avx512(const float *restrict a, const float *restrict b,
                               Py_ssize_t d) {
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    __m512 s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
    Py_ssize_t i = 0;
    for (; i + 64 <= d; i += 64) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
        s2 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 32), _mm512_loadu_ps(b + i + 32), s2);
        s3 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 48), _mm512_loadu_ps(b + i + 48), s3);
    }
    for (; i + 16 <= d; i += 16)
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
    float total = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1),
                                                     _mm512_add_ps(s2, s3)));
    _mm256_zeroupper();
    return total + dot_plain(a + i, b + i, d - i); /* (the tail) */
}

AVX512 static float l2_avx512(const float *restrict a, const float *restrict b,
                              Py_ssize_t d) {
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    Py_ssize_t i = 0;
    for (; i + 32 <= d; i += 32) {
        __m512 t0 = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
        __m512 t1 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16));
        s0 = _mm512_fmadd_ps(t0, t0, s0);
        s1 = _mm512_fmadd_ps(t1, t1, s1);
    }
    for (; i + 16 <= d; i += 16) {
        __m512 t = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
        s0 = _mm512_fmadd_ps(t, t, s0);
    }
    float total = _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
    _mm256_zeroupper();
    return total + l2_plain(a + i, b + i, d - i); /* (the tail) */
}

AVX512 static inline __m512 widen16(const uint8_t *c) {
    return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)c)));
}

AVX512 static float code_dot_avx512(const float *restrict q, const uint8_t *restrict c,
                                    Py_ssize_t d) {
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
    Py_ssize_t i = 0;
    for (; i + 32 <= d; i += 32) {
        a0 = _mm512_fmadd_ps(_mm512_loadu_ps(q + i), widen16(c + i), a0);
        a1 = _mm512_fmadd_ps(_mm512_loadu_ps(q + i + 16), widen16(c + i + 16), a1);
    }
    float total = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
    _mm256_zeroupper();
    return total + code_dot_plain(q + i, c + i, d - i); /* (the tail) */
}

AVX512 static float code_l2_avx512(const float *restrict q, const uint8_t *restrict c,
                                   Py_ssize_t d) {
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
    Py_ssize_t i = 0;
    for (; i + 32 <= d; i += 32) {
        __m512 t0 = _mm512_sub_ps(_mm512_loadu_ps(q + i), widen16(c + i));
        __m512 t1 = _mm512_sub_ps(_mm512_loadu_ps(q + i + 16), widen16(c + i + 16));
        a0 = _mm512_fmadd_ps(t0, t0, a0);
        a1 = _mm512_fmadd_ps(t1, t1, a1);
    }
    float total = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
    _mm256_zeroupper();
    return total + code_l2_plain(q + i, c + i, d - i); /* (the tail) */
}
#endif

static FloatKernel inner_product = dot_plain, squared_l2 = l2_plain;
static CodeKernel code_dot = code_dot_plain, code_l2 = code_l2_plain;
static const char *kernels = "plain";

/* The kernels named `name` ("avx512", "avx2", "plain"), if this CPU runs them. */
static int use_kernels(const char *name) {
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
#ifdef EMBEDOPS_EMULATED_AVX512
    int has_avx512 = 1; /* (the kernels' intrinsics emulated: any x86-64 CPU) */
#else
    int has_avx512 = __builtin_cpu_supports("avx512f");
#endif
    if (strcmp(name, "avx512") == 0 && has_avx512) {
        inner_product = dot_avx512, squared_l2 = l2_avx512;
        code_dot = code_dot_avx512, code_l2 = code_l2_avx512, kernels = "avx512";
        return 1;
    }
    if (strcmp(name, "avx2") == 0 && __builtin_cpu_supports("avx2") &&
        __builtin_cpu_supports("fma")) {
        inner_product = dot_avx2, squared_l2 = l2_avx2;
        code_dot = code_dot_avx2, code_l2 = code_l2_avx2, kernels = "avx2";
        return 1;
    }
#endif
    if (strcmp(name, "plain") == 0) {
        inner_product = dot_plain, squared_l2 = l2_plain;
        code_dot = code_dot_plain, code_l2 = code_l2_plain, kernels = "plain";
        return 1;
    }
    return 0;
}

static void choose_kernels(void) {
    if (!use_kernels("avx512") && !use_kernels("avx2")) use_kernels("plain");
}

#define CODE_OFFSET 128.0f /* faiss's QT_8bit_direct_signed: the byte is the value + 128 */

/* --- heaps ------------------------------------------------------------------------- */

static int heap_reserve(Heap *h, size_t cap) {
    if (h->cap >= cap) return 0;
    size_t want = h->cap ? h->cap : 64;
    while (want < cap) want *= 2;
    Item *items = realloc(h->items, want * sizeof(Item));
    if (items == NULL) return -1;
    h->items = items;
    h->cap = want;
    return 0;
}

/* sign +1: max-heap (farthest on top); -1: min-heap (closest on top) */
static inline int above(Item a, Item b, int sign) {
    return sign > 0 ? a.dist > b.dist : a.dist < b.dist;
}

static int heap_push(Heap *h, Item it, int sign) {
    if (h->size == h->cap && heap_reserve(h, h->size + 1) < 0) return -1;
    size_t i = h->size++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!above(it, h->items[parent], sign)) break;
        h->items[i] = h->items[parent];
        i = parent;
    }
    h->items[i] = it;
    return 0;
}

static void heap_pop(Heap *h, int sign) {
    Item last = h->items[--h->size];
    size_t i = 0, n = h->size;
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= n) break;
        if (child + 1 < n && above(h->items[child + 1], h->items[child], sign)) child++;
        if (!above(h->items[child], last, sign)) break;
        h->items[i] = h->items[child];
        i = child;
    }
    if (n) h->items[i] = last;
}

/* --- the graph --------------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    PyObject *owner; /* the faiss index whose memory the buffers point into */
    Py_buffer vectors, links, offsets, keys, alive;
    Py_ssize_t dim, nodes;
    int32_t entry;
    int max_level;
    int inner; /* 1: inner product, 0: squared L2 */
    int codes; /* 1: an int8 graph's codes (one byte a value), 0: float32 vectors */
    Py_ssize_t row_bytes; /* a node's vector or codes */
    int level_begin[MAX_LEVELS + 1]; /* faiss's cum_nneighbor_per_level */
} GraphView;

typedef struct {
    const GraphView *g;
    const float *query; /* an int8 graph's L2 query: shifted by CODE_OFFSET */
    float offset_term;  /* an int8 graph's inner product: CODE_OFFSET * the query's sum */
} Search;

static inline float distance(const Search *s, int32_t node) {
    const GraphView *g = s->g;
    const char *row = (const char *)g->vectors.buf + (Py_ssize_t)node * g->row_bytes;
    if (g->codes)
        return g->inner ? s->offset_term - code_dot(s->query, (const uint8_t *)row, g->dim)
                        : code_l2(s->query, (const uint8_t *)row, g->dim);
    return g->inner ? -inner_product(s->query, (const float *)row, g->dim)
                    : squared_l2(s->query, (const float *)row, g->dim);
}

static inline int is_alive(const GraphView *g, int32_t node) {
    return (((const uint8_t *)g->alive.buf)[node >> 3] >> (node & 7)) & 1;
}

static inline void links_of(const GraphView *g, int32_t node, int level,
                            const int32_t **begin, const int32_t **end) {
    const size_t base = ((const uint64_t *)g->offsets.buf)[node];
    const int32_t *links = (const int32_t *)g->links.buf;
    *begin = links + base + g->level_begin[level];
    *end = links + base + g->level_begin[level + 1];
}

#define FRESH_MAX 1024 /* level-0 links a node may hold (faiss: 2M; GraphView checks) */
/* Neighbours' vectors fetched ahead of their distances (1, 2 and 4 timed alike on 4,500
 * MiniLM vectors: the search waits on memory either way). */
#define PREFETCH_AHEAD 2

/* Every cache line of a node's vector, ahead of its distance. */
static inline void prefetch_vector(const GraphView *g, int32_t node) {
    const char *row = (const char *)g->vectors.buf + (Py_ssize_t)node * g->row_bytes;
    const char *end = row + g->row_bytes;
    /* (from the line the row starts in: a row need not start on a line) */
    for (const char *p = row - (uintptr_t)row % 64; p < end; p += 64) __builtin_prefetch(p);
}

static Scratch *scratch_for(Py_ssize_t nodes) {
    Scratch *s = pthread_getspecific(scratch_key);
    if (s == NULL) {
        s = calloc(1, sizeof(Scratch));
        if (s == NULL || pthread_setspecific(scratch_key, s) != 0) {
            free(s);
            return NULL;
        }
    }
    if (s->marks_cap < (size_t)nodes) {
        size_t cap = (size_t)nodes + (size_t)nodes / 4 + 1024;
        uint16_t *marks = calloc(cap, sizeof(uint16_t));
        if (marks == NULL) return NULL;
        free(s->marks);
        s->marks = marks;
        s->marks_cap = cap;
        s->epoch = 0;
    }
    if (++s->epoch == 0) { /* wrapped: clear the marks once */
        memset(s->marks, 0, s->marks_cap * sizeof(uint16_t));
        s->epoch = 1;
    }
    s->candidates.size = 0;
    s->best.size = 0;
    return s;
}

/* Greedy descent from the entry point to level 1: the closest node found. */
static int32_t descend(const Search *s, float *dist) {
    const GraphView *g = s->g;
    int32_t nearest = g->entry;
    float d_nearest = distance(s, nearest);
    for (int level = g->max_level; level >= 1; level--) {
        for (int moved = 1; moved;) {
            moved = 0;
            const int32_t *link, *end;
            links_of(g, nearest, level, &link, &end);
            for (; link < end && *link >= 0; link++) {
                if ((uint32_t)*link >= (uint32_t)g->nodes) continue; /* (as below) */
                float d = distance(s, *link);
                if (d < d_nearest) {
                    nearest = *link;
                    d_nearest = d;
                    moved = 1;
                }
            }
        }
    }
    *dist = d_nearest;
    return nearest;
}

/* The beam search at level 0; leaves at most ef live nodes in scratch->best.
 * Returns -1 when out of memory. */
static int search_level0(const Search *s, Scratch *sc, int32_t start, float d_start,
                         size_t ef) {
    const GraphView *g = s->g;
    uint16_t *marks = sc->marks, epoch = sc->epoch;
    const uint32_t nodes = (uint32_t)g->nodes;
    Heap *cand = &sc->candidates, *best = &sc->best;
    if (heap_reserve(best, ef + 1) < 0) return -1;
    marks[start] = epoch;
    Item first = {d_start, start};
    if (heap_push(cand, first, -1) < 0) return -1;
    if (is_alive(g, start)) heap_push(best, first, +1);
    float bound = best->size ? d_start : INFINITY;
    while (cand->size) {
        Item c = cand->items[0];
        if (c.dist > bound && best->size >= ef) break;
        heap_pop(cand, -1);
        const int32_t *link, *end;
        links_of(g, c.node, 0, &link, &end);
        int32_t fresh[FRESH_MAX];
        int count = 0;
        for (; link < end && *link >= 0 && count < FRESH_MAX; link++)
            if ((uint32_t)*link < nodes && marks[*link] != epoch) { /* (faiss keeps links
                below ntotal; checked all the same: a read past the arrays is a crash) */
                marks[*link] = epoch;
                fresh[count++] = *link;
            }
        for (int j = 0; j < count && j < PREFETCH_AHEAD; j++)
            prefetch_vector(g, fresh[j]);
        for (int j = 0; j < count; j++) {
            int32_t nb = fresh[j];
            if (j + PREFETCH_AHEAD < count) prefetch_vector(g, fresh[j + PREFETCH_AHEAD]);
            float d = distance(s, nb);
            if (best->size < ef || d < bound) {
                Item it = {d, nb};
                if (heap_push(cand, it, -1) < 0) return -1;
                if (is_alive(g, nb)) {
                    heap_push(best, it, +1); /* (room reserved above) */
                    if (best->size > ef) heap_pop(best, +1);
                    bound = best->items[0].dist;
                }
            }
        }
    }
    return 0;
}

static int cmp_items(const void *a, const void *b) {
    float x = ((const Item *)a)->dist, y = ((const Item *)b)->dist;
    if (x != y) return x < y ? -1 : 1;
    int32_t i = ((const Item *)a)->node, j = ((const Item *)b)->node;
    return (i > j) - (i < j);
}

/* --- the Python type --------------------------------------------------------------- */

static void GraphView_dealloc(GraphView *self) {
    Py_buffer *views[] = {&self->vectors, &self->links, &self->offsets, &self->keys,
                          &self->alive};
    for (size_t i = 0; i < sizeof(views) / sizeof(views[0]); i++)
        if (views[i]->obj != NULL) PyBuffer_Release(views[i]);
    Py_XDECREF(self->owner);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int take_buffer(PyObject *obj, Py_buffer *view, Py_ssize_t item, Py_ssize_t least,
                       const char *name) {
    if (PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS) < 0) return -1;
    if (view->len % item != 0) {
        PyErr_Format(PyExc_ValueError, "%s: items of %zd bytes expected", name, item);
        return -1;
    }
    if (view->len < least * item) {
        PyErr_Format(PyExc_ValueError, "%s: at least %zd items expected, got %zd", name,
                     least, view->len / item);
        return -1;
    }
    return 0;
}

static int GraphView_init(GraphView *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"owner", "vectors", "links", "offsets", "level_begin",
                             "keys", "alive", "dim", "nodes", "entry", "max_level",
                             "inner", "codes", NULL};
    PyObject *owner, *vectors, *links, *offsets, *level_begin, *keys, *alive;
    Py_ssize_t dim, nodes;
    int entry, max_level, inner, codes = 0;
    if (self->owner != NULL || self->vectors.obj != NULL) {
        PyErr_SetString(PyExc_TypeError, "a GraphView is made once");
        return -1;
    }
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOOOOOnniip|p", kwlist, &owner, &vectors,
                                     &links, &offsets, &level_begin, &keys, &alive,
                                     &dim, &nodes, &entry, &max_level, &inner, &codes))
        return -1;
    if (dim < 1 || nodes < 1 || entry < 0 || entry >= nodes || max_level < 0 ||
        nodes > INT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "a graph of at least one node expected");
        return -1;
    }
    PyObject *begins = PySequence_Fast(level_begin, "level_begin must be a sequence");
    if (begins == NULL) return -1;
    Py_ssize_t count = PySequence_Fast_GET_SIZE(begins);
    if (count < 2 || count > MAX_LEVELS + 1 || max_level + 1 >= count) {
        Py_DECREF(begins);
        PyErr_SetString(PyExc_ValueError, "level_begin does not cover the graph's levels");
        return -1;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        long v = PyLong_AsLong(PySequence_Fast_GET_ITEM(begins, i));
        if (v == -1 && PyErr_Occurred()) {
            Py_DECREF(begins);
            return -1;
        }
        self->level_begin[i] = (int)v;
    }
    Py_DECREF(begins);
    if (self->level_begin[0] != 0 || self->level_begin[1] - self->level_begin[0] > FRESH_MAX) {
        PyErr_Format(PyExc_ValueError, "level 0 must come first and hold at most %d links",
                     FRESH_MAX);
        return -1;
    }
    for (Py_ssize_t i = 1; i < count; i++)
        if (self->level_begin[i] < self->level_begin[i - 1]) {
            PyErr_SetString(PyExc_ValueError, "level_begin must not decrease");
            return -1;
        }
    Py_ssize_t item = codes ? 1 : (Py_ssize_t)sizeof(float);
    if (take_buffer(vectors, &self->vectors, item, nodes * dim, "vectors") < 0 ||
        take_buffer(links, &self->links, sizeof(int32_t), 0, "links") < 0 ||
        take_buffer(offsets, &self->offsets, sizeof(uint64_t), nodes + 1, "offsets") < 0 ||
        take_buffer(keys, &self->keys, sizeof(int64_t), nodes, "keys") < 0 ||
        take_buffer(alive, &self->alive, 1, (nodes + 7) / 8, "alive") < 0)
        return -1;
    const uint64_t *off = (const uint64_t *)self->offsets.buf;
    if (off[nodes] * sizeof(int32_t) > (uint64_t)self->links.len) {
        PyErr_SetString(PyExc_ValueError, "the offsets point past the links");
        return -1;
    }
    Py_INCREF(owner);
    self->owner = owner;
    self->dim = dim;
    self->nodes = nodes;
    self->entry = entry;
    self->max_level = max_level;
    self->inner = inner;
    self->codes = codes;
    self->row_bytes = dim * item;
    return 0;
}

/* One query's search, the interpreter lock let go: the calling thread's scratch with
 * the live nodes found, best first, in scratch->best; NULL when out of memory. */
static Scratch *search_query(const GraphView *g, const float *query, size_t ef) {
    Search s = {g, query, 0};
    Scratch *sc = scratch_for(g->nodes);
    if (sc == NULL) return NULL;
    if (g->codes && g->inner) { /* sum q * (code - 128) = sum q * code - 128 * sum q */
        double total = 0;
        for (Py_ssize_t i = 0; i < g->dim; i++) total += query[i];
        s.offset_term = CODE_OFFSET * (float)total;
    } else if (g->codes) { /* (q - (code - 128))^2 = ((q + 128) - code)^2 */
        if (sc->shifted_cap < (size_t)g->dim) {
            float *shifted = realloc(sc->shifted, (size_t)g->dim * sizeof(float));
            if (shifted == NULL) return NULL;
            sc->shifted = shifted;
            sc->shifted_cap = (size_t)g->dim;
        }
        for (Py_ssize_t i = 0; i < g->dim; i++) sc->shifted[i] = query[i] + CODE_OFFSET;
        s.query = sc->shifted;
    }
    float d;
    int32_t start = descend(&s, &d);
    if (search_level0(&s, sc, start, d, ef) < 0) return NULL;
    qsort(sc->best.items, sc->best.size, sizeof(Item), cmp_items);
    return sc;
}

/* Ranks and sizes a call checked: k in 1..MAX_K, ef at least k. */
#define MAX_K (1 << 20)

static int read_depths(PyObject *k_obj, PyObject *ef_obj, Py_ssize_t *k, Py_ssize_t *ef) {
    *k = PyLong_AsSsize_t(k_obj);
    *ef = PyLong_AsSsize_t(ef_obj);
    if ((*k == -1 || *ef == -1) && PyErr_Occurred()) return -1;
    if (*k < 1 || *k > MAX_K) {
        PyErr_SetString(PyExc_ValueError, "k must be between 1 and 2**20");
        return -1;
    }
    if (*ef < *k) *ef = *k;
    if (*ef > MAX_K) *ef = MAX_K;
    return 0;
}

/* A buffer of native, aligned float32 values (numpy writes "=f" for an unaligned one). */
static int float32_rows(const Py_buffer *v) {
    return v->format != NULL && strcmp(v->format, "f") == 0 &&
           (uintptr_t)v->buf % _Alignof(float) == 0;
}

static int made(const GraphView *self) {
    if (self->owner == NULL) {
        PyErr_SetString(PyExc_ValueError, "the GraphView was not made (its __init__ failed)");
        return 0;
    }
    return 1;
}

static int float_rows(PyObject *obj, Py_buffer *view, Py_ssize_t dim, Py_ssize_t *rows) {
    if (PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) return -1;
    Py_ssize_t row = dim * (Py_ssize_t)sizeof(float);
    if (!float32_rows(view) || view->len == 0 || view->len % row != 0) {
        PyBuffer_Release(view);
        PyErr_Format(PyExc_ValueError, "queries must be float32 rows of %zd values", dim);
        return -1;
    }
    *rows = view->len / row;
    return 0;
}

/* One query's search for a call `name`(query, k, ef, ...) of `nargs` arguments where
 * `wanted` are taken: `found` (freed by the caller with PyMem_RawFree) holds the
 * `*count` (at most k) live nodes found, best first; -1 with an exception set on
 * failure. */
static int search_one(GraphView *self, PyObject *const *args, Py_ssize_t nargs,
                      Py_ssize_t wanted, const char *name, Item **found, size_t *count,
                      Py_ssize_t *k) {
    Py_ssize_t ef, rows;
    Py_buffer q;
    *count = 0;
    if (nargs != wanted) {
        PyErr_Format(PyExc_TypeError, "%s takes %zd arguments", name, wanted);
        return -1;
    }
    if (!made(self) || read_depths(args[1], args[2], k, &ef) < 0) return -1;
    if (float_rows(args[0], &q, self->dim, &rows) < 0) return -1;
    if (rows != 1) {
        PyBuffer_Release(&q);
        PyErr_Format(PyExc_ValueError, "%s: the query must be %zd float32 values", name,
                     self->dim);
        return -1;
    }
    /* The results leave the thread's scratch before the interpreter lock is taken
     * again: anything run under it (a collection's finalizer) could search too. */
    *found = PyMem_RawMalloc((size_t)*k * sizeof(Item));
    if (*found == NULL) {
        PyBuffer_Release(&q);
        PyErr_NoMemory();
        return -1;
    }
    Scratch *sc;
    Py_BEGIN_ALLOW_THREADS
    sc = search_query(self, (const float *)q.buf, (size_t)ef);
    if (sc != NULL) {
        *count = sc->best.size < (size_t)*k ? sc->best.size : (size_t)*k;
        memcpy(*found, sc->best.items, *count * sizeof(Item));
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&q);
    if (sc == NULL) {
        PyMem_RawFree(*found);
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

/* `search`'s answer from the `count` nodes `found`: (keys, scores) padded to k. */
static PyObject *ranked_lists(const GraphView *self, const Item *found, size_t count,
                              Py_ssize_t k) {
    PyObject *keys = PyList_New(k), *scores = PyList_New(k);
    if (keys == NULL || scores == NULL) {
        Py_XDECREF(keys);
        Py_XDECREF(scores);
        return NULL;
    }
    const int64_t *labels = (const int64_t *)self->keys.buf;
    double pad = self->inner ? -INFINITY : INFINITY;
    for (Py_ssize_t i = 0; i < k; i++) {
        PyObject *key, *score;
        if ((size_t)i < count) {
            Item it = found[i];
            key = PyLong_FromLongLong(labels[it.node]);
            score = PyFloat_FromDouble(self->inner ? -(double)it.dist : (double)it.dist);
        } else {
            key = PyLong_FromLong(-1);
            score = PyFloat_FromDouble(pad);
        }
        if (key == NULL || score == NULL) {
            Py_XDECREF(key);
            Py_XDECREF(score);
            Py_DECREF(keys);
            Py_DECREF(scores);
            return NULL;
        }
        PyList_SET_ITEM(keys, i, key);
        PyList_SET_ITEM(scores, i, score);
    }
    PyObject *out = PyTuple_Pack(2, keys, scores);
    Py_DECREF(keys);
    Py_DECREF(scores);
    return out;
}

PyDoc_STRVAR(search_doc,
"search(query, k, ef) -> (keys, scores)\n\n"
"The k best live nodes' keys and faiss scores (inner products, or squared L2\n"
"distances) for one float32 query of dim values, as lists, best first, padded\n"
"with key -1 (score -inf for inner products, +inf for L2).");

static PyObject *GraphView_search(GraphView *self, PyObject *const *args, Py_ssize_t nargs) {
    Item *found;
    size_t count;
    Py_ssize_t k;
    if (search_one(self, args, nargs, 3, "search(query, k, ef)", &found, &count, &k) < 0)
        return NULL;
    PyObject *out = ranked_lists(self, found, count, k);
    PyMem_RawFree(found);
    return out;
}

/* (the hits' part of the module, below) */
static PyTypeObject *hit_type = NULL;
static PyObject *hit_of(PyObject *row, double score);

PyDoc_STRVAR(view_hits_doc,
"hits(query, k, ef, cached, scale) -> list of Hit, or (keys, scores)\n\n"
"search() with its hits made at once when the k nodes found are all keys of the\n"
"dict `cached` (key -> (rowkey, id, payload text), as hits() reads it): a Hit per\n"
"node, best first, scored as the store scores (the inner product, or minus the\n"
"squared L2 distance) times `scale`. Otherwise (a node not cached, fewer than k\n"
"found, no Hit class given to use()) search()'s (keys, scores), from the same\n"
"search. An int8 graph's scores are those of its codes.");

static PyObject *GraphView_hits(GraphView *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs == 5 && !PyDict_Check(args[3])) {
        PyErr_SetString(PyExc_TypeError, "hits: cached must be a dict");
        return NULL;
    }
    double scale = nargs == 5 ? PyFloat_AsDouble(args[4]) : 0.0;
    if (scale == -1.0 && PyErr_Occurred()) return NULL;
    Item *found;
    size_t count;
    Py_ssize_t k;
    if (search_one(self, args, nargs, 5, "hits(query, k, ef, cached, scale)", &found, &count,
                   &k) < 0)
        return NULL;
    PyObject *cached = args[3];
    /* (no Hit class given, use(): the lists, for the caller to make hits of) */
    PyObject *out = (size_t)k == count && hit_type != NULL ? PyList_New(k) : NULL;
    const int64_t *labels = (const int64_t *)self->keys.buf;
    for (Py_ssize_t i = 0; out != NULL && i < k; i++) {
        PyObject *key = PyLong_FromLongLong(labels[found[i].node]);
        PyObject *row = key ? PyDict_GetItemWithError(cached, key) : NULL;
        Py_XDECREF(key);
        PyObject *hit = row ? hit_of(row, -(double)found[i].dist * scale) : NULL;
        if (hit == NULL) {
            Py_CLEAR(out);
            if (PyErr_Occurred()) {
                PyMem_RawFree(found);
                return NULL;
            }
            break; /* (not cached: the lists instead) */
        }
        PyList_SET_ITEM(out, i, hit);
    }
    if (out == NULL && !PyErr_Occurred()) out = ranked_lists(self, found, count, k);
    PyMem_RawFree(found);
    return out;
}

/* A batch: queries [first, rows) step `step`, each query's k results written to its
 * rows of the output arrays. */
typedef struct {
    const GraphView *g;
    const float *queries;
    int64_t *keys;
    float *scores;
    Py_ssize_t first, rows, step, k;
    size_t ef;
    int failed;
} Batch;

static void *search_batch(void *arg) {
    Batch *b = (Batch *)arg;
    const GraphView *g = b->g;
    const int64_t *labels = (const int64_t *)g->keys.buf;
    float pad = g->inner ? -INFINITY : INFINITY;
    for (Py_ssize_t r = b->first; r < b->rows; r += b->step) {
        Scratch *sc = search_query(g, b->queries + r * g->dim, b->ef);
        if (sc == NULL) {
            b->failed = 1;
            return NULL;
        }
        int64_t *keys = b->keys + r * b->k;
        float *scores = b->scores + r * b->k;
        for (Py_ssize_t i = 0; i < b->k; i++) {
            if ((size_t)i < sc->best.size) {
                keys[i] = labels[sc->best.items[i].node];
                scores[i] = g->inner ? -sc->best.items[i].dist : sc->best.items[i].dist;
            } else {
                keys[i] = -1;
                scores[i] = pad;
            }
        }
    }
    return NULL;
}

#define MAX_THREADS 64

PyDoc_STRVAR(search_into_doc,
"search_into(queries, k, ef, keys, scores, threads)\n\n"
"search() for each float32 row of queries, written to its row of keys (int64) and\n"
"scores (float32), both (rows, k) and writable, on up to `threads` threads.");

static PyObject *GraphView_search_into(GraphView *self, PyObject *const *args,
                                       Py_ssize_t nargs) {
    if (nargs != 6) {
        PyErr_SetString(PyExc_TypeError,
                        "search_into(queries, k, ef, keys, scores, threads) takes six arguments");
        return NULL;
    }
    Py_ssize_t k, ef, rows;
    if (!made(self) || read_depths(args[1], args[2], &k, &ef) < 0) return NULL;
    long threads = PyLong_AsLong(args[5]);
    if (threads == -1 && PyErr_Occurred()) return NULL;
    Py_buffer q, keys, scores;
    if (float_rows(args[0], &q, self->dim, &rows) < 0) return NULL;
    if (PyObject_GetBuffer(args[3], &keys, PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE) < 0) {
        PyBuffer_Release(&q);
        return NULL;
    }
    if (PyObject_GetBuffer(args[4], &scores, PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE) < 0) {
        PyBuffer_Release(&q);
        PyBuffer_Release(&keys);
        return NULL;
    }
    PyObject *out = NULL;
    if (keys.len != rows * k * (Py_ssize_t)sizeof(int64_t) ||
        scores.len != rows * k * (Py_ssize_t)sizeof(float)) {
        PyErr_SetString(PyExc_ValueError, "keys and scores must hold (rows, k) items");
        goto done;
    }
    if (threads < 1) threads = 1;
    if (threads > MAX_THREADS) threads = MAX_THREADS;
    if (threads > rows) threads = (long)rows;
    Batch batches[MAX_THREADS];
    pthread_t workers[MAX_THREADS];
    int started[MAX_THREADS] = {0};
    int failed = 0;
    Py_BEGIN_ALLOW_THREADS
    for (long t = 0; t < threads; t++)
        batches[t] = (Batch){self, (const float *)q.buf, (int64_t *)keys.buf,
                             (float *)scores.buf, t, rows, threads, k, (size_t)ef, 0};
    for (long t = 1; t < threads; t++)  /* (this thread takes the first share) */
        started[t] = pthread_create(&workers[t], NULL, search_batch, &batches[t]) == 0;
    for (long t = 1; t < threads; t++)  /* a thread that did not start: its share here */
        if (!started[t]) search_batch(&batches[t]);
    search_batch(&batches[0]);
    for (long t = 1; t < threads; t++) {
        if (started[t]) pthread_join(workers[t], NULL);
        failed |= batches[t].failed;
    }
    failed |= batches[0].failed;
    Py_END_ALLOW_THREADS
    if (failed) {
        PyErr_NoMemory();
        goto done;
    }
    out = Py_NewRef(Py_None);
done:
    PyBuffer_Release(&q);
    PyBuffer_Release(&keys);
    PyBuffer_Release(&scores);
    return out;
}

static PyMethodDef GraphView_methods[] = {
    {"search", (PyCFunction)(void (*)(void))GraphView_search, METH_FASTCALL, search_doc},
    {"search_into", (PyCFunction)(void (*)(void))GraphView_search_into, METH_FASTCALL,
     search_into_doc},
    {"hits", (PyCFunction)(void (*)(void))GraphView_hits, METH_FASTCALL, view_hits_doc},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject GraphViewType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "embedops.store._graph_search.GraphView",
    .tp_doc = PyDoc_STR("A faiss HnswFlat graph's arrays, searched one query at a time."),
    .tp_basicsize = sizeof(GraphView),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)GraphView_init,
    .tp_dealloc = (destructor)GraphView_dealloc,
    .tp_methods = GraphView_methods,
};

/* --- hits made from the hit cache's rows (store/hit_rows.py) -------------------------
 *
 * For each key in step with its score: the cached row (rowkey, id, payload text) of
 * that key, made a Hit whose id is the row's, whose score is score * scale and whose
 * payload is the text (decoded when first read). Hit's slots are filled in where the
 * class lays them out (their member descriptors give the offsets), as
 * Hit.many_from_text does through the descriptors: Hit refuses attribute assignment
 * once made. */

static Py_ssize_t id_at, score_at, payload_at, text_at;

/* The offset of `type`'s own object slot `name`: a member descriptor of `type` (or of
 * a class it derives from) that lies within its instances. */
static int slot_offset(PyTypeObject *type, const char *name, Py_ssize_t *offset) {
    PyObject *descr = PyObject_GetAttrString((PyObject *)type, name);
    if (descr == NULL) return -1;
    int ok = Py_IS_TYPE(descr, &PyMemberDescr_Type);
    if (ok) {
        PyMemberDescrObject *member = (PyMemberDescrObject *)descr;
        ok = member->d_member->type == T_OBJECT_EX &&
             PyType_IsSubtype(type, PyDescr_TYPE(member)) &&
             member->d_member->offset >= (Py_ssize_t)sizeof(PyObject) &&
             member->d_member->offset + (Py_ssize_t)sizeof(PyObject *) <= type->tp_basicsize;
        if (ok) *offset = member->d_member->offset;
    }
    Py_DECREF(descr);
    if (!ok) PyErr_Format(PyExc_TypeError, "%s.%s is not a slot", type->tp_name, name);
    return ok ? 0 : -1;
}

PyDoc_STRVAR(use_doc, "use(hit_type)\n\nThe class hits() makes (Hit: slots _payload, _text, id, score).");

static PyObject *use(PyObject *Py_UNUSED(module), PyObject *type) {
    if (!PyType_Check(type)) {
        PyErr_SetString(PyExc_TypeError, "a class is expected");
        return NULL;
    }
    PyTypeObject *t = (PyTypeObject *)type;
    Py_ssize_t id, score, payload, text; /* (all found, or nothing changed) */
    if (slot_offset(t, "id", &id) < 0 || slot_offset(t, "score", &score) < 0 ||
        slot_offset(t, "_payload", &payload) < 0 || slot_offset(t, "_text", &text) < 0)
        return NULL;
    id_at = id, score_at = score, payload_at = payload, text_at = text;
    Py_INCREF(type);
    Py_XSETREF(hit_type, t);
    Py_RETURN_NONE;
}

static inline void put(PyObject *obj, Py_ssize_t offset, PyObject *value) {
    PyObject **slot = (PyObject **)((char *)obj + offset);
    Py_XSETREF(*slot, value);
}

/* A Hit of the cached `row` scored `score`: a new reference, or NULL with an exception
 * set. */
static PyObject *hit_of(PyObject *row, double score) {
    if (hit_type == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "use(Hit) first");
        return NULL;
    }
    /* (any sequence: tuples, sqlite3.Row; held, since a sequence written in Python
     * runs code that could drop it from the dict) */
    Py_INCREF(row);
    PyObject *id = PySequence_GetItem(row, 1);
    PyObject *text = id ? PySequence_GetItem(row, 2) : NULL;
    Py_DECREF(row);
    PyObject *hit = text ? hit_type->tp_alloc(hit_type, 0) : NULL;
    PyObject *value = hit ? PyFloat_FromDouble(score) : NULL;
    if (value == NULL) {
        Py_XDECREF(id);
        Py_XDECREF(text);
        Py_XDECREF(hit);
        return NULL;
    }
    put(hit, id_at, id);
    put(hit, score_at, value);
    put(hit, payload_at, Py_NewRef(Py_None));
    put(hit, text_at, text);
    return hit;
}

PyDoc_STRVAR(hits_doc,
"hits(cached, keys, scores, scale) -> list of Hit, or None\n\n"
"A Hit per key from the dict `cached` (key -> (rowkey, id, payload text)), scored\n"
"score * scale; None when a key is not in `cached`.");

static PyObject *hits(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "hits(cached, keys, scores, scale) takes four arguments");
        return NULL;
    }
    PyObject *cached = args[0], *keys = args[1], *scores = args[2];
    if (!PyDict_Check(cached) || !PyList_Check(keys) || !PyList_Check(scores) ||
        PyList_GET_SIZE(keys) != PyList_GET_SIZE(scores)) {
        PyErr_SetString(PyExc_TypeError, "a dict and two lists of one length are expected");
        return NULL;
    }
    double scale = PyFloat_AsDouble(args[3]);
    if (scale == -1.0 && PyErr_Occurred()) return NULL;
    Py_ssize_t n = PyList_GET_SIZE(keys);
    PyObject *out = PyList_New(n);
    if (out == NULL) return NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        /* (numbers and keys written in Python run code while they convert or compare:
         * each item is held while it is read, the lists' sizes checked again, and the
         * score converted before the row is looked up, which could be dropped from the
         * dict meanwhile) */
        if (i >= PyList_GET_SIZE(keys) || i >= PyList_GET_SIZE(scores)) {
            Py_DECREF(out);
            PyErr_SetString(PyExc_RuntimeError, "hits: the lists changed size");
            return NULL;
        }
        PyObject *item = Py_NewRef(PyList_GET_ITEM(scores, i));
        double score = PyFloat_AsDouble(item);
        Py_DECREF(item);
        if (score == -1.0 && PyErr_Occurred()) {
            Py_DECREF(out);
            return NULL;
        }
        PyObject *key = i < PyList_GET_SIZE(keys) ? Py_NewRef(PyList_GET_ITEM(keys, i)) : NULL;
        PyObject *row = key ? PyDict_GetItemWithError(cached, key) : NULL;
        PyObject *hit = row ? hit_of(row, score * scale) : NULL;
        Py_XDECREF(key);
        if (hit == NULL) {
            Py_DECREF(out);
            if (key == NULL) {
                PyErr_SetString(PyExc_RuntimeError, "hits: the lists changed size");
                return NULL;
            }
            if (PyErr_Occurred()) return NULL;
            Py_RETURN_NONE;
        }
        PyList_SET_ITEM(out, i, hit);
    }
    return out;
}

PyDoc_STRVAR(squared_norm_doc,
"squared_norm(vector, dim) -> float or None\n\n"
"The squared norm (summed in double precision) of a C-contiguous buffer of exactly\n"
"dim native float32 values; None for anything else.");

static PyObject *squared_norm(PyObject *Py_UNUSED(module), PyObject *const *args,
                              Py_ssize_t nargs) {
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "squared_norm(vector, dim) takes two arguments");
        return NULL;
    }
    Py_ssize_t dim = PyNumber_AsSsize_t(args[1], PyExc_OverflowError);
    if (dim == -1 && PyErr_Occurred()) return NULL;
    Py_buffer v;
    if (PyObject_GetBuffer(args[0], &v, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) {
        if (!PyErr_ExceptionMatches(PyExc_BufferError) &&
            !PyErr_ExceptionMatches(PyExc_TypeError) &&
            !PyErr_ExceptionMatches(PyExc_ValueError))
            return NULL; /* (out of memory, say) */
        PyErr_Clear(); /* (not contiguous, or no buffer at all) */
        Py_RETURN_NONE;
    }
    if (dim < 1 || v.len != dim * (Py_ssize_t)sizeof(float) || !float32_rows(&v)) {
        PyBuffer_Release(&v);
        Py_RETURN_NONE;
    }
    const float *x = (const float *)v.buf;
    double total = 0;
    for (Py_ssize_t i = 0; i < dim; i++) total += (double)x[i] * (double)x[i];
    PyBuffer_Release(&v);
    return PyFloat_FromDouble(total);
}

PyDoc_STRVAR(scratch_epoch_doc,
"_scratch_epoch(epoch) -> the calling thread's epoch it replaced\n\n"
"For tests alone: sets the calling thread's visited-mark epoch, so that a test can\n"
"reach the wrap to 0 at which the marks are cleared. Marks already holding the epoch\n"
"set count as visited in the thread's next search; its scratch must already be\n"
"made for the graph searched next (a search of it first), or it is made again.");

static PyObject *scratch_epoch(PyObject *Py_UNUSED(module), PyObject *arg) {
    long epoch = PyLong_AsLong(arg);
    if (epoch == -1 && PyErr_Occurred()) return NULL;
    if (epoch < 1 || epoch > UINT16_MAX) {
        PyErr_SetString(PyExc_ValueError, "an epoch is 1..65535");
        return NULL;
    }
    Scratch *s = pthread_getspecific(scratch_key);
    if (s == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "this thread has not searched yet");
        return NULL;
    }
    long before = s->epoch;
    s->epoch = (uint16_t)epoch;
    return PyLong_FromLong(before);
}

PyDoc_STRVAR(kernels_doc,
"_kernels(name=None) -> the name of the distance kernels in use before\n\n"
"For tests alone: with a name (\"avx512\", \"avx2\", \"plain\"), uses those kernels\n"
"(float32 and int8) from now on, or raises ValueError if this CPU cannot run them.\n"
"Not thread-safe.");

static PyObject *kernels_fn(PyObject *Py_UNUSED(module), PyObject *const *args,
                            Py_ssize_t nargs) {
    const char *before = kernels;
    if (nargs > 1) {
        PyErr_SetString(PyExc_TypeError, "_kernels takes at most one argument");
        return NULL;
    }
    if (nargs == 1 && args[0] != Py_None) {
        const char *name = PyUnicode_AsUTF8(args[0]);
        if (name == NULL) return NULL;
        if (!use_kernels(name)) {
            PyErr_Format(PyExc_ValueError, "no %s kernels on this CPU", name);
            return NULL;
        }
    }
    return PyUnicode_FromString(before);
}

static PyMethodDef module_methods[] = {
    {"_kernels", (PyCFunction)(void (*)(void))kernels_fn, METH_FASTCALL, kernels_doc},
    {"squared_norm", (PyCFunction)(void (*)(void))squared_norm, METH_FASTCALL,
     squared_norm_doc},
    {"_scratch_epoch", scratch_epoch, METH_O, scratch_epoch_doc},
    {"use", use, METH_O, use_doc},
    {"hits", (PyCFunction)(void (*)(void))hits, METH_FASTCALL, hits_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_graph_search",
    "One query's HNSW search over a faiss HnswFlat graph (store/graph_search.py).", -1,
    module_methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__graph_search(void) {
    choose_kernels();
    if (pthread_key_create(&scratch_key, scratch_free) != 0) {
        PyErr_SetString(PyExc_RuntimeError, "no thread-local key for the search scratch");
        return NULL;
    }
    if (PyType_Ready(&GraphViewType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
#ifdef EMBEDOPS_EMULATED_AVX512
    if (PyModule_AddIntConstant(m, "_EMULATED_AVX512", 1) < 0) {
        Py_DECREF(m);
        return NULL;
    }
#endif
    if (PyModule_AddIntConstant(m, "MAX_K", MAX_K) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    Py_INCREF(&GraphViewType);
    if (PyModule_AddObject(m, "GraphView", (PyObject *)&GraphViewType) < 0) {
        Py_DECREF(&GraphViewType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
