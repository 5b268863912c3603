/* Per-sample CutMix out of place in one pass: every output byte is written once, from the image or, inside the
 * sample's box, from its partner. The image outside the box's rows is copied as whole blocks of rows, each row of
 * the box band as three spans. Bytes move, nothing is converted: exact for every dtype.
 *
 * Memory is seen as [n, planes, rows, row_bytes] (NCHW: planes = channels, pixel_bytes = element size;
 * channels_last: one plane, rows of W * C elements, pixel_bytes = C * element size). Boxes are int64
 * [n, 4] (x0, y0, x1, y1, clipped), index int64 [n]. Built and loaded by cutmix/_native.py. */
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#define MAX_THREADS 64

typedef struct {
    const char *src;
    char *dst;
    const int64_t *boxes, *index;
    int64_t planes, rows, row_bytes, pixel_bytes, begin, end;
} work;

int cutmix_native_version(void) { return 1; }

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

static void paste_plane(const work *a, int64_t k) {
    const int64_t i = k / a->planes, p = k % a->planes, j = a->index[i];
    const int64_t plane = a->rows * a->row_bytes, offset = (i * a->planes + p) * plane;
    const int64_t *b = a->boxes + 4 * i;
    const int64_t x0 = b[0], y0 = b[1], x1 = b[2], y1 = b[3];
    const char *s = a->src + offset;
    char *d = a->dst + offset;
    if (j == i || x1 <= x0 || y1 <= y0) {
        memcpy(d, s, (size_t)plane);
        return;
    }
    const char *q = a->src + (j * a->planes + p) * plane;
    const int64_t l = x0 * a->pixel_bytes, r = x1 * a->pixel_bytes, rb = a->row_bytes;
    memcpy(d, s, (size_t)(y0 * rb));
    for (int64_t y = y0; y < y1; ++y) {
        const int64_t o = y * rb;
        memcpy(d + o, s + o, (size_t)l);
        memcpy(d + o + l, q + o + l, (size_t)(r - l));
        memcpy(d + o + r, s + o + r, (size_t)(rb - r));
    }
    memcpy(d + y1 * rb, s + y1 * rb, (size_t)((a->rows - y1) * rb));
}

static void *run(void *arg) {
    const work *a = (const work *)arg;
    for (int64_t k = a->begin; k < a->end; ++k)
        paste_plane(a, k);
    return NULL;
}

/* Splits the n * planes planes into `threads` contiguous runs; the calling thread takes the first. A thread that
 * cannot be started leaves its run to the calling thread. Returns first_bad()'s answer (0: pasted). */
int64_t cutmix_paste(const char *src, char *dst, const int64_t *boxes, const int64_t *index, int64_t n,
                     int64_t planes, int64_t rows, int64_t row_bytes, int64_t pixel_bytes, int threads) {
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
                  total * t / threads, total * (t + 1) / threads};
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
