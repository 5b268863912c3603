/* Per-sample CutMix out of place in one pass over memory: each plane is copied from the image, and its box from
 * the partner while those bytes are still in cache. Bytes move, nothing is converted: exact for every dtype.
 *
 * Memory is seen as [n, planes, rows, row_bytes] (NCHW: planes = channels, pixel_bytes = element size;
 * channels_last: one plane, rows of W * C elements, pixel_bytes = C * element size). Boxes are int64
 * [n, 4] (x0, y0, x1, y1, clipped), index int64 [n]. Built and loaded by cutmix/_native/__init__.py.
 *
 * Two ways to write, chosen by the caller (`stream`):
 * - cached stores, for batches that fit in cache: planes under SMALL_PLANE bytes are copied whole, then the box
 *   rows; larger ones as the blocks of rows above and below the box, then each row of the box band (the row from
 *   the image, its box span from the partner);
 * - streamed stores (x86 SSE2), for large batches: every output line is written once and whole with non-temporal
 *   stores, which skip reading the line in first; the box band is assembled in an L1 buffer CHUNK bytes at a time
 *   (its rows from the image, then their spans from the partner), then streamed out.
 * benchmarks/native_variants.py times both ways and the orders tried for the first; benchmarks/README.md ("Cached or
 * streamed stores") has the figures and the rule for choosing (STREAM_BYTES in __init__.py). */
#include <pthread.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#include <stdint.h>
#include <string.h>

#define MAX_THREADS 64
#define SMALL_PLANE (16 << 10)
#define CHUNK (8 << 10)

typedef struct {
    const char *src;
    char *dst;
    const int64_t *boxes, *index;
    int64_t planes, rows, row_bytes, pixel_bytes, begin, end;
    int stream;
} work;

int cutmix_native_version(void) { return 4; }

/* 1 when this build has streamed stores; without them `stream` still writes each line once, through memcpy. */
int cutmix_native_streams(void) {
#if defined(__SSE2__)
    return 1;
#else
    return 0;
#endif
}

/* 0 when every partner is in [0, n) and every box inside the image (x0 <= x1, y0 <= y1 not needed: an inverted
 * box is empty), else the first bad sample + 1: the kernel never reads or writes outside the two batches. */
static int64_t first_bad(const int64_t *boxes, const int64_t *index, int64_t n, int64_t rows, int64_t columns) {
    for (int64_t i = 0; i < n; ++i) {
        const int64_t *b = boxes + 4 * i;
        if (index[i] < 0 || index[i] >= n || b[0] < 0 || b[1] < 0 || b[2] > columns || b[3] > rows)
            return i + 1;
    }
    return 0;
}

/* memcpy, or with `stream` a copy whose whole 64-byte destination lines bypass the cache (x86 SSE2): a batch larger
 * than the cache is then written without each line first being read in. The partial lines at either end take
 * ordinary stores, and the caller writes each line once, so no line is written both ways. */
static void copy_out(char *d, const char *s, int64_t n, int stream) {
#if defined(__SSE2__)
    if (stream && n >= 128) {
        const int64_t head = (int64_t)((64 - ((uintptr_t)d & 63)) & 63);
        memcpy(d, s, (size_t)head);
        d += head, s += head, n -= head;
        for (; n >= 64; d += 64, s += 64, n -= 64) {
            const __m128i a = _mm_loadu_si128((const __m128i *)s), b = _mm_loadu_si128((const __m128i *)(s + 16));
            const __m128i c = _mm_loadu_si128((const __m128i *)(s + 32)), e = _mm_loadu_si128((const __m128i *)(s + 48));
            _mm_stream_si128((__m128i *)d, a);
            _mm_stream_si128((__m128i *)(d + 16), b);
            _mm_stream_si128((__m128i *)(d + 32), c);
            _mm_stream_si128((__m128i *)(d + 48), e);
        }
    }
#else
    (void)stream;
#endif
    memcpy(d, s, (size_t)n);
}

/* A copy into the L1 buffer, inlined: memcpy's dispatch on the size costs about as much as moving a span of a few
 * hundred bytes, and a box band has a span a row. A last, overlapping vector ends the span inside it. */
static inline void copy_span(char *d, const char *s, int64_t n) {
#if defined(__SSE2__)
    if (n >= 16) {
        int64_t i = 0;
        for (; i + 64 <= n; i += 64) {
            const __m128i a = _mm_loadu_si128((const __m128i *)(s + i)), b = _mm_loadu_si128((const __m128i *)(s + i + 16));
            const __m128i c = _mm_loadu_si128((const __m128i *)(s + i + 32)), e = _mm_loadu_si128((const __m128i *)(s + i + 48));
            _mm_storeu_si128((__m128i *)(d + i), a);
            _mm_storeu_si128((__m128i *)(d + i + 16), b);
            _mm_storeu_si128((__m128i *)(d + i + 32), c);
            _mm_storeu_si128((__m128i *)(d + i + 48), e);
        }
        for (; i + 16 <= n; i += 16)
            _mm_storeu_si128((__m128i *)(d + i), _mm_loadu_si128((const __m128i *)(s + i)));
        if (i < n)
            _mm_storeu_si128((__m128i *)(d + n - 16), _mm_loadu_si128((const __m128i *)(s + n - 16)));
        return;
    }
#endif
    if (n >= 8) { /* two words that overlap: fixed-size memcpy compiles to one load and one store */
        uint64_t a, b;
        memcpy(&a, s, 8), memcpy(&b, s + n - 8, 8), memcpy(d, &a, 8), memcpy(d + n - 8, &b, 8);
    } else if (n >= 4) {
        uint32_t a, b;
        memcpy(&a, s, 4), memcpy(&b, s + n - 4, 4), memcpy(d, &a, 4), memcpy(d + n - 4, &b, 4);
    } else if (n >= 2) {
        uint16_t a, b;
        memcpy(&a, s, 2), memcpy(&b, s + n - 2, 2), memcpy(d, &a, 2), memcpy(d + n - 2, &b, 2);
    } else if (n == 1) {
        *d = *s;
    }
}

static void paste_plane(const work *a, int64_t k) {
    const int64_t i = k / a->planes, p = k % a->planes, j = a->index[i];
    const int64_t plane = a->rows * a->row_bytes, offset = (i * a->planes + p) * plane;
    const int64_t *b = a->boxes + 4 * i;
    const int64_t x0 = b[0], y0 = b[1], x1 = b[2], y1 = b[3];
    const char *s = a->src + offset;
    char *d = a->dst + offset;
    const int stream = a->stream;
    if (j == i || x1 <= x0 || y1 <= y0) {
        copy_out(d, s, plane, stream);
        return;
    }
    const char *q = a->src + (j * a->planes + p) * plane;
    const int64_t l = x0 * a->pixel_bytes, r = x1 * a->pixel_bytes, rb = a->row_bytes;
    if (stream) { /* every output line written once, whole, by streamed stores */
        copy_out(d, s, y0 * rb, stream);
        const int64_t step = rb <= CHUNK ? CHUNK / rb : 1;
        char buf[CHUNK] __attribute__((aligned(64)));
        for (int64_t y = y0; y < y1; y += step) {
            const int64_t m = y + step < y1 ? step : y1 - y, o = y * rb;
            if (rb > CHUNK) { /* a row wider than the buffer: three long spans, few partial lines */
                copy_out(d + o, s + o, l, stream);
                copy_out(d + o + l, q + o + l, r - l, stream);
                copy_out(d + o + r, s + o + r, rb - r, stream);
                continue;
            }
            /* The rows whole from the image, then their box spans from the partner: two passes, each reading one
             * source in order, ran faster than one pass alternating the sources within each row. */
            copy_span(buf, s + o, m * rb);
            for (int64_t t = 0; t < m; ++t)
                copy_span(buf + t * rb + l, q + o + t * rb + l, r - l);
            copy_out(d + o, buf, m * rb, stream);
        }
        copy_out(d + y1 * rb, s + y1 * rb, (a->rows - y1) * rb, stream);
        return;
    }
    if (plane < SMALL_PLANE) {
        memcpy(d, s, (size_t)plane);
    } else {
        memcpy(d, s, (size_t)(y0 * rb));
        memcpy(d + y1 * rb, s + y1 * rb, (size_t)((a->rows - y1) * rb));
    }
    for (int64_t y = y0; y < y1; ++y) {
        const int64_t o = y * rb;
        if (plane >= SMALL_PLANE)
            copy_span(d + o, s + o, rb);
        copy_span(d + o + l, q + o + l, r - l);
    }
}

static void *run(void *arg) {
    const work *a = (const work *)arg;
    for (int64_t k = a->begin; k < a->end; ++k)
        paste_plane(a, k);
#if defined(__SSE2__)
    if (a->stream)
        _mm_sfence(); /* streamed stores are weakly ordered: drain them before the caller reads the batch */
#endif
    return NULL;
}

/* Splits the n * planes planes into `threads` contiguous runs; the calling thread takes the first. A thread that
 * cannot be started leaves its run to the calling thread. Returns first_bad()'s answer (0: pasted). */
int64_t cutmix_paste(const char *src, char *dst, const int64_t *boxes, const int64_t *index, int64_t n,
                     int64_t planes, int64_t rows, int64_t row_bytes, int64_t pixel_bytes, int threads,
                     int stream) {
    const int64_t bad = first_bad(boxes, index, n, rows, row_bytes / pixel_bytes);
    if (bad)
        return bad;
    const int64_t total = n * planes;
    if (threads > MAX_THREADS) threads = MAX_THREADS;
    if (threads > total) threads = (int)total;
    if (threads < 1) threads = 1;
    work parts[MAX_THREADS];
    pthread_t ids[MAX_THREADS];
    int started[MAX_THREADS] = {0};
    for (int t = 0; t < threads; ++t) {
        work w = {src, dst, boxes, index, planes, rows, row_bytes, pixel_bytes,
                  total * t / threads, total * (t + 1) / threads, stream};
        parts[t] = w;
    }
    for (int t = 1; t < threads; ++t)
        started[t] = pthread_create(&ids[t], NULL, run, &parts[t]) == 0;
    run(&parts[0]);
    for (int t = 1; t < threads; ++t) {
        if (started[t])
            pthread_join(ids[t], NULL);
        else
            run(&parts[t]);
    }
    return 0;
}
