/* The box arithmetic of cutmix/boxes.py for a per-sample draw, in one call: the same float64 operations in the
 * same order as the torch code (built with -ffp-contract=off, so no fused multiply-add changes a rounding), so the
 * boxes and label weights are bit-identical to it. The torch code takes about 25 small tensor ops for this, each a
 * few microseconds on a CPU: most of a fused call's fixed cost.
 *
 * Inputs are the torch draws, in the order of the reproducibility contract: lam [n] (NULL for the fixed kind, whose
 * sides are given), then u [n, 2] (uniforms for a centre or a corner, normals for a Gaussian centre). Outputs:
 * boxes int64 [n, 4] (x0, y0, x1, y1, clipped; all zero for an unselected sample) and out_lam float64 [n], the share
 * of each image not covered by its box (1 - area / (H * W)). tests/test_native_boxes.py compares every kind, placement
 * and rounding with the torch code. */
#include <math.h>
#include <stdint.h>

enum { UNIFORM = 0, GAUSSIAN = 1, FIXED = 2 };
enum { CLIP = 0, INSIDE = 1 };
enum { EXACT = 0, REFERENCE = 1 };

/* boxes._sides: round(side * sqrt(1 - lam)), or the released code's 2 * (int(side * sqrt(1 - lam)) // 2). */
static int64_t side(double ratio, int64_t length, int rounding) {
    double s = ratio * (double)length;
    return rounding == REFERENCE ? (int64_t)s / 2 * 2 : (int64_t)nearbyint(s);
}

/* boxes.sample_centres' Gaussian centre: round((side - 1) / 2 + sigma * side * z), clamped to the image. */
static int64_t gaussian_centre(double z, int64_t length, double sigma) {
    double c = nearbyint(((double)length - 1.0) / 2.0 + sigma * (double)length * z);
    return (int64_t)(c < 0.0 ? 0.0 : (c > (double)(length - 1) ? (double)(length - 1) : c));
}

/* boxes.place_boxes for one axis: the span [lo, hi) of side s around the pixel c, clipped or shifted inside. */
static void place(int64_t c, int64_t s, int64_t length, int placement, int64_t *lo, int64_t *hi) {
    int64_t a = c - s / 2;
    if (placement == INSIDE) {
        a = a < 0 ? 0 : a;
        a = a < length - s ? a : length - s;
    }
    int64_t b = a + s < length ? a + s : length;
    *lo = a < 0 ? 0 : a;
    *hi = b;
}

void cutmix_boxes(const double *lam, const double *u, const uint8_t *selected, int64_t n, int64_t rows,
                  int64_t columns, int kind, int placement, int rounding, double sigma, int64_t fixed_w,
                  int64_t fixed_h, int64_t *boxes, double *out_lam) {
    double pixels = (double)(rows * columns);
    for (int64_t i = 0; i < n; ++i) {
        int64_t *b = boxes + 4 * i, sw = fixed_w, sh = fixed_h;
        if (kind != FIXED) {
            double r = 1.0 - lam[i];
            r = sqrt(r < 0.0 ? 0.0 : (r > 1.0 ? 1.0 : r));
            sw = side(r, columns, rounding);
            sh = side(r, rows, rounding);
        }
        const double ux = u[2 * i], uy = u[2 * i + 1];
        if (kind == GAUSSIAN) {
            place(gaussian_centre(ux, columns, sigma), sw, columns, placement, &b[0], &b[2]);
            place(gaussian_centre(uy, rows, sigma), sh, rows, placement, &b[1], &b[3]);
        } else if (placement == INSIDE) { /* a uniform corner over the valid positions */
            b[0] = (int64_t)(ux * (double)(columns - sw + 1));
            b[1] = (int64_t)(uy * (double)(rows - sh + 1));
            b[2] = b[0] + sw;
            b[3] = b[1] + sh;
        } else {
            place((int64_t)(ux * (double)columns), sw, columns, CLIP, &b[0], &b[2]);
            place((int64_t)(uy * (double)rows), sh, rows, CLIP, &b[1], &b[3]);
        }
        if (!selected[i])
            b[0] = b[1] = b[2] = b[3] = 0;
        int64_t w = b[2] - b[0], h = b[3] - b[1];
        out_lam[i] = 1.0 - (double)((w > 0 ? w : 0) * (h > 0 ? h : 0)) / pixels;
    }
}
