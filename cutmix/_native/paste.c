/* Per-sample CutMix out of place in one pass over memory: each plane is copied from the image, and its box from
 * the partner while those bytes are still in cache. Bytes move, nothing is converted: exact for every dtype.
 *
 * Memory is seen as [n, planes, rows, row_bytes] (NCHW: planes = channels, pixel_bytes = element size;
 * channels_last: one plane, rows of W * C elements, pixel_bytes = C * element size). Boxes are int64
 * [n, 4] (x0, y0, x1, y1, clipped), index int64 [n]. Built and loaded by cutmix/_native/__init__.py.
 *
 * Planes under SMALL_PLANE bytes are copied whole, then the box rows; larger ones as the blocks of rows above and
 * below the box, then each row of the box band (the row from the image, its box span from the partner).
 * benchmarks/native_variants.py times the orders (one thread, quiet VM, 2026-12-07, two runs, x copy_): writing
 * each box row once as three spans (image, partner, image) is the slowest on small images (128x3x32² uint8 5.5x /
 * 7.2x, against 2.6x / 3.8x whole plane then box and 3.5x / 4.7x row by row); at 128² and 224² the orders lie
 * within the two runs' spread of each other (1.2-1.7x). The 16 KiB split comes from a run on a loaded VM, where
 * whole plane then box read 5.2x at 64x3x224² uint8 against 1.02x row by row; the quiet runs do not reproduce
 * that gap (1.64x / 1.50x against 1.44x / 1.24x). */
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#define MAX_THREADS 64
#define SMALL_PLANE (16 << 10)

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
    if (plane < SMALL_PLANE) {
        memcpy(d, s, (size_t)plane);
    } else {
        memcpy(d, s, (size_t)(y0 * rb));
        memcpy(d + y1 * rb, s + y1 * rb, (size_t)((a->rows - y1) * rb));
    }
    for (int64_t y = y0; y < y1; ++y) {
        const int64_t o = y * rb;
        if (plane >= SMALL_PLANE)
            memcpy(d + o, s + o, (size_t)rb);
        memcpy(d + o + l, q + o + l, (size_t)(r - l));
    }
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
