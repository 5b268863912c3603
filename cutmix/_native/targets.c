/* The targets of a mix with class-index labels (cutmix/_ops.mix_targets), in one call: w * onehot(y) +
 * (1 - w) * onehot(y[index]) for each row, summed in float64 in the torch code's order (0 + w, then + (1 - w)) and
 * rounded once to float32, or kept in float64: bit-identical to the torch ops, about ten small tensor ops a call.
 * tests/test_native_targets.py compares them. */
#include <stdint.h>
#include <string.h>

/* out: n * k floats (`single`) or doubles. Returns 0, or the first sample + 1 whose label or partner is out of
 * range, before anything is written. */
int64_t cutmix_targets(const int64_t *labels, const int64_t *index, const double *w, int64_t n, int64_t k,
                       int single, void *out) {
    for (int64_t i = 0; i < n; ++i)
        if (labels[i] < 0 || labels[i] >= k || index[i] < 0 || index[i] >= n)
            return i + 1;
    memset(out, 0, (size_t)(n * k) * (single ? sizeof(float) : sizeof(double)));
    for (int64_t i = 0; i < n; ++i) {
        const int64_t own = labels[i], other = labels[index[i]];
        const double mine = 0.0 + w[i], theirs = 1.0 - w[i];
        const double at_own = own == other ? mine + theirs : mine, at_other = 0.0 + theirs;
        if (single) {
            float *row = (float *)out + i * k;
            row[other] = (float)at_other;
            row[own] = (float)at_own;
        } else {
            double *row = (double *)out + i * k;
            row[other] = at_other;
            row[own] = at_own;
        }
    }
    return 0;
}
