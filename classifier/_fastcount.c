/*
 * Optional compiled steps of postsieve's scoring fast path:
 *
 * - words: the word splitting of `features.words` (two regex passes in Python);
 * - lookup_entries: the vocabulary indices of every term of a post (`Model._entries`' loop), words
 *   through a WordCache, word bigrams from a compact table of word-id pairs (pair_table);
 * - count_logits: sparse counts, TF-IDF and logits of every sentence and of the whole post (what
 *   `_Counts.from_entries` and `Model._logits` do in about thirty numpy calls);
 * - reason_terms: each whole-post term's contribution to the label, and the reasons ranked;
 * - combine: the combiner's inputs and probabilities, and the highlighted sentences;
 * - count_tokens, has_clean_words: token counts of `str.split()` without making the tokens;
 * - has_run: whether a character repeats n times in a row (the gate before a costly regex);
 * - promo_candidates: which promotional patterns' trigger substrings occur in each segment, in
 *   one pass over each;
 * - plain_normalise, may_hold_links, plain_words: the text steps' answers for plain ASCII
 *   sentences, the common case, in one pass (other text goes the Python way);
 * - plain_sentence_spans: sentence splitting of text without markup, the regex's boundaries
 *   found in one pass without a match object each.
 *
 * In a gunicorn worker, between requests, the CPU caches fill with other work. There every numpy
 * call cost 2-5 us, and the numpy calls together were a third of scoring. The arithmetic is the
 * same as on the numpy path (sublinear tf, l2 norm, dot products). Only the order of additions
 * differs, so scores agree to about 1e-14 (tests/classifier/test_fastcount.py compares both
 * paths on the bundled corpus). Without a C compiler the package installs without this module
 * and the numpy path runs (classifier/model.py).
 *
 * Only the buffer protocol and the plain C API are used (no numpy headers). Every size is
 * checked before use and by division, so inconsistent input gives a ValueError, never a
 * crash.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static inline int
isalpha_ascii(Py_UCS1 c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static inline int
isalnum_ascii(Py_UCS1 c)
{
    return isalpha_ascii(c) || (c >= '0' && c <= '9');
}

/* A hint to fetch a cache line that is read soon (no effect where the compiler has no builtin). */
#if defined(__GNUC__) || defined(__clang__)
#define PREFETCH(p) __builtin_prefetch(p)
#else
#define PREFETCH(p) ((void)0)
#endif

#define RADIX_BITS 11
#define RADIX_SIZE (1 << RADIX_BITS)
#define SMALL_RADIX_BITS 8
/* Below this many keys, 8-bit digits: the bucket counts of 11-bit ones cost more than the keys. */
#define SMALL_SORT 1024
/* log(count) for counts below this, filled once at import (the same libm values as calling log). */
#define LOG_TABLE 256
static double log_table[LOG_TABLE];

/* Sort unsigned keys of `bits` significant bits: LSD radix sort, `tmp` as scratch. */
static void
sort_keys(uint64_t *keys, uint64_t *tmp, Py_ssize_t n, int bits)
{
    if (n < 48) { /* insertion sort: cheaper than one radix pass on a few keys */
        for (Py_ssize_t i = 1; i < n; i++) {
            uint64_t v = keys[i];
            Py_ssize_t j = i - 1;
            while (j >= 0 && keys[j] > v) {
                keys[j + 1] = keys[j];
                j--;
            }
            keys[j + 1] = v;
        }
        return;
    }
    Py_ssize_t counts[RADIX_SIZE];
    uint64_t *src = keys, *dst = tmp;
    int digit = n < SMALL_SORT ? SMALL_RADIX_BITS : RADIX_BITS;
    uint64_t mask = ((uint64_t)1 << digit) - 1;
    for (int shift = 0; shift < bits; shift += digit) {
        memset(counts, 0, sizeof(Py_ssize_t) << digit);
        for (Py_ssize_t i = 0; i < n; i++)
            counts[(src[i] >> shift) & mask]++;
        Py_ssize_t total = 0;
        for (uint64_t b = 0; b <= mask; b++) {
            Py_ssize_t c = counts[b];
            counts[b] = total;
            total += c;
        }
        for (Py_ssize_t i = 0; i < n; i++)
            dst[counts[(src[i] >> shift) & mask]++] = src[i];
        uint64_t *swap = src;
        src = dst;
        dst = swap;
    }
    if (src != keys)
        memcpy(keys, src, (size_t)n * sizeof(uint64_t));
}

static int
bit_length(uint64_t v)
{
    int bits = 0;
    while (v) {
        bits++;
        v >>= 1;
    }
    return bits;
}

/* How many keys ahead count_logits asks for table rows from memory. */
#define PREFETCH_AHEAD 8

/* One term of one row at `at`: its row, index, TF-IDF value before the norm (sublinear tf of
 * `count` times the idf in t[0]) and its ok, spam, off_topic weights (t[1..3]). */
static inline void
put_term(int64_t *rows, int64_t *idx, double *x, double *w, Py_ssize_t at, Py_ssize_t row, int64_t j,
         uint64_t count, const double *t)
{
    rows[at] = row;
    idx[at] = j;
    x[at] = (1.0 + (count < LOG_TABLE ? log_table[count] : log((double)count))) * t[0];
    w[at * 3] = t[1];
    w[at * 3 + 1] = t[2];
    w[at * 3 + 2] = t[3];
}

PyDoc_STRVAR(count_logits_doc,
"count_logits(entries, seg_lengths, n_segs, table, category_weights, bias)\n"
"--\n\n"
"Sparse counts, TF-IDF and logits of one post's rows (each segment, then the whole post).\n\n"
"entries: int64 buffer of vocabulary index + 1, segment by segment (seg_lengths each), then the\n"
"post-level tokens; the whole post counts every entry. table: float64 (terms, 4) rows of idf and\n"
"the ok, spam, off_topic weights; category_weights: float64 (terms, k); bias: float64 (3 + k).\n"
"Returns (z, rows, idx, x, w, n_whole): z the logits as a list of rows (lists of 3 + k floats),\n"
"then bytes of int64, int64, float64, float64 (m, 3), and an int: the same arrays\n"
"`_Counts.from_entries` and `Model._logits` compute.");

static PyObject *
count_logits(PyObject *self, PyObject *args)
{
    Py_buffer entries = {0}, lengths = {0}, table = {0}, cat = {0}, bias = {0};
    Py_ssize_t n_segs;
    PyObject *result = NULL;
    uint64_t *keys = NULL, *tmp = NULL;
    Py_ssize_t *next = NULL;
    double *z = NULL, *acc = NULL;
    PyObject *z_obj = NULL, *rows_obj = NULL, *idx_obj = NULL, *x_obj = NULL, *w_obj = NULL;

    if (!PyArg_ParseTuple(args, "y*y*ny*y*y*", &entries, &lengths, &n_segs, &table, &cat, &bias))
        return NULL;
    /* every size check divides rather than multiplies, so no product can overflow */
    if (n_segs < 0 || entries.len % 8 || lengths.len % 8 || lengths.len / 8 != n_segs || table.len % 32
        || cat.len % 8 || bias.len % 8 || bias.len < 24) {
        PyErr_SetString(PyExc_ValueError, "count_logits: buffer sizes do not fit together");
        goto done;
    }
    const int64_t *ent = (const int64_t *)entries.buf;
    const int64_t *seg_len = (const int64_t *)lengths.buf;
    const double *tab = (const double *)table.buf;
    const double *cw = (const double *)cat.buf;
    const double *b = (const double *)bias.buf;
    Py_ssize_t n_entries = entries.len / 8;
    Py_ssize_t n_terms = table.len / 32;
    Py_ssize_t n_cols = bias.len / 8;
    Py_ssize_t k = n_cols - 3;
    Py_ssize_t n_rows = n_segs + 1;
    if (k == 0 ? cat.len != 0 : (cat.len / 8 % k || cat.len / 8 / k != n_terms)) {
        PyErr_SetString(PyExc_ValueError, "count_logits: category weights do not match the table");
        goto done;
    }
    Py_ssize_t n_seg_entries = 0;
    for (Py_ssize_t s = 0; s < n_segs; s++) {
        if (seg_len[s] < 0) {
            PyErr_SetString(PyExc_ValueError, "count_logits: negative segment length");
            goto done;
        }
        if (seg_len[s] > n_entries - n_seg_entries) { /* checked before adding: the sum cannot wrap */
            PyErr_SetString(PyExc_ValueError, "count_logits: segment lengths exceed the entries");
            goto done;
        }
        n_seg_entries += seg_len[s];
    }

    /* keys: (index + 1) << row_bits | row, each entry once, the post-level ones in the whole
     * post's row. Sorted, a term's keys lie together with its rows in order: the run of one
     * term is its count in the whole post, and the runs of equal keys within it its counts in
     * each sentence. Entering each entry twice (tagged with its sentence and with the whole
     * post, as `_Counts.from_entries` does) sorted twice as many keys. */
    int row_bits = bit_length((uint64_t)n_segs);
    int shift = bit_length((uint64_t)n_terms);
    if (shift + row_bits > 63) {
        PyErr_SetString(PyExc_ValueError, "count_logits: too many terms and segments for 64-bit keys");
        goto done;
    }
    Py_ssize_t n_keys = n_entries;
    keys = PyMem_Malloc((size_t)(n_keys ? n_keys : 1) * sizeof(uint64_t) * 2);
    next = PyMem_Calloc((size_t)n_rows, sizeof(Py_ssize_t));
    acc = PyMem_Calloc((size_t)(k ? k : 1), sizeof(double));
    if (keys == NULL || next == NULL || acc == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    tmp = keys + n_keys;
    for (Py_ssize_t s = 0, e = 0; s <= n_segs; s++) {
        Py_ssize_t stop = s < n_segs ? e + seg_len[s] : n_entries;
        for (; e < stop; e++) {
            if (ent[e] < 1 || ent[e] > n_terms) {
                PyErr_SetString(PyExc_ValueError, "count_logits: an entry is outside the vocabulary");
                goto done;
            }
            keys[e] = ((uint64_t)ent[e] << row_bits) | (uint64_t)s;
        }
    }
    sort_keys(keys, tmp, n_keys, shift + row_bits);

    /* distinct keys with their counts (in tmp), how many terms each sentence has, and how many
     * the whole post has */
    uint64_t row_mask = ((uint64_t)1 << row_bits) - 1;
    Py_ssize_t d = 0, n_whole = 0;
    for (Py_ssize_t i = 0; i < n_keys; i++) {
        if (d && keys[d - 1] == keys[i]) {
            tmp[d - 1]++;
            continue;
        }
        if (!d || keys[d - 1] >> row_bits != keys[i] >> row_bits)
            n_whole++;
        keys[d] = keys[i];
        tmp[d] = 1;
        Py_ssize_t row = (Py_ssize_t)(keys[d] & row_mask);
        if (row < n_segs) /* post-level tokens are terms of the whole post only */
            next[row]++;
        d++;
    }
    next[n_segs] = n_whole;
    /* where each row starts: rows in order, each row's terms in order of index (the layout of
     * `_Counts.from_entries`); `next` then advances as each row is filled */
    Py_ssize_t m = 0;
    for (Py_ssize_t r = 0; r < n_rows; r++) {
        Py_ssize_t c = next[r];
        next[r] = m;
        m += c;
    }

    z = PyMem_Malloc((size_t)n_rows * (size_t)n_cols * sizeof(double));
    if (z == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    rows_obj = PyBytes_FromStringAndSize(NULL, m * 8);
    idx_obj = PyBytes_FromStringAndSize(NULL, m * 8);
    x_obj = PyBytes_FromStringAndSize(NULL, m * 8);
    w_obj = PyBytes_FromStringAndSize(NULL, m * 24);
    if (!rows_obj || !idx_obj || !x_obj || !w_obj)
        goto done;
    int64_t *rows = (int64_t *)PyBytes_AS_STRING(rows_obj);
    int64_t *idx = (int64_t *)PyBytes_AS_STRING(idx_obj);
    double *x = (double *)PyBytes_AS_STRING(x_obj);
    double *w = (double *)PyBytes_AS_STRING(w_obj);
    for (Py_ssize_t r = 0; r < n_rows; r++)
        memcpy(z + r * n_cols, b, (size_t)n_cols * sizeof(double));

    /* TF-IDF before the norm: each term's table row is read once, for its sentences and the
     * whole post, while the rows of terms a few keys ahead are fetched (the reads are scattered
     * over the table, and in a server they come from memory) */
    for (Py_ssize_t i = 0; i < d && i < PREFETCH_AHEAD; i++)
        PREFETCH(tab + ((keys[i] >> row_bits) - 1) * 4);
    for (Py_ssize_t start = 0; start < d;) {
        uint64_t term = keys[start] >> row_bits;
        int64_t j = (int64_t)term - 1;
        const double *t = tab + j * 4;
        uint64_t total = 0;
        Py_ssize_t end = start;
        for (; end < d && keys[end] >> row_bits == term; end++) {
            if (end + PREFETCH_AHEAD < d)
                PREFETCH(tab + ((keys[end + PREFETCH_AHEAD] >> row_bits) - 1) * 4);
            uint64_t c = tmp[end];
            total += c;
            Py_ssize_t row = (Py_ssize_t)(keys[end] & row_mask);
            if (row < n_segs)
                put_term(rows, idx, x, w, next[row]++, row, j, c, t);
        }
        put_term(rows, idx, x, w, next[n_segs]++, n_segs, j, total, t);
        start = end;
    }
    /* next[r] is now where row r ends: the norm and logits of each row, its terms added in
     * order of index as on the numpy path */
    for (Py_ssize_t r = 0, start = 0; r < n_rows; start = next[r], r++) {
        Py_ssize_t end = next[r];
        if (end == start)
            continue;
        double sumsq = 0.0;
        for (Py_ssize_t i = start; i < end; i++)
            sumsq += x[i] * x[i];
        double norm = sqrt(sumsq);
        double s0 = 0.0, s1 = 0.0, s2 = 0.0;
        for (Py_ssize_t i = start; i < end; i++) {
            double v = x[i] / norm;
            x[i] = v;
            s0 += w[i * 3] * v;
            s1 += w[i * 3 + 1] * v;
            s2 += w[i * 3 + 2] * v;
        }
        double *zr = z + r * n_cols;
        zr[0] += s0;
        zr[1] += s1;
        zr[2] += s2;
        if (r == n_segs && k) {
            for (Py_ssize_t i = start; i < end && i < start + PREFETCH_AHEAD; i++)
                PREFETCH(cw + idx[i] * k);
            for (Py_ssize_t i = start; i < end; i++) {
                if (i + PREFETCH_AHEAD < end)
                    PREFETCH(cw + idx[i + PREFETCH_AHEAD] * k);
                const double *cr = cw + idx[i] * k;
                for (Py_ssize_t c = 0; c < k; c++)
                    acc[c] += x[i] * cr[c];
            }
            for (Py_ssize_t c = 0; c < k; c++)
                zr[3 + c] += acc[c];
        }
    }
    /* the logits as lists of floats: the per-post arithmetic after this is plain Python */
    z_obj = PyList_New(n_rows);
    if (z_obj == NULL)
        goto done;
    for (Py_ssize_t r = 0; r < n_rows; r++) {
        PyObject *row = PyList_New(n_cols);
        if (row == NULL)
            goto done;
        PyList_SET_ITEM(z_obj, r, row);
        for (Py_ssize_t c = 0; c < n_cols; c++) {
            PyObject *v = PyFloat_FromDouble(z[r * n_cols + c]);
            if (v == NULL)
                goto done;
            PyList_SET_ITEM(row, c, v);
        }
    }
    result = Py_BuildValue("(OOOOOn)", z_obj, rows_obj, idx_obj, x_obj, w_obj, n_whole);

done:
    PyMem_Free(keys);
    PyMem_Free(next);
    PyMem_Free(acc);
    PyMem_Free(z);
    Py_XDECREF(z_obj);
    Py_XDECREF(rows_obj);
    Py_XDECREF(idx_obj);
    Py_XDECREF(x_obj);
    Py_XDECREF(w_obj);
    PyBuffer_Release(&entries);
    PyBuffer_Release(&lengths);
    PyBuffer_Release(&table);
    PyBuffer_Release(&cat);
    PyBuffer_Release(&bias);
    return result;
}

/* Keep the `k` best (value, position) pairs seen so far in `top` (sorted best first): larger
 * values first when `largest`, smaller first otherwise; equal values by lower position. */
static Py_ssize_t
keep_best(double *top_v, Py_ssize_t *top_p, Py_ssize_t have, Py_ssize_t k, double v, Py_ssize_t p, int largest)
{
    Py_ssize_t i = have < k ? have : k - 1;
    if (have >= k && (largest ? v <= top_v[k - 1] : v >= top_v[k - 1]))
        return have;
    while (i > 0 && (largest ? v > top_v[i - 1] : v < top_v[i - 1])) {
        top_v[i] = top_v[i - 1];
        top_p[i] = top_p[i - 1];
        i--;
    }
    top_v[i] = v;
    top_p[i] = p;
    return have < k ? have + 1 : have;
}

static int
compare_positions(const void *a, const void *b)
{
    Py_ssize_t x = *(const Py_ssize_t *)a, y = *(const Py_ssize_t *)b;
    return (x > y) - (x < y);
}

PyDoc_STRVAR(reason_terms_doc,
"reason_terms(rows, idx, x, w, n_whole, n_segs, best, alpha, k, names, extras)\n"
"--\n\n"
"The reasons of one post: each whole-post term's exact contribution to the label's log-odds,\n"
"the candidates (the k largest contributions, and the k smallest too when fewer than k of those\n"
"are positive, by position in the whole-post row) named by names[vocabulary index], then the\n"
"(name, contribution) pairs of extras; without zeros, positive ones first, each part by size,\n"
"ties in that order; the first k as (name, contribution) pairs. rows, idx, x, w are\n"
"`count_logits`'s outputs; alpha is the combiner's six weights of the label minus the\n"
"reference. The arithmetic and the order are `Model._reasons`' numpy path's, step for step.");

/* A reason while ranking: name (borrowed) and contribution. */
typedef struct {
    PyObject *name;
    double value;
} Ranked;

/* Whether `a` goes before `b` in the reasons: positive first, then the larger size. */
static inline int
ranks_before(const Ranked *a, const Ranked *b)
{
    int pa = a->value > 0, pb = b->value > 0;
    return pa != pb ? pa : fabs(a->value) > fabs(b->value);
}

static PyObject *
reason_terms(PyObject *self, PyObject *args)
{
    Py_buffer rows_b = {0}, idx_b = {0}, x_b = {0}, w_b = {0};
    Py_ssize_t n_whole, n_segs, best, k;
    double a[6];
    PyObject *result = NULL;
    double *values = NULL, *best_v = NULL;

    PyObject *names, *extras;
    Ranked *ranked = NULL;
    Py_ssize_t *where = NULL;
    if (!PyArg_ParseTuple(args, "y*y*y*y*nnn(dddddd)nO!O!", &rows_b, &idx_b, &x_b, &w_b, &n_whole, &n_segs, &best,
                          &a[0], &a[1], &a[2], &a[3], &a[4], &a[5], &k, &PyList_Type, &names, &PyList_Type, &extras))
        return NULL;
    Py_ssize_t m = idx_b.len / 8;
    if (idx_b.len % 8 || rows_b.len != m * 8 || x_b.len != m * 8 || w_b.len / 24 != m || w_b.len % 24
        || n_whole < 0 || n_whole > m || k < 0) {
        PyErr_SetString(PyExc_ValueError, "reason_terms: buffer sizes do not fit together");
        goto done;
    }
    const int64_t *rows = (const int64_t *)rows_b.buf;
    const int64_t *idx = (const int64_t *)idx_b.buf;
    const double *x = (const double *)x_b.buf;
    const double *w = (const double *)w_b.buf;
    Py_ssize_t n_seg = m - n_whole;
    const int64_t *whole_idx = idx + n_seg;

    values = PyMem_Malloc((size_t)(2 * n_whole + 1) * sizeof(double));
    if (values == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    double *extra = values + n_whole;
    for (Py_ssize_t j = 0; j < n_whole; j++) {
        const double *wj = w + (n_seg + j) * 3;
        values[j] = x[n_seg + j] * (a[0] * (wj[1] - wj[0]) + a[1] * (wj[2] - wj[0]));
        extra[j] = 0.0;
    }
    if (n_seg) {
        /* every sentence: its share of the mean sentence logit; the best one: the max logit too */
        double share = a[5] / (double)(n_segs > 1 ? n_segs : 1);
        double share_best = share + a[2];
        /* each whole-post term's position, by vocabulary index: a small open-addressing table
         * (a search in the sorted row per sentence term cost two thirds of this function) */
        int bits = 4;
        while (((Py_ssize_t)1 << bits) < 2 * n_whole)
            bits++;
        size_t mask = ((size_t)1 << bits) - 1;
        where = PyMem_Malloc((mask + 1) * sizeof(Py_ssize_t));
        if (where == NULL) {
            PyErr_NoMemory();
            goto done;
        }
        for (size_t slot = 0; slot <= mask; slot++)
            where[slot] = -1;
        for (Py_ssize_t j = 0; j < n_whole; j++) {
            size_t slot = (size_t)(((uint64_t)whole_idx[j] * 0x9E3779B97F4A7C15ULL) >> (64 - bits));
            while (where[slot] >= 0)
                slot = (slot + 1) & mask;
            where[slot] = j;
        }
        for (Py_ssize_t i = 0; i < n_seg; i++) {
            size_t slot = (size_t)(((uint64_t)idx[i] * 0x9E3779B97F4A7C15ULL) >> (64 - bits));
            while (where[slot] >= 0 && whole_idx[where[slot]] != idx[i])
                slot = (slot + 1) & mask;
            Py_ssize_t lo = where[slot];
            if (lo < 0) {
                PyErr_SetString(PyExc_ValueError, "reason_terms: a sentence term is missing from the whole post");
                goto done;
            }
            double coef = (best >= 0 && rows[i] == best) ? share_best : share;
            extra[lo] += x[i] * coef * (w[i * 3 + 1] - w[i * 3]);
        }
        for (Py_ssize_t j = 0; j < n_whole; j++)
            values[j] += extra[j];
    }

    Py_ssize_t wanted = k;
    if (k > n_whole)
        k = n_whole;
    best_v = PyMem_Malloc((size_t)(4 * k + 1) * sizeof(double) + (size_t)(4 * k + 1) * sizeof(Py_ssize_t));
    if (best_v == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    double *top_v = best_v, *low_v = best_v + k;
    Py_ssize_t *top_p = (Py_ssize_t *)(best_v + 2 * k), *low_p = top_p + k, *picked = low_p + k;
    Py_ssize_t n_top = 0, n_low = 0, n_positive = 0, n_picked = 0;
    for (Py_ssize_t j = 0; j < n_whole && k; j++)
        n_top = keep_best(top_v, top_p, n_top, k, values[j], j, 1);
    for (Py_ssize_t i = 0; i < n_top; i++) {
        n_positive += top_v[i] > 0;
        picked[n_picked++] = top_p[i];
    }
    if (k && n_positive < wanted) { /* counter-evidence may fill the list */
        for (Py_ssize_t j = 0; j < n_whole; j++)
            n_low = keep_best(low_v, low_p, n_low, k, values[j], j, 0);
        for (Py_ssize_t i = 0; i < n_low; i++) {
            int seen = 0;
            for (Py_ssize_t t = 0; t < n_top; t++)
                seen |= top_p[t] == low_p[i];
            if (!seen)
                picked[n_picked++] = low_p[i];
        }
    }
    qsort(picked, (size_t)n_picked, sizeof(Py_ssize_t), compare_positions);
    /* candidates by position, then the extras; zeros dropped; a stable insertion sort */
    Py_ssize_t n_extras = PyList_GET_SIZE(extras), n_ranked = 0;
    ranked = PyMem_Malloc((size_t)(n_picked + n_extras + 1) * sizeof(Ranked));
    if (ranked == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < n_picked + n_extras; i++) {
        Ranked r;
        if (i < n_picked) {
            int64_t term = whole_idx[picked[i]];
            if (term < 0 || term >= PyList_GET_SIZE(names)) {
                PyErr_SetString(PyExc_ValueError, "reason_terms: a term has no name");
                goto done;
            }
            r.name = PyList_GET_ITEM(names, term);
            r.value = values[picked[i]];
        } else {
            PyObject *pair = PyList_GET_ITEM(extras, i - n_picked);
            if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2 || !PyFloat_Check(PyTuple_GET_ITEM(pair, 1))) {
                PyErr_SetString(PyExc_TypeError, "reason_terms: extras must be (name, float) pairs");
                goto done;
            }
            r.name = PyTuple_GET_ITEM(pair, 0);
            r.value = PyFloat_AS_DOUBLE(PyTuple_GET_ITEM(pair, 1));
        }
        if (r.value == 0.0)
            continue;
        Py_ssize_t j = n_ranked++;
        while (j > 0 && ranks_before(&r, &ranked[j - 1])) {
            ranked[j] = ranked[j - 1];
            j--;
        }
        ranked[j] = r;
    }
    if (n_ranked > wanted)
        n_ranked = wanted;
    result = PyList_New(n_ranked);
    if (result == NULL)
        goto done;
    for (Py_ssize_t i = 0; i < n_ranked; i++) {
        PyObject *pair = Py_BuildValue("(Od)", ranked[i].name, ranked[i].value);
        if (pair == NULL) {
            Py_CLEAR(result);
            goto done;
        }
        PyList_SET_ITEM(result, i, pair);
    }

done:
    PyMem_Free(where);
    PyMem_Free(ranked);
    PyMem_Free(values);
    PyMem_Free(best_v);
    PyBuffer_Release(&rows_b);
    PyBuffer_Release(&idx_b);
    PyBuffer_Release(&x_b);
    PyBuffer_Release(&w_b);
    return result;
}

/* A growing int64 array. */
typedef struct {
    int64_t *data;
    Py_ssize_t len, cap;
} Vec;

static int
vec_reserve(Vec *v, Py_ssize_t extra)
{
    if (v->len + extra <= v->cap)
        return 0;
    Py_ssize_t cap = v->cap ? v->cap * 2 : 512;
    while (cap < v->len + extra)
        cap *= 2;
    int64_t *data = PyMem_Realloc(v->data, (size_t)cap * sizeof(int64_t));
    if (data == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    v->data = data;
    v->cap = cap;
    return 0;
}

/* Append vocabulary[key] when the key is a term; 0 when it is not, -1 on error. The key and
 * the value are held during the look-up: a str subclass's __eq__ or an int subclass's __index__
 * is Python code, which could drop the list or dict entry they came from. */
static int
append_term(Vec *out, PyObject *vocab, PyObject *key)
{
    Py_INCREF(key);
    PyObject *value = PyDict_GetItemWithError(vocab, key);
    Py_DECREF(key);
    if (value == NULL)
        return PyErr_Occurred() ? -1 : 0;
    Py_INCREF(value);
    long long i = PyLong_AsLongLong(value);
    Py_DECREF(value);
    if (i == -1 && PyErr_Occurred())
        return -1;
    if (i == 0) /* as filter(None, ...) drops it */
        return 0;
    if (vec_reserve(out, 1) < 0)
        return -1;
    out->data[out->len++] = (int64_t)i;
    return 0;
}

/* The word-pair table: open addressing over `cap` (a power of two) slots of (key, value), key
 * (first word id << 32 | second word id) or PAIR_EMPTY, value the bigram's vocabulary index + 1.
 * One slot read, usually, where a dict look-up of the joined str read three cache lines (the
 * index, the entry and the key object) after building and hashing the str. */
#define PAIR_EMPTY UINT64_MAX

static inline uint64_t
pair_slot(uint64_t key, int bits)
{
    return (key * 0x9E3779B97F4A7C15ULL) >> (64 - bits);
}

PyDoc_STRVAR(pair_table_doc,
"pair_table(keys, values)\n"
"--\n\n"
"The word-pair table `lookup_entries` reads: keys are uint64 bytes (first word id << 32 |\n"
"second word id, ids below 2**31), values int64 bytes (the pair's vocabulary index + 1).\n"
"Returns bytes: a power-of-two number of (key, value) slots, at most half of them used.");

static PyObject *
pair_table(PyObject *self, PyObject *args)
{
    Py_buffer keys_b = {0}, values_b = {0};
    PyObject *result = NULL;
    if (!PyArg_ParseTuple(args, "y*y*", &keys_b, &values_b))
        return NULL;
    if (keys_b.len % 8 || keys_b.len != values_b.len) {
        PyErr_SetString(PyExc_ValueError, "pair_table: keys and values must be as many 8-byte numbers");
        goto done;
    }
    Py_ssize_t n = keys_b.len / 8;
    int bits = 4;
    while (((Py_ssize_t)1 << bits) < 2 * n) {
        if (bits >= 40) {
            PyErr_SetString(PyExc_ValueError, "pair_table: too many pairs");
            goto done;
        }
        bits++;
    }
    Py_ssize_t cap = (Py_ssize_t)1 << bits;
    result = PyBytes_FromStringAndSize(NULL, cap * 16);
    if (result == NULL)
        goto done;
    uint64_t *slots = (uint64_t *)PyBytes_AS_STRING(result);
    for (Py_ssize_t i = 0; i < cap; i++) {
        slots[2 * i] = PAIR_EMPTY;
        slots[2 * i + 1] = 0;
    }
    const uint64_t *keys = (const uint64_t *)keys_b.buf;
    const int64_t *values = (const int64_t *)values_b.buf;
    for (Py_ssize_t i = 0; i < n; i++) {
        uint64_t key = keys[i];
        if (key >> 63) {
            PyErr_SetString(PyExc_ValueError, "pair_table: word ids must be below 2**31");
            Py_CLEAR(result);
            goto done;
        }
        uint64_t at = pair_slot(key, bits);
        while (slots[2 * at] != PAIR_EMPTY && slots[2 * at] != key)
            at = (at + 1) & (uint64_t)(cap - 1);
        slots[2 * at] = key;
        slots[2 * at + 1] = (uint64_t)values[i];
    }
done:
    PyBuffer_Release(&keys_b);
    PyBuffer_Release(&values_b);
    return result;
}

/* The value of `key` in a pair table of `cap` slots, 0 when absent. */
static int64_t
pair_lookup(const uint64_t *slots, Py_ssize_t cap, int bits, uint64_t key)
{
    uint64_t at = pair_slot(key, bits);
    for (Py_ssize_t probes = 0; probes < cap; probes++) {
        uint64_t k = slots[2 * at];
        if (k == key)
            return (int64_t)slots[2 * at + 1];
        if (k == PAIR_EMPTY)
            return 0;
        at = (at + 1) & (uint64_t)(cap - 1);
    }
    return 0;
}

/* WordCache: str -> bytes, open addressing on the str's own hash, slots in one array.
 *
 * The word cache is read for every word of every post. A dict look-up is a chain of dependent
 * memory reads (index, entry, key, value); in a server, between requests, they come from main
 * memory one after another. Here `lookup_entries` first asks for every word's slot, then for
 * every slot's key and value, and only then compares and copies, so the reads of one sentence's
 * words overlap (`word_slots`). */
typedef struct {
    Py_hash_t hash;
    PyObject *key;   /* str, or NULL for an empty slot */
    PyObject *value; /* bytes */
} WordSlot;

typedef struct {
    PyObject_HEAD
    WordSlot *slots;
    Py_ssize_t cap, used; /* cap: a power of two, at least twice `used` */
} WordCacheObject;

static void
word_cache_dealloc(WordCacheObject *self)
{
    if (self->slots != NULL) { /* NULL when the first allocation failed */
        for (Py_ssize_t i = 0; i < self->cap; i++) {
            Py_XDECREF(self->slots[i].key);
            Py_XDECREF(self->slots[i].value);
        }
        PyMem_Free(self->slots);
    }
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
word_cache_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    if (!PyArg_ParseTuple(args, ":WordCache") || (kwds != NULL && PyDict_GET_SIZE(kwds))) {
        PyErr_SetString(PyExc_TypeError, "WordCache() takes no arguments");
        return NULL;
    }
    WordCacheObject *self = (WordCacheObject *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    self->slots = PyMem_Calloc(1024, sizeof(WordSlot));
    if (self->slots == NULL) {
        Py_DECREF(self);
        return PyErr_NoMemory();
    }
    self->cap = 1024;
    return (PyObject *)self;
}

/* Whether slot key `k` is the str `word` (whose hash is `h`). */
static inline int
word_matches(const WordSlot *slot, PyObject *word, Py_hash_t h)
{
    PyObject *k = slot->key;
    if (k == word)
        return 1;
    if (slot->hash != h || PyUnicode_GET_LENGTH(k) != PyUnicode_GET_LENGTH(word)
        || PyUnicode_KIND(k) != PyUnicode_KIND(word))
        return 0;
    return memcmp(PyUnicode_DATA(k), PyUnicode_DATA(word),
                  (size_t)PyUnicode_GET_LENGTH(k) * (size_t)PyUnicode_KIND(k)) == 0;
}

/* The slot of `word`: its own if present, else the empty slot where it would go. */
static WordSlot *
word_slot(WordCacheObject *self, PyObject *word, Py_hash_t h)
{
    size_t mask = (size_t)self->cap - 1, at = (size_t)h & mask;
    for (;;) {
        WordSlot *slot = &self->slots[at];
        if (slot->key == NULL || word_matches(slot, word, h))
            return slot;
        at = (at + 1) & mask;
    }
}

static int
word_cache_grow(WordCacheObject *self)
{
    Py_ssize_t cap = self->cap * 2;
    WordSlot *old = self->slots, *slots = PyMem_Calloc((size_t)cap, sizeof(WordSlot));
    if (slots == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    Py_ssize_t old_cap = self->cap;
    self->slots = slots;
    self->cap = cap;
    for (Py_ssize_t i = 0; i < old_cap; i++) {
        if (old[i].key != NULL)
            *word_slot(self, old[i].key, old[i].hash) = old[i];
    }
    PyMem_Free(old);
    return 0;
}

/* A str key ready for hashing and comparing, with its hash; -1 on error. */
static int
word_key(PyObject *key, Py_hash_t *h)
{
    if (!PyUnicode_CheckExact(key)) {
        PyErr_SetString(PyExc_TypeError, "WordCache keys must be str");
        return -1;
    }
    if (PyUnicode_READY(key) < 0)
        return -1;
    *h = PyObject_Hash(key); /* a str's hash runs no Python code */
    return *h == -1 ? -1 : 0;
}

static PyObject *
word_cache_get(WordCacheObject *self, PyObject *args)
{
    PyObject *key, *fallback = Py_None;
    Py_hash_t h;
    if (!PyArg_ParseTuple(args, "O|O:get", &key, &fallback))
        return NULL;
    if (word_key(key, &h) < 0)
        return NULL;
    WordSlot *slot = word_slot(self, key, h);
    PyObject *found = slot->key != NULL ? slot->value : fallback;
    Py_INCREF(found);
    return found;
}

static int
word_cache_set(WordCacheObject *self, PyObject *key, PyObject *value)
{
    Py_hash_t h;
    if (value == NULL) {
        PyErr_SetString(PyExc_TypeError, "WordCache entries cannot be deleted");
        return -1;
    }
    if (!PyBytes_CheckExact(value)) {
        PyErr_SetString(PyExc_TypeError, "WordCache values must be bytes");
        return -1;
    }
    if (word_key(key, &h) < 0)
        return -1;
    if (2 * (self->used + 1) > self->cap && word_cache_grow(self) < 0)
        return -1;
    WordSlot *slot = word_slot(self, key, h);
    Py_INCREF(value);
    if (slot->key == NULL) {
        Py_INCREF(key);
        slot->key = key;
        slot->hash = h;
        slot->value = value;
        self->used++;
    } else {
        Py_SETREF(slot->value, value);
    }
    return 0;
}

static Py_ssize_t
word_cache_len(WordCacheObject *self)
{
    return self->used;
}

static PyObject *
word_cache_subscript(WordCacheObject *self, PyObject *key)
{
    Py_hash_t h;
    if (word_key(key, &h) < 0)
        return NULL;
    WordSlot *slot = word_slot(self, key, h);
    if (slot->key == NULL) {
        PyErr_SetObject(PyExc_KeyError, key);
        return NULL;
    }
    Py_INCREF(slot->value);
    return slot->value;
}

static PyMappingMethods word_cache_mapping = {
    (lenfunc)word_cache_len, (binaryfunc)word_cache_subscript, (objobjargproc)word_cache_set,
};

static PyMethodDef word_cache_methods[] = {
    {"get", (PyCFunction)word_cache_get, METH_VARARGS, "get(word, default=None): the word's bytes, or default."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject WordCacheType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "classifier._fastcount.WordCache",
    .tp_basicsize = sizeof(WordCacheObject),
    .tp_dealloc = (destructor)word_cache_dealloc,
    .tp_as_mapping = &word_cache_mapping,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "WordCache()\n--\n\nA word's cached entries (str -> bytes), for lookup_entries: as a dict, "
              "with get, [] and len, but read so the look-ups of a sentence's words overlap in memory.",
    .tp_methods = word_cache_methods,
    .tp_new = word_cache_new,
};

/* The words' hashes in `hashes`, and their slots, keys and values asked for from memory. */
static int
word_slots(WordCacheObject *cache, PyObject *words, Py_ssize_t n, Py_hash_t *hashes)
{
    size_t mask = (size_t)cache->cap - 1;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (word_key(PyList_GET_ITEM(words, i), &hashes[i]) < 0)
            return -1;
        PREFETCH(&cache->slots[(size_t)hashes[i] & mask]);
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        const WordSlot *slot = &cache->slots[(size_t)hashes[i] & mask];
        if (slot->key != NULL && slot->hash == hashes[i]) {
            PREFETCH(slot->key);
            PREFETCH(slot->value);
            PREFETCH(PyBytes_AS_STRING(slot->value) + 64);
        }
    }
    return 0;
}

PyDoc_STRVAR(lookup_entries_doc,
"lookup_entries(parts, vocabulary, pairs, word_cache, word_entries, post_tokens=[])\n"
"--\n\n"
"Vocabulary index + 1 of every term of every segment, as `Model._entries`' Python loop finds\n"
"them: per segment (words, extra tokens) of `features.segments_parts`, each word's cached\n"
"entries (word_cache[word], a WordCache: packed int64 bytes, the word's id in the pair table or\n"
"-1, then its entries; word_entries(word) computes and caches a missing one), then the word\n"
"bigrams (looked up in pairs, a `pair_table`, by the two words' ids) and the extra tokens that\n"
"are terms; after every segment, the post-level tokens that are terms. Returns (entries,\n"
"lengths) as int64 bytes: all entries, and how many each segment has (the post-level ones\n"
"follow the segments' and are not counted).");

static PyObject *
lookup_entries(PyObject *self, PyObject *args)
{
    PyObject *parts, *vocab, *cache, *miss, *post_tokens = NULL;
    PyObject *part = NULL, *word = NULL, *packed = NULL; /* strong references while Python code may run */
    Py_buffer pairs_b = {0};
    Vec out = {0}, lengths = {0}, ids = {0};
    PyObject *result = NULL;

    Py_hash_t *hashes = NULL;
    Py_ssize_t hashes_cap = 0;
    if (!PyArg_ParseTuple(args, "O!O!y*O!O|O!", &PyList_Type, &parts, &PyDict_Type, &vocab, &pairs_b, &WordCacheType,
                          &cache, &miss, &PyList_Type, &post_tokens))
        return NULL;
    Py_ssize_t cap = pairs_b.len / 16;
    int bits = 0;
    while (((Py_ssize_t)1 << bits) < cap)
        bits++;
    if (pairs_b.len % 16 || cap < 2 || ((Py_ssize_t)1 << bits) != cap) {
        PyErr_SetString(PyExc_ValueError, "lookup_entries: pairs must be a pair_table");
        goto done;
    }
    const uint64_t *slots = (const uint64_t *)pairs_b.buf;
    /* The word_entries callback runs Python code, which could change any list here: sizes are
     * read again on every pass and the items in use are held. */
    for (Py_ssize_t s = 0; s < PyList_GET_SIZE(parts); s++) {
        part = PyList_GET_ITEM(parts, s);
        Py_INCREF(part);
        if (!PyTuple_Check(part) || PyTuple_GET_SIZE(part) != 2 || !PyList_Check(PyTuple_GET_ITEM(part, 0))
            || !PyList_Check(PyTuple_GET_ITEM(part, 1))) {
            PyErr_SetString(PyExc_TypeError, "lookup_entries: each part must be a (words, extra) pair of lists");
            goto done;
        }
        PyObject *words = PyTuple_GET_ITEM(part, 0), *extra = PyTuple_GET_ITEM(part, 1);
        Py_ssize_t before = out.len;
        ids.len = 0;
        Py_ssize_t n_words = PyList_GET_SIZE(words);
        if (n_words > hashes_cap) {
            PyMem_Free(hashes);
            hashes_cap = n_words * 2;
            hashes = PyMem_Malloc((size_t)hashes_cap * sizeof(Py_hash_t));
            if (hashes == NULL) {
                PyErr_NoMemory();
                goto done;
            }
        }
        if (word_slots((WordCacheObject *)cache, words, n_words, hashes) < 0)
            goto done;
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(words); i++) {
            word = PyList_GET_ITEM(words, i);
            Py_INCREF(word);
            Py_hash_t h;
            if (word_key(word, &h) < 0) /* again: the callback may have changed the list */
                goto done;
            WordSlot *slot = word_slot((WordCacheObject *)cache, word, h);
            if (slot->key != NULL) {
                packed = slot->value;
                Py_INCREF(packed);
            } else { /* Python code: it may change the cache and the list (no slot is kept) */
                packed = PyObject_CallOneArg(miss, word);
                if (packed == NULL)
                    goto done;
            }
            if (!PyBytes_Check(packed) || PyBytes_GET_SIZE(packed) % 8 || PyBytes_GET_SIZE(packed) == 0) {
                PyErr_SetString(PyExc_TypeError, "lookup_entries: a word's entries must be packed int64 bytes "
                                                 "(its id, then its entries)");
                goto done;
            }
            Py_ssize_t n = PyBytes_GET_SIZE(packed) / 8 - 1;
            if (vec_reserve(&out, n) < 0 || vec_reserve(&ids, 1) < 0)
                goto done;
            int64_t id;
            memcpy(&id, PyBytes_AS_STRING(packed), 8);
            ids.data[ids.len++] = id;
            if (n)
                memcpy(out.data + out.len, PyBytes_AS_STRING(packed) + 8, (size_t)n * 8);
            out.len += n;
            Py_CLEAR(packed);
            Py_CLEAR(word);
        }
        /* word pairs by the ids just read (a word without an id is in no pair that is a term);
         * extra tokens: the list's size is read again on every pass, and append_term holds each
         * key, in case a str subclass runs Python code */
        for (Py_ssize_t i = 0; i + 1 < ids.len; i++) {
            int64_t a = ids.data[i], b = ids.data[i + 1];
            if (a < 0 || b < 0 || a >= ((int64_t)1 << 31) || b >= ((int64_t)1 << 31))
                continue;
            int64_t v = pair_lookup(slots, cap, bits, (uint64_t)a << 32 | (uint64_t)b);
            if (v == 0)
                continue;
            if (vec_reserve(&out, 1) < 0)
                goto done;
            out.data[out.len++] = v;
        }
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(extra); i++) {
            if (append_term(&out, vocab, PyList_GET_ITEM(extra, i)) < 0)
                goto done;
        }
        if (vec_reserve(&lengths, 1) < 0)
            goto done;
        lengths.data[lengths.len++] = out.len - before;
        Py_CLEAR(part);
    }
    for (Py_ssize_t i = 0; post_tokens != NULL && i < PyList_GET_SIZE(post_tokens); i++) {
        if (append_term(&out, vocab, PyList_GET_ITEM(post_tokens, i)) < 0)
            goto done;
    }
    /* y# with a NULL pointer would give None: a post without terms gives b"" */
    result = Py_BuildValue("(y#y#)", out.data ? (const char *)out.data : "", out.len * 8,
                           lengths.data ? (const char *)lengths.data : "", lengths.len * 8);

done:
    Py_XDECREF(packed);
    Py_XDECREF(word);
    Py_XDECREF(part);
    PyMem_Free(out.data);
    PyMem_Free(lengths.data);
    PyMem_Free(ids.data);
    PyMem_Free(hashes);
    PyBuffer_Release(&pairs_b);
    return result;
}

/* The loop of `words`: words of text[0:n] appended to `out`, built in `buf` (room for n
 * characters). READ(i) reads character i; ALNUM and DECIMAL classify it as str.isalnum() and
 * str.isdecimal() do; MAKE(len) makes the str of buf[0:len]. */
#define COLLECT_WORDS(READ, ALNUM, DECIMAL, MAKE)                                                      \
    do {                                                                                             \
        Py_ssize_t i = 0;                                                                            \
        while (i < n) {                                                                              \
            if (!ALNUM(READ(i))) {                                                                   \
                i++;                                                                                 \
                continue;                                                                            \
            }                                                                                        \
            Py_ssize_t len = 0;                                                                      \
            int in_digits = 0; /* the last character written is a folded digit run */               \
            for (;;) {                                                                               \
                Py_UCS4 c;                                                                           \
                while (i < n && ALNUM(c = READ(i))) {                                                \
                    if (DECIMAL(c)) {                                                                \
                        if (!in_digits)                                                              \
                            buf[len++] = '0';                                                        \
                        in_digits = 1;                                                               \
                    } else {                                                                         \
                        buf[len++] = c;                                                              \
                        in_digits = 0;                                                               \
                    }                                                                                \
                    i++;                                                                             \
                }                                                                                    \
                /* an apostrophe continues the word only when a word character follows it */      \
                if (i + 1 < n && READ(i) == '\'' && ALNUM(READ(i + 1))) {                           \
                    buf[len++] = '\'';                                                               \
                    in_digits = 0;                                                                   \
                    i++;                                                                             \
                    continue;                                                                        \
                }                                                                                    \
                break;                                                                               \
            }                                                                                        \
            PyObject *word = MAKE(len);                                                              \
            if (word == NULL || PyList_Append(out, word) < 0) {                                      \
                Py_XDECREF(word);                                                                    \
                return -1;                                                                           \
            }                                                                                        \
            Py_DECREF(word);                                                                         \
        }                                                                                            \
        return 0;                                                                                    \
    } while (0)

static inline int
alnum_1(Py_UCS4 c)
{
    return c < 128 ? isalnum_ascii((Py_UCS1)c) : Py_UNICODE_ISALNUM(c);
}

static inline int
decimal_1(Py_UCS4 c)
{
    return c < 128 ? (c >= '0' && c <= '9') : Py_UNICODE_ISDECIMAL(c);
}

static int
collect_words_1(const Py_UCS1 *s, Py_ssize_t n, Py_UCS1 *buf, PyObject *out)
{
#define READ_1(i) ((Py_UCS4)s[(i)])
#define MAKE_1(len) PyUnicode_FromKindAndData(PyUnicode_1BYTE_KIND, buf, (len))
    COLLECT_WORDS(READ_1, alnum_1, decimal_1, MAKE_1);
#undef READ_1
#undef MAKE_1
}

static int
collect_words_4(int kind, const void *data, Py_ssize_t n, Py_UCS4 *buf, PyObject *out)
{
#define READ_4(i) PyUnicode_READ(kind, data, (i))
#define MAKE_4(len) PyUnicode_FromKindAndData(PyUnicode_4BYTE_KIND, buf, (len))
    COLLECT_WORDS(READ_4, Py_UNICODE_ISALNUM, Py_UNICODE_ISDECIMAL, MAKE_4);
#undef READ_4
#undef MAKE_4
}

PyDoc_STRVAR(words_doc,
"words(lowered)\n"
"--\n\n"
"The words of lower-cased text with every run of decimal digits folded to \"0\": exactly\n"
"`_WORD.findall(_DIGITS.sub(\"0\", lowered))` of `features.words`, without the two regex passes.\n"
"A word is a run of characters for which str.isalnum() is true, runs joined by single ASCII\n"
"apostrophes; \\d is a decimal digit (str.isdecimal()), as in Python's re for str patterns.");

static PyObject *
words(PyObject *self, PyObject *text)
{
    if (!PyUnicode_Check(text)) {
        PyErr_SetString(PyExc_TypeError, "words: text must be str");
        return NULL;
    }
    if (PyUnicode_READY(text) < 0) /* Python 3.11: a str made by a legacy C API */
        return NULL;
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    PyObject *out = PyList_New(0);
    Py_UCS4 *buf = PyMem_Malloc((size_t)(n ? n : 1) * sizeof(Py_UCS4)); /* a word is never longer than the text */
    if (out == NULL || buf == NULL) {
        Py_XDECREF(out);
        PyMem_Free(buf);
        return PyErr_NoMemory();
    }
    /* Latin-1 text (most posts) is read and its words are built one byte a character: the
     * four-byte path costs a conversion of every word */
    if (kind == PyUnicode_1BYTE_KIND) {
        if (collect_words_1(data, n, (Py_UCS1 *)buf, out) < 0)
            goto fail;
    } else if (collect_words_4(kind, data, n, buf, out) < 0) {
        goto fail;
    }
    PyMem_Free(buf);
    return out;
fail:
    Py_DECREF(out);
    PyMem_Free(buf);
    return NULL;
}

/* The first `n` floats of rows[r] (a list), or -1 with a TypeError/ValueError. */
static int
row_floats(PyObject *rows, Py_ssize_t r, Py_ssize_t n, double *out)
{
    PyObject *row = PyList_GET_ITEM(rows, r);
    if (!PyList_Check(row) || PyList_GET_SIZE(row) < n) {
        PyErr_SetString(PyExc_ValueError, "combine: every row must be a list of at least 3 floats "
                                          "(and the whole-post row hold the category's column)");
        return -1;
    }
    for (Py_ssize_t j = 0; j < n; j++) {
        PyObject *v = PyList_GET_ITEM(row, j);
        if (!PyFloat_CheckExact(v)) {
            PyErr_SetString(PyExc_TypeError, "combine: rows must hold floats");
            return -1;
        }
        out[j] = PyFloat_AS_DOUBLE(v);
    }
    return 0;
}

/* Python's max over three floats: the first of the largest. */
static double
max3(double a, double b, double c)
{
    double m = a;
    if (b > m)
        m = b;
    if (c > m)
        m = c;
    return m;
}

PyDoc_STRVAR(combine_doc,
"combine(rows, category, coverage, weights, highlight_min, max_highlights)\n"
"--\n\n"
"The combiner's six inputs, its probabilities and the highlighted sentences of one post, step\n"
"for step as `Model._combiner_phi`, `_probabilities` and `_highlights` compute them in Python.\n"
"rows: `count_logits`' rows (each segment, then the whole post: ok, spam, off_topic, then the\n"
"categories); category: the filed category's column among the categories, or -1; coverage:\n"
"min(1, words / MISMATCH_FULL_WORDS), read only when category >= 0; weights: one (six\n"
"coefficients, bias) pair per label. Returns (phi, best segment or -1, probabilities, label\n"
"index, [(segment, spam probability), ...] of the highlights, best first).");

static PyObject *
combine(PyObject *self, PyObject *args)
{
    PyObject *rows, *weights;
    Py_ssize_t category, max_highlights;
    double coverage, highlight_min;
    double whole[3], w[3][6], b[3];

    if (!PyArg_ParseTuple(args, "O!ndOdn", &PyList_Type, &rows, &category, &coverage, &weights, &highlight_min,
                          &max_highlights))
        return NULL;
    Py_ssize_t n_rows = PyList_GET_SIZE(rows), n_segs = n_rows - 1;
    if (n_rows < 1 || max_highlights < 0) {
        PyErr_SetString(PyExc_ValueError, "combine: rows must hold the whole-post row; max_highlights >= 0");
        return NULL;
    }
    PyObject *pairs = PySequence_Tuple(weights);
    if (pairs == NULL)
        return NULL;
    int parsed = PyArg_ParseTuple(pairs, "((dddddd)d)((dddddd)d)((dddddd)d);combine: weights must be three "
                                  "(six coefficients, bias) pairs", &w[0][0], &w[0][1], &w[0][2], &w[0][3],
                                  &w[0][4], &w[0][5], &b[0], &w[1][0], &w[1][1], &w[1][2], &w[1][3], &w[1][4],
                                  &w[1][5], &b[1], &w[2][0], &w[2][1], &w[2][2], &w[2][3], &w[2][4], &w[2][5], &b[2]);
    Py_DECREF(pairs);
    if (!parsed)
        return NULL;
    if (row_floats(rows, n_segs, 3, whole) < 0)
        return NULL;
    double mismatch = 0.0;
    if (category >= 0) {
        PyObject *row = PyList_GET_ITEM(rows, n_segs);
        Py_ssize_t n_cat = PyList_GET_SIZE(row) - 3;
        if (category >= n_cat) {
            PyErr_SetString(PyExc_ValueError, "combine: category is not a column of the whole-post row");
            return NULL;
        }
        double top = 0.0, filed = 0.0;
        for (Py_ssize_t j = 0; j < n_cat; j++) {
            PyObject *v = PyList_GET_ITEM(row, 3 + j);
            if (!PyFloat_CheckExact(v)) {
                PyErr_SetString(PyExc_TypeError, "combine: rows must hold floats");
                return NULL;
            }
            double x = PyFloat_AS_DOUBLE(v);
            if (j == 0 || x > top)
                top = x;
            if (j == category)
                filed = x;
        }
        mismatch = (1.0 - exp(filed - top)) * coverage;
    }
    if (max_highlights > n_segs) /* no more highlights than sentences; keeps the size below in range */
        max_highlights = n_segs;
    double *p_spam = PyMem_New(double, n_segs ? n_segs : 1);
    Py_ssize_t *order = PyMem_New(Py_ssize_t, max_highlights ? max_highlights : 1);
    PyObject *result = NULL, *highlights = NULL;
    if (p_spam == NULL || order == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    double post_spam = whole[1] - whole[0], best_spam = post_spam, mean_spam = post_spam;
    Py_ssize_t best = -1, likeliest = -1; /* the most spam-like sentence by logits, and by probability */
    if (n_segs) {
        double total = 0.0;
        for (Py_ssize_t r = 0; r < n_segs; r++) {
            double z[3];
            if (row_floats(rows, r, 3, z) < 0)
                goto done;
            double spam = z[1] - z[0];
            if (r == 0 || spam > best_spam) { /* max(), then .index(): the first of the largest */
                best_spam = spam;
                best = r;
            }
            total += spam;
            double top = max3(z[0], z[1], z[2]);
            double e_ok = exp(z[0] - top), e_spam = exp(z[1] - top), e_off = exp(z[2] - top);
            p_spam[r] = e_spam / (e_ok + e_spam + e_off);
            if (r == 0 || p_spam[r] > p_spam[likeliest])
                likeliest = r;
        }
        mean_spam = total / (double)n_segs;
    }
    double phi[6] = {post_spam, whole[2] - whole[0], best_spam, log1p((double)n_segs), mismatch, mean_spam};
    double z[3], e[3], probs[3];
    for (int k = 0; k < 3; k++) { /* sum(map(float.__mul__, w, phi), b): left to right from b */
        double acc = b[k];
        for (int j = 0; j < 6; j++) {
            double term = w[k][j] * phi[j];
            acc += term;
        }
        z[k] = acc;
    }
    double top = max3(z[0], z[1], z[2]);
    double sum_e = 0.0;
    for (int k = 0; k < 3; k++) {
        e[k] = exp(z[k] - top);
        sum_e += e[k];
    }
    int label = 0;
    for (int k = 0; k < 3; k++) {
        probs[k] = e[k] / sum_e;
        if (probs[k] > probs[label])
            label = k;
    }
    /* sorted(range(n), key=lambda i: -p_spam[i])[:max_highlights]: largest first, ties by position */
    Py_ssize_t n_order = 0;
    for (Py_ssize_t r = 0; r < n_segs && max_highlights; r++) {
        Py_ssize_t at = n_order;
        while (at > 0 && p_spam[r] > p_spam[order[at - 1]])
            at--;
        if (at >= max_highlights)
            continue;
        if (n_order < max_highlights)
            n_order++;
        memmove(order + at + 1, order + at, (size_t)(n_order - 1 - at) * sizeof(Py_ssize_t));
        order[at] = r;
    }
    highlights = PyList_New(0);
    if (highlights == NULL)
        goto done;
    for (Py_ssize_t i = 0; i < n_order; i++) {
        if (p_spam[order[i]] >= highlight_min) {
            PyObject *pair = Py_BuildValue("(nd)", order[i], p_spam[order[i]]);
            if (pair == NULL || PyList_Append(highlights, pair) < 0) {
                Py_XDECREF(pair);
                goto done;
            }
            Py_DECREF(pair);
        }
    }
    if (PyList_GET_SIZE(highlights) == 0 && label == 1 && n_segs) { /* a spam label shows its likeliest sentence */
        PyObject *pair = Py_BuildValue("(nd)", likeliest, p_spam[likeliest]);
        if (pair == NULL || PyList_Append(highlights, pair) < 0) {
            Py_XDECREF(pair);
            goto done;
        }
        Py_DECREF(pair);
    }
    result = Py_BuildValue("([dddddd]n[ddd]iO)", phi[0], phi[1], phi[2], phi[3], phi[4], phi[5], best, probs[0],
                           probs[1], probs[2], label, highlights);

done:
    Py_XDECREF(highlights);
    PyMem_Free(p_spam);
    PyMem_Free(order);
    return result;
}

/* Walk the whitespace-separated tokens of `text` as str.split() with no arguments finds them
 * (Py_UNICODE_ISSPACE, as str.split uses). For each token, `clean` says whether it holds no "."
 * and no ":" and at least one alphanumeric character. Stops early once `stop_clean` clean tokens
 * were seen (0: never); returns the tokens seen, or -1 on error. */
static Py_ssize_t
walk_tokens(PyObject *text, Py_ssize_t stop_clean, Py_ssize_t *n_clean)
{
    if (!PyUnicode_Check(text)) {
        PyErr_SetString(PyExc_TypeError, "texts must be str");
        return -1;
    }
    if (PyUnicode_READY(text) < 0)
        return -1;
    Py_ssize_t n = PyUnicode_GET_LENGTH(text), tokens = 0, i = 0;
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    *n_clean = 0;
    while (i < n) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        if (Py_UNICODE_ISSPACE(c)) {
            i++;
            continue;
        }
        int punct = 0, alnum = 0;
        for (; i < n && !Py_UNICODE_ISSPACE(c = PyUnicode_READ(kind, data, i)); i++) {
            punct |= c == '.' || c == ':';
            alnum |= Py_UNICODE_ISALNUM(c);
        }
        tokens++;
        if (!punct && alnum && ++*n_clean == stop_clean)
            break;
    }
    return tokens;
}

PyDoc_STRVAR(count_tokens_doc,
"count_tokens(texts)\n"
"--\n\n"
"sum(len(t.split()) for t in texts), without making the tokens.");

static PyObject *
count_tokens(PyObject *self, PyObject *texts)
{
    if (!PyList_Check(texts)) {
        PyErr_SetString(PyExc_TypeError, "count_tokens: texts must be a list of str");
        return NULL;
    }
    Py_ssize_t total = 0, clean;
    for (Py_ssize_t t = 0; t < PyList_GET_SIZE(texts); t++) {
        PyObject *text = PyList_GET_ITEM(texts, t);
        Py_INCREF(text);
        Py_ssize_t n = walk_tokens(text, 0, &clean);
        Py_DECREF(text);
        if (n < 0)
            return NULL;
        total += n;
    }
    return PyLong_FromSsize_t(total);
}

PyDoc_STRVAR(has_clean_words_doc,
"has_clean_words(text, n)\n"
"--\n\n"
"True when at least n of text.split()'s tokens hold no \".\" and no \":\" and at least one\n"
"alphanumeric character (`features._is_fragment`'s fast answer: three words outside any link).");

static PyObject *
has_clean_words(PyObject *self, PyObject *args)
{
    PyObject *text;
    Py_ssize_t wanted, clean;
    if (!PyArg_ParseTuple(args, "Un", &text, &wanted))
        return NULL;
    if (wanted < 1) {
        PyErr_SetString(PyExc_ValueError, "has_clean_words: n must be at least 1");
        return NULL;
    }
    if (walk_tokens(text, wanted, &clean) < 0)
        return NULL;
    return PyBool_FromLong(clean >= wanted);
}

PyDoc_STRVAR(promo_candidates_doc,
"promo_candidates(texts, needles, groups)\n"
"--\n\n"
"(text index, group index) of every group that passes on a text, text by text, groups in order:\n"
"a group is (trigger indices, also indices) into needles (distinct, non-empty ASCII str), and\n"
"passes on a text when one of its triggers occurs in it and, if it has any, one of its also\n"
"needles does too (`features.promo_tokens_per_segment`'s gate before each pattern's regex).\n"
"One pass over each text finds every needle that occurs, instead of one `in` scan per needle.");

/* The needles, indexed by first character, and a bitmap of their first two characters. */
typedef struct {
    Py_ssize_t n;
    const char **chars;
    Py_ssize_t *lens, *next;
    Py_ssize_t head[128];
    uint8_t pairs[128 * 128 / 8]; /* (first, second) characters; every second for one-character needles */
} Needles;

/* Mark in `found` every needle that occurs in text[0:n]; TYPE is the str's code unit. */
#define FIND_NEEDLES(TYPE)                                                                              \
    do {                                                                                                \
        const TYPE *s = (const TYPE *)data;                                                             \
        for (Py_ssize_t i = 0; i < n; i++) {                                                            \
            Py_UCS4 c = s[i];                                                                           \
            if (c >= 128 || nd->head[c] < 0)                                                            \
                continue;                                                                               \
            if (i + 1 < n && s[i + 1] < 128) {                                                          \
                int bit = (int)c * 128 + (int)s[i + 1];                                                 \
                if (!(nd->pairs[bit >> 3] & (1 << (bit & 7))))                                          \
                    continue;                                                                           \
            }                                                                                           \
            for (Py_ssize_t j = nd->head[c]; j >= 0; j = nd->next[j]) {                                 \
                if (found[j] || i + nd->lens[j] > n)                                                    \
                    continue;                                                                           \
                Py_ssize_t k = 1;                                                                       \
                while (k < nd->lens[j] && s[i + k] == (TYPE)(unsigned char)nd->chars[j][k])             \
                    k++;                                                                                \
                found[j] = k == nd->lens[j];                                                            \
            }                                                                                           \
        }                                                                                               \
    } while (0)

static void
find_needles(const Needles *nd, PyObject *text, char *found)
{
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    const void *data = PyUnicode_DATA(text);
    memset(found, 0, (size_t)(nd->n ? nd->n : 1));
    switch (PyUnicode_KIND(text)) {
    case PyUnicode_1BYTE_KIND:
        FIND_NEEDLES(Py_UCS1);
        break;
    case PyUnicode_2BYTE_KIND:
        FIND_NEEDLES(Py_UCS2);
        break;
    default:
        FIND_NEEDLES(Py_UCS4);
    }
}

/* Whether any needle listed in the tuple `indices` was found; -1 with an exception set on a bad index. */
static int
any_found(PyObject *indices, const char *found, Py_ssize_t n_needles)
{
    int any = 0;
    for (Py_ssize_t t = 0; t < PyTuple_GET_SIZE(indices); t++) {
        Py_ssize_t j = PyLong_AsSsize_t(PyTuple_GET_ITEM(indices, t));
        if (j == -1 && PyErr_Occurred())
            return -1;
        if (j < 0 || j >= n_needles) {
            PyErr_SetString(PyExc_ValueError, "promo_candidates: a group names a needle that is not there");
            return -1;
        }
        any |= found[j];
    }
    return any;
}

static PyObject *
promo_candidates(PyObject *self, PyObject *args)
{
    PyObject *texts, *needles, *groups, *result = NULL;
    if (!PyArg_ParseTuple(args, "O!O!O!", &PyList_Type, &texts, &PyTuple_Type, &needles, &PyTuple_Type, &groups))
        return NULL;
    Needles nd = {.n = PyTuple_GET_SIZE(needles)};
    size_t slots = (size_t)(nd.n ? nd.n : 1);
    nd.chars = PyMem_Calloc(slots, sizeof(char *));
    nd.lens = PyMem_Calloc(slots, sizeof(Py_ssize_t));
    nd.next = PyMem_Calloc(slots, sizeof(Py_ssize_t));
    char *found = PyMem_Calloc(slots, 1);
    if (nd.chars == NULL || nd.lens == NULL || nd.next == NULL || found == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (int c = 0; c < 128; c++)
        nd.head[c] = -1;
    for (Py_ssize_t j = nd.n - 1; j >= 0; j--) {
        PyObject *needle = PyTuple_GET_ITEM(needles, j);
        if (!PyUnicode_Check(needle)) {
            PyErr_SetString(PyExc_TypeError, "promo_candidates: needles must be str");
            goto done;
        }
        if (PyUnicode_READY(needle) < 0)
            goto done;
        if (!PyUnicode_IS_ASCII(needle) || PyUnicode_GET_LENGTH(needle) == 0) {
            PyErr_SetString(PyExc_ValueError, "promo_candidates: needles must be non-empty ASCII str");
            goto done;
        }
        nd.chars[j] = (const char *)PyUnicode_DATA(needle); /* needles are held by the tuple */
        nd.lens[j] = PyUnicode_GET_LENGTH(needle);
        unsigned char first = (unsigned char)nd.chars[j][0];
        nd.next[j] = nd.head[first];
        nd.head[first] = j;
        if (nd.lens[j] == 1) {
            memset(nd.pairs + first * 16, 0xff, 16); /* the 128 bits of (first, any second) */
        } else {
            int bit = first * 128 + (unsigned char)nd.chars[j][1];
            nd.pairs[bit >> 3] |= (uint8_t)(1 << (bit & 7));
        }
    }
    for (Py_ssize_t g = 0; g < PyTuple_GET_SIZE(groups); g++) {
        PyObject *group = PyTuple_GET_ITEM(groups, g);
        if (!PyTuple_Check(group) || PyTuple_GET_SIZE(group) != 2 || !PyTuple_Check(PyTuple_GET_ITEM(group, 0))
            || !PyTuple_Check(PyTuple_GET_ITEM(group, 1))) {
            PyErr_SetString(PyExc_TypeError, "promo_candidates: each group must be a (triggers, also) pair of tuples");
            goto done;
        }
        /* every index is checked here, once, whatever the texts hold (`found` is still all zero) */
        if (any_found(PyTuple_GET_ITEM(group, 0), found, nd.n) < 0 || any_found(PyTuple_GET_ITEM(group, 1), found, nd.n) < 0)
            goto done;
    }
    result = PyList_New(0);
    if (result == NULL)
        goto done;
    /* the list may change while this runs only through our own calls, none of which run Python code */
    for (Py_ssize_t t = 0; t < PyList_GET_SIZE(texts); t++) {
        PyObject *text = PyList_GET_ITEM(texts, t);
        if (!PyUnicode_Check(text)) {
            PyErr_SetString(PyExc_TypeError, "promo_candidates: texts must be str");
            goto fail;
        }
        if (PyUnicode_READY(text) < 0)
            goto fail;
        find_needles(&nd, text, found);
        for (Py_ssize_t g = 0; g < PyTuple_GET_SIZE(groups); g++) {
            PyObject *group = PyTuple_GET_ITEM(groups, g);
            int pass = any_found(PyTuple_GET_ITEM(group, 0), found, nd.n);
            if (pass > 0 && PyTuple_GET_SIZE(PyTuple_GET_ITEM(group, 1)))
                pass = any_found(PyTuple_GET_ITEM(group, 1), found, nd.n);
            if (pass < 0)
                goto fail;
            if (pass) {
                PyObject *pair = Py_BuildValue("(nn)", t, g);
                if (pair == NULL || PyList_Append(result, pair) < 0) {
                    Py_XDECREF(pair);
                    goto fail;
                }
                Py_DECREF(pair);
            }
        }
    }
    goto done;
fail:
    Py_CLEAR(result);
done:
    PyMem_Free(nd.chars);
    PyMem_Free(nd.lens);
    PyMem_Free(nd.next);
    PyMem_Free(found);
    return result;
}

PyDoc_STRVAR(plain_normalise_doc,
"plain_normalise(text)\n"
"--\n\n"
"`text.normalise(text)` when text is plain, else None. Plain is ASCII text that none of\n"
"normalise's steps before squeeze_space can change: no markup ('<', '&'), no control character\n"
"but tab and newline, and nothing deobfuscate rewrites or looks at more closely ('@', 'hxxp',\n"
"'w w', 'www ', 'dot', a '.' after a space or bracket or before a closing bracket, 'at' before\n"
"a closing bracket). Then only squeeze_space is left, and it runs here.");

static inline int
is_letter_ci(Py_UCS1 c, char lower)
{
    return (c | 0x20) == lower; /* exact for letters: only the two cases map to one lower-case letter */
}

static inline int
is_closer(Py_UCS1 c)
{
    return c == ')' || c == ']' || c == '}' || c == '>';
}

/* Whether ASCII text s[0:n] holds nothing that normalise's steps before squeeze_space act on. */
static int
is_plain(const Py_UCS1 *s, Py_ssize_t n)
{
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_UCS1 c = s[i];
        if (c < 0x20 || c == 0x7f) {
            if (c != '\n' && c != '\t')
                return 0; /* remove_invisible's characters, '\r' included */
            continue;
        }
        switch (c) {
        case '<':
        case '&': /* strip_html */
        case '@': /* deobfuscate's spaced and bracketed '@' (and e-mail addresses) */
            return 0;
        case '.': /* deobfuscate's _DOT_CHAR_HIT */
            if (i > 0) {
                Py_UCS1 p = s[i - 1];
                if (p == ' ' || p == '\t' || p == '[' || p == '(' || p == '{' || p == '<')
                    return 0;
            }
            if (i + 1 < n && (is_closer(s[i + 1])
                              || ((s[i + 1] == ' ' || s[i + 1] == '\t') && i + 2 < n && is_closer(s[i + 2]))))
                return 0;
            break;
        case ')':
        case ']':
        case '}':
        case '>': /* _has_bracketed_at: "at" or "at " before a closing bracket */
            if (i >= 2 && is_letter_ci(s[i - 2], 'a') && is_letter_ci(s[i - 1], 't'))
                return 0;
            if (i >= 3 && is_letter_ci(s[i - 3], 'a') && is_letter_ci(s[i - 2], 't') && s[i - 1] == ' ')
                return 0;
            break;
        case 'h':
        case 'H': /* "hxxp" */
            if (i + 3 < n && is_letter_ci(s[i + 1], 'x') && is_letter_ci(s[i + 2], 'x') && is_letter_ci(s[i + 3], 'p'))
                return 0;
            break;
        case 'w':
        case 'W': /* "w w", "www " */
            if (i + 2 < n && s[i + 1] == ' ' && is_letter_ci(s[i + 2], 'w'))
                return 0;
            if (i + 3 < n && is_letter_ci(s[i + 1], 'w') && is_letter_ci(s[i + 2], 'w') && s[i + 3] == ' ')
                return 0;
            break;
        case 'd':
        case 'D': /* "dot" */
            if (i + 2 < n && is_letter_ci(s[i + 1], 'o') && is_letter_ci(s[i + 2], 't'))
                return 0;
            break;
        }
    }
    return 1;
}

static PyObject *
plain_normalise(PyObject *self, PyObject *text)
{
    if (!PyUnicode_Check(text)) {
        PyErr_SetString(PyExc_TypeError, "plain_normalise: text must be str");
        return NULL;
    }
    if (PyUnicode_READY(text) < 0)
        return NULL;
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    const Py_UCS1 *s = PyUnicode_1BYTE_DATA(text);
    if (!PyUnicode_IS_ASCII(text) || !is_plain(s, n))
        Py_RETURN_NONE;
    /* squeeze_space, pass by pass as text.squeeze_space does them */
    char *buf = PyMem_Malloc((size_t)(n ? n : 1));
    if (buf == NULL)
        return PyErr_NoMemory();
    Py_ssize_t m = 0;
    int newlines = 0;
    for (Py_ssize_t i = 0; i < n; i++) { /* tabs become spaces, a run of spaces one space */
        char c = s[i] == '\t' ? ' ' : (char)s[i];
        if (c == ' ' && m && buf[m - 1] == ' ')
            continue;
        newlines |= c == '\n';
        buf[m++] = c;
    }
    if (newlines) {
        Py_ssize_t k = 0;
        for (Py_ssize_t i = 0; i < m; i++) /* " \n" -> "\n" */
            if (!(buf[i] == ' ' && i + 1 < m && buf[i + 1] == '\n'))
                buf[k++] = buf[i];
        m = k;
        k = 0;
        char prev = 0;
        for (Py_ssize_t i = 0; i < m; i++) { /* "\n " -> "\n" */
            char c = buf[i];
            if (!(c == ' ' && prev == '\n'))
                buf[k++] = c;
            prev = c;
        }
        m = k;
        k = 0;
        for (Py_ssize_t i = 0; i < m; i++) /* three or more newlines -> two */
            if (!(buf[i] == '\n' && k >= 2 && buf[k - 1] == '\n' && buf[k - 2] == '\n'))
                buf[k++] = buf[i];
        m = k;
    }
    Py_ssize_t start = 0; /* strip: only spaces and newlines are left of str.strip()'s characters */
    while (start < m && (buf[start] == ' ' || buf[start] == '\n'))
        start++;
    while (m > start && (buf[m - 1] == ' ' || buf[m - 1] == '\n'))
        m--;
    PyObject *result;
    if (start == 0 && m == n && memcmp(buf, s, (size_t)n) == 0) { /* unchanged: the same str */
        Py_INCREF(text);
        result = text;
    } else {
        result = PyUnicode_New(m - start, 127);
        if (result != NULL)
            memcpy(PyUnicode_1BYTE_DATA(result), buf + start, (size_t)(m - start));
    }
    PyMem_Free(buf);
    return result;
}

PyDoc_STRVAR(may_hold_links_doc,
"may_hold_links(text, tlds)\n"
"--\n\n"
"False when text certainly holds no e-mail address, URL, bare domain or phone number as\n"
"`text.find_emails`, `find_urls` and `find_phones` find them; True when it might (and for any\n"
"text that is not ASCII). ASCII text might when it holds '@', '://', two w's in a row, a '.'\n"
"followed by 2-12 letters that end a word and are, lower-cased, in tlds (a set of str), or seven\n"
"or more characters in runs that start with a digit and go on with digits, 'O' and 'o' (every\n"
"phone number's digits lie in such runs).");

/* may_hold_links on ASCII text s[0:n]: 1 or 0, -1 with an exception set. */
static int
ascii_may_hold_links(const Py_UCS1 *s, Py_ssize_t n, PyObject *tlds)
{
    Py_ssize_t digits = 0;
    int in_run = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_UCS1 c = s[i];
        if (c >= '0' && c <= '9') {
            in_run = 1;
        } else if (!(in_run && (c == 'O' || c == 'o'))) {
            in_run = 0;
        }
        if (in_run && ++digits >= 7)
            return 1;
        if (c == '@' || (c == ':' && i + 2 < n && s[i + 1] == '/' && s[i + 2] == '/')
            || ((c | 0x20) == 'w' && i + 1 < n && (s[i + 1] | 0x20) == 'w'))
            return 1;
        if (c == '.') { /* text._TLD_HIT: \.([A-Za-z]{2,12})(?![\w@-]|\.[A-Za-z0-9]) */
            Py_ssize_t j = i + 1;
            while (j < n && j - i <= 13 && isalpha_ascii(s[j]))
                j++;
            Py_ssize_t letters = j - i - 1;
            if (letters < 2 || letters > 12)
                continue;
            if (j < n && (isalnum_ascii(s[j]) || s[j] == '_' || s[j] == '@' || s[j] == '-'))
                continue;
            if (j + 1 < n && s[j] == '.' && isalnum_ascii(s[j + 1]))
                continue;
            char lowered[12];
            for (Py_ssize_t k = 0; k < letters; k++)
                lowered[k] = (char)(s[i + 1 + k] | 0x20);
            PyObject *tld = PyUnicode_FromStringAndSize(lowered, letters);
            if (tld == NULL)
                return -1;
            int known = PySet_Contains(tlds, tld);
            Py_DECREF(tld);
            if (known != 0)
                return known; /* 1, or -1 on error */
        }
    }
    return 0;
}

static PyObject *
may_hold_links(PyObject *self, PyObject *args)
{
    PyObject *text, *tlds;
    if (!PyArg_ParseTuple(args, "UO!", &text, &PyFrozenSet_Type, &tlds))
        return NULL;
    if (PyUnicode_READY(text) < 0)
        return NULL;
    if (!PyUnicode_IS_ASCII(text))
        Py_RETURN_TRUE;
    int may = ascii_may_hold_links(PyUnicode_1BYTE_DATA(text), PyUnicode_GET_LENGTH(text), tlds);
    if (may < 0)
        return NULL;
    return PyBool_FromLong(may);
}

PyDoc_STRVAR(plain_words_doc,
"plain_words(texts, tlds)\n"
"--\n\n"
"For each text: `features.words(text)` when it is ASCII and `may_hold_links(text, tlds)` is\n"
"False (most sentences: nothing for the link and contact finders), else None. One call for a\n"
"post's sentences instead of three Python steps for each.");

static int
collect_words_ascii_lower(const Py_UCS1 *s, Py_ssize_t n, Py_UCS1 *buf, PyObject *out)
{
#define READ_L(i) ((Py_UCS4)(s[(i)] >= 'A' && s[(i)] <= 'Z' ? s[(i)] | 0x20 : s[(i)]))
#define ALNUM_A(c) isalnum_ascii((Py_UCS1)(c))
#define DECIMAL_A(c) ((c) >= '0' && (c) <= '9')
#define MAKE_A(len) PyUnicode_FromKindAndData(PyUnicode_1BYTE_KIND, buf, (len))
    COLLECT_WORDS(READ_L, ALNUM_A, DECIMAL_A, MAKE_A);
#undef READ_L
#undef ALNUM_A
#undef DECIMAL_A
#undef MAKE_A
}

static PyObject *
plain_words(PyObject *self, PyObject *args)
{
    PyObject *texts, *tlds;
    if (!PyArg_ParseTuple(args, "O!O!", &PyList_Type, &texts, &PyFrozenSet_Type, &tlds))
        return NULL;
    /* A copy of the list holds its own reference to each text: looking a name up in `tlds` can
     * run Python code (the __eq__ of a str subclass in the set), which may change `texts`. */
    Py_ssize_t count = PyList_GET_SIZE(texts);
    PyObject *snapshot = PyList_GetSlice(texts, 0, count);
    if (snapshot == NULL)
        return NULL;
    PyObject *out = PyList_New(count);
    if (out == NULL) {
        Py_DECREF(snapshot);
        return NULL;
    }
    Py_UCS1 *buf = NULL;
    Py_ssize_t buf_cap = 0;
    for (Py_ssize_t t = 0; t < count; t++) {
        PyObject *text = PyList_GET_ITEM(snapshot, t), *item = NULL;
        if (!PyUnicode_Check(text)) {
            PyErr_SetString(PyExc_TypeError, "plain_words: texts must be str");
            goto fail;
        }
        if (PyUnicode_READY(text) < 0)
            goto fail;
        if (PyUnicode_IS_ASCII(text)) {
            const Py_UCS1 *s = PyUnicode_1BYTE_DATA(text);
            Py_ssize_t n = PyUnicode_GET_LENGTH(text);
            int may = ascii_may_hold_links(s, n, tlds);
            if (may < 0)
                goto fail;
            if (!may) {
                if (n > buf_cap) {
                    PyMem_Free(buf);
                    buf_cap = n * 2;
                    buf = PyMem_Malloc((size_t)buf_cap);
                    if (buf == NULL) {
                        PyErr_NoMemory();
                        goto fail;
                    }
                }
                item = PyList_New(0);
                if (item == NULL || collect_words_ascii_lower(s, n, buf, item) < 0) {
                    Py_XDECREF(item);
                    goto fail;
                }
            }
        }
        if (item == NULL) {
            Py_INCREF(Py_None);
            item = Py_None;
        }
        PyList_SET_ITEM(out, t, item);
    }
    PyMem_Free(buf);
    Py_DECREF(snapshot);
    return out;
fail:
    PyMem_Free(buf);
    Py_DECREF(snapshot);
    Py_DECREF(out);
    return NULL;
}

PyDoc_STRVAR(has_run_doc,
"has_run(text, n)\n"
"--\n\n"
"True when one character occurs n or more times in a row in text, or n or more sentence marks\n"
"(.!?\u2026\u3002\uff01\uff1f) in any mix do (n >= 1): the gate before `features.segments`' regex\n"
"for runs of punctuation, which scans every post.");

static inline int
is_sentence_mark(Py_UCS4 c)
{
    return c == '.' || c == '!' || c == '?' || c == 0x2026 || c == 0x3002 || c == 0xff01 || c == 0xff1f;
}

#define HAS_RUN(TYPE)                                                                                    \
    do {                                                                                                 \
        const TYPE *s = (const TYPE *)data;                                                              \
        Py_ssize_t run = 1, marks = is_sentence_mark(s[0]);                                              \
        for (Py_ssize_t i = 1; i < len; i++) {                                                           \
            run = s[i] == s[i - 1] ? run + 1 : 1;                                                        \
            marks = is_sentence_mark(s[i]) ? marks + 1 : 0;                                              \
            if (run >= n || marks >= n)                                                                  \
                Py_RETURN_TRUE;                                                                          \
        }                                                                                                \
    } while (0)

static PyObject *
has_run(PyObject *self, PyObject *args)
{
    PyObject *text;
    Py_ssize_t n;
    if (!PyArg_ParseTuple(args, "Un", &text, &n))
        return NULL;
    if (n < 1) {
        PyErr_SetString(PyExc_ValueError, "has_run: n must be at least 1");
        return NULL;
    }
    if (PyUnicode_READY(text) < 0)
        return NULL;
    Py_ssize_t len = PyUnicode_GET_LENGTH(text);
    if (len == 0)
        Py_RETURN_FALSE;
    if (n == 1)
        Py_RETURN_TRUE;
    const void *data = PyUnicode_DATA(text);
    switch (PyUnicode_KIND(text)) {
    case PyUnicode_1BYTE_KIND:
        HAS_RUN(Py_UCS1);
        break;
    case PyUnicode_2BYTE_KIND:
        HAS_RUN(Py_UCS2);
        break;
    default:
        HAS_RUN(Py_UCS4);
    }
    Py_RETURN_FALSE;
}

PyDoc_STRVAR(plain_sentence_spans_doc,
"plain_sentence_spans(text, code_spans, words, code_line, glue_safe, max_span)\n"
"--\n\n"
"`text.sentence_spans(text)` for text without markup, else None. That is text with no '<',\n"
"'&', '```' or '~~~' (tags, entities and fences go the Python way) in which no sentence,\n"
"trimmed, is longer than max_span (those are cut up on the Python path). `code_spans` are the\n"
"(start, end) of its inline code spans, in order: no sentence ends inside one. `words` is\n"
"(abbreviations, abbreviations before a number, run-on words): frozensets of lower-case ASCII\n"
"words; `code_line(text, pos)` is true where a line of code starts at pos (the regex's own\n"
"match); `glue_safe` the words after a glued '.' that make it a file or domain name. Each\n"
"boundary is found as text._BOUNDARY finds it, with the regex's character classes (\\s, \\w,\n"
"\\d and letters as Unicode defines them), in one pass.");

/* The text being split, read character by character, and the call's word sets and callback. */
typedef struct {
    PyObject *text;
    int kind;
    const void *data;
    Py_ssize_t n;
    PyObject *always, *before_num, *runon, *code_line, *glue_safe;
    /* the last glued word's position, its token [start, end) and whether that is a name (see
     * glued_is_boundary) */
    Py_ssize_t token_from, token_start, token_end;
    int token_is_name;
} Splitter;

static inline Py_UCS4
ss_at(const Splitter *sp, Py_ssize_t i)
{
    return PyUnicode_READ(sp->kind, sp->data, i);
}

/* The regex's \s (and str.isspace()) */
static inline int
ss_space(Py_UCS4 c)
{
    if (c < 128)
        return c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f);
    return Py_UNICODE_ISSPACE(c);
}

/* The regex's \w */
static inline int
ss_word(Py_UCS4 c)
{
    if (c < 128)
        return isalnum_ascii((Py_UCS1)c) || c == '_';
    return Py_UNICODE_ISALNUM(c);
}

/* The regex's \d */
static inline int
ss_digit(Py_UCS4 c)
{
    if (c < 128)
        return c >= '0' && c <= '9';
    return Py_UNICODE_ISDECIMAL(c);
}

/* The regex's [^\W\d_]: a word character that is neither a digit nor '_' ("letter" below) */
static inline int
ss_letter(Py_UCS4 c)
{
    if (c < 128)
        return isalpha_ascii((Py_UCS1)c);
    return Py_UNICODE_ISALNUM(c) && !Py_UNICODE_ISDECIMAL(c);
}

static inline int
ss_blank(Py_UCS4 c)
{
    return c == ' ' || c == '\t';
}

static inline int
ss_lower_ascii(Py_UCS4 c)
{
    return c >= 'a' && c <= 'z';
}

static inline int
ss_upper_ascii(Py_UCS4 c)
{
    return c >= 'A' && c <= 'Z';
}

/* What may close a sentence after its punctuation: )]'"*_ and the closing quotes ’ ” » */
static inline int
ss_closer(Py_UCS4 c)
{
    return c == ')' || c == ']' || c == '\'' || c == '"' || c == '*' || c == '_' || c == 0x2019 || c == 0x201d
           || c == 0xbb;
}

/* Sentence punctuation: ! ? … 。 ！ ？ (a '.' is looked at on its own) */
static inline int
ss_end_mark(Py_UCS4 c)
{
    return c == '!' || c == '?' || c == 0x2026 || c == 0x3002 || c == 0xff01 || c == 0xff1f;
}

/* Length of the run of characters with `pred` that ends just before `end`, counting at most `cap`. */
static inline Py_ssize_t
run_before(const Splitter *sp, Py_ssize_t end, int (*pred)(Py_UCS4), Py_ssize_t cap)
{
    Py_ssize_t k = 0;
    while (k < cap && end - k > 0 && pred(ss_at(sp, end - k - 1)))
        k++;
    return k;
}

/* What an ignore-case ASCII letter in the regex matches, as that lower-case letter: the ASCII
 * letters, and four others (İ and ı match 'i', ſ matches 's', the Kelvin sign 'k'); 0 for the rest. */
static inline Py_UCS1
ignore_case_letter(Py_UCS4 c)
{
    if (c < 128)
        return (Py_UCS1)(c >= 'A' && c <= 'Z' ? c | 0x20 : c);
    switch (c) {
    case 0x130:
    case 0x131:
        return 'i';
    case 0x17f:
        return 's';
    case 0x212a:
        return 'k';
    }
    return 0;
}

/* Whether text[start:start+len] matches a word of `words` as (?i:...) does: 1, 0, -1 on error. */
static int
ignore_case_in(const Splitter *sp, Py_ssize_t start, Py_ssize_t len, PyObject *words)
{
    if (len <= 0)
        return 0;
    PyObject *word = PyUnicode_New(len, 127);
    if (word == NULL)
        return -1;
    Py_UCS1 *w = PyUnicode_1BYTE_DATA(word);
    for (Py_ssize_t i = 0; i < len; i++) {
        w[i] = ignore_case_letter(ss_at(sp, start + i));
        if (w[i] == 0) { /* matches no ASCII word */
            Py_DECREF(word);
            return 0;
        }
    }
    int found = PySet_Contains(words, word);
    Py_DECREF(word);
    return found;
}

/* Whether the full stop at p does not end a sentence: the look-behinds of _BOUNDARY's `punct`
 * branch on the word before it (1 not a boundary, 0 a boundary, -1 error). */
static int
stop_is_not_boundary(const Splitter *sp, Py_ssize_t p)
{
    Py_ssize_t letters = run_before(sp, p, ss_letter, 8);
    Py_ssize_t word = run_before(sp, p, ss_word, 8); /* \b before an abbreviation: the \w run is it */
    if (letters >= 5)
        return word == 6 ? ignore_case_in(sp, p - 6, 6, sp->always) : 0;
    if (letters >= 2) {
        if (word != letters)
            return 0; /* a digit or '_' before the letters: no \b, so no abbreviation */
        int always = ignore_case_in(sp, p - letters, letters, sp->always);
        if (always != 0)
            return always;
        int num = ignore_case_in(sp, p - letters, letters, sp->before_num);
        if (num <= 0)
            return num;
        Py_ssize_t i = p + 1; /* only before whitespace and a number */
        if (i >= sp->n || !ss_space(ss_at(sp, i)))
            return 0;
        while (i < sp->n && ss_space(ss_at(sp, i)))
            i++;
        return i < sp->n && ss_digit(ss_at(sp, i));
    }
    if (letters == 1) /* "H2O." ends a sentence, "e." and "U.S." do not */
        return !(p >= 2 && ss_digit(ss_at(sp, p - 2)));
    /* no letter before: not a list number ("1." to "999.") at the start of a line */
    Py_ssize_t digits = run_before(sp, p, ss_digit, 4);
    if (digits >= 1 && digits <= 3) {
        Py_ssize_t k = p - digits;
        return k == 0 || ss_at(sp, k - 1) == '\n';
    }
    return 0; /* four digits or more: "^\d{1,3}\." cannot match */
}

/* Whether the line that starts at q is a list item, quote, heading, table row, indented or a
 * line of code (_BOUNDARY's `nlb` look-ahead): 1, 0, -1 with an exception set. */
static int
line_is_block(const Splitter *sp, Py_ssize_t q)
{
    Py_ssize_t n = sp->n, i = q;
    while (i < n && ss_blank(ss_at(sp, i)))
        i++;
    if (i < n) {
        Py_UCS4 c = ss_at(sp, i);
        if ((c == '-' || c == '*' || c == '+' || c == 0x2022 || c == 0x2023 || c == 0x25aa || c == 0x25e6)
            && i + 1 < n && ss_blank(ss_at(sp, i + 1)))
            return 1;
        if (c == '>' || c == '|')
            return 1;
        Py_ssize_t k = 0;
        while (i + k < n && k < 4 && ss_digit(ss_at(sp, i + k)))
            k++;
        if (k >= 1 && k <= 3 && i + k + 1 < n && (ss_at(sp, i + k) == '.' || ss_at(sp, i + k) == ')')
            && ss_blank(ss_at(sp, i + k + 1)))
            return 1;
        k = 0;
        while (i + k < n && k < 7 && ss_at(sp, i + k) == '#')
            k++;
        if (k >= 1 && k <= 6 && i + k < n && ss_blank(ss_at(sp, i + k)))
            return 1;
    }
    if (i - q >= 4 || (q < n && ss_at(sp, q) == '\t'))
        return 1; /* indented by four spaces or tabs, or a tab */
    PyObject *pos = PyLong_FromSsize_t(q);
    if (pos == NULL)
        return -1;
    PyObject *m = PyObject_CallFunctionObjArgs(sp->code_line, sp->text, pos, NULL);
    Py_DECREF(pos);
    if (m == NULL)
        return -1;
    int code = PyObject_IsTrue(m);
    Py_DECREF(m);
    return code;
}

/* Whether a line that starts with a capital after the '\n' at p begins a new sentence
 * (_BOUNDARY's `nlu`): not after ",;(-–—/&+" or a word that runs on ("of", "the", ...).
 * 1, 0, -1 on error. */
static int
capital_line_starts_sentence(const Splitter *sp, Py_ssize_t p, Py_ssize_t q)
{
    Py_ssize_t i = q;
    while (i < sp->n && ss_blank(ss_at(sp, i)))
        i++;
    if (i >= sp->n || !ss_upper_ascii(ss_at(sp, i)))
        return 0;
    if (p > 0) {
        Py_UCS4 c = ss_at(sp, p - 1);
        if (c == ',' || c == ';' || c == '(' || c == '-' || c == 0x2013 || c == 0x2014 || c == '/' || c == '&'
            || c == '+')
            return 0;
    }
    Py_ssize_t word = run_before(sp, p, ss_word, 9);
    if (word >= 1 && word <= 8) {
        int runon = ignore_case_in(sp, p - word, word, sp->runon);
        if (runon != 0)
            return runon < 0 ? -1 : 0;
    }
    return 1;
}

/* _glued_is_boundary: a glued "word.Word" at p is copy-paste damage, not a domain, file name or
 * path. 1, 0, -1 on error. */
static int
glued_is_boundary(Splitter *sp, Py_ssize_t p)
{
    Py_ssize_t n = sp->n;
    if (ss_at(sp, p) == '.') {
        Py_ssize_t k = p + 1;
        while (k < n && ss_at(sp, k) < 128 && isalnum_ascii((Py_UCS1)ss_at(sp, k)))
            k++;
        int safe = ignore_case_in(sp, p + 1, k - p - 1, sp->glue_safe); /* ASCII letters: lower() */
        if (safe != 0)
            return safe < 0 ? -1 : 0;
    }
    /* Glued words come in text order, and a long run of them is read once, not once a word:
     * from the last one to its token's end there is no whitespace, so a glued word in between
     * has the same token; and when no ' ', '\n' or '\t' lies between that token's end and p,
     * p's token starts where the last one did and holds it. */
    if (p >= sp->token_from && p < sp->token_end)
        return !sp->token_is_name;
    Py_ssize_t left = p;
    while (left > sp->token_end) {
        Py_UCS4 c = ss_at(sp, left - 1);
        if (c == ' ' || c == '\n' || c == '\t')
            break;
        left--;
    }
    Py_ssize_t right = p;
    while (right < n && !ss_space(ss_at(sp, right)))
        right++;
    int name = 0;
    Py_ssize_t from = left;
    if (left == sp->token_end && sp->token_end > 0) { /* the same token, grown ("www." may straddle) */
        left = sp->token_start;
        name = sp->token_is_name;
        from = sp->token_end - 3 > left ? sp->token_end - 3 : left;
    }
    for (Py_ssize_t i = from; i < right && !name; i++) {
        Py_UCS4 c = ss_at(sp, i);
        /* "www." in token.lower(): no other character lower-cases to 'w' or '.' */
        name = c == '/' || c == '@' || c == '='
               || (i + 4 <= right && (c | 0x20) == 'w' && (ss_at(sp, i + 1) | 0x20) == 'w'
                   && (ss_at(sp, i + 2) | 0x20) == 'w' && ss_at(sp, i + 3) == '.');
    }
    sp->token_from = p;
    sp->token_start = left;
    sp->token_end = right;
    sp->token_is_name = name;
    return !name;
}

/* The match of _BOUNDARY that starts at p (one of "\n:.!?…。！？"): 1 with the end of the piece
 * before it in *end and the end of the match in *next, 0 for no match, -1 on error. A glued
 * boundary that _glued_is_boundary rejects is a match with *end = -1. */
static int
boundary_at(Splitter *sp, Py_ssize_t p, Py_ssize_t *end, Py_ssize_t *next)
{
    Py_ssize_t n = sp->n, q = p + 1, i;
    Py_UCS4 c = ss_at(sp, p);
    if (c == '\n') {
        i = q; /* a blank line */
        while (i < n && (ss_blank(ss_at(sp, i)) || ss_at(sp, i) == '\r' || ss_at(sp, i) == '\f'
                         || ss_at(sp, i) == '\v'))
            i++;
        if (i < n && ss_at(sp, i) == '\n') {
            i++;
            while (i < n && ss_space(ss_at(sp, i)))
                i++;
            *end = p;
            *next = i;
            return 1;
        }
        int starts = capital_line_starts_sentence(sp, p, q);
        if (starts == 0)
            starts = line_is_block(sp, q);
        if (starts <= 0)
            return starts;
        i = q;
        while (i < n && ss_blank(ss_at(sp, i)))
            i++;
        *end = p;
        *next = i;
        return 1;
    }
    if (c == ':') { /* a colon at the end of a line */
        i = q;
        while (i < n && ss_blank(ss_at(sp, i)))
            i++;
        if (i < n && ss_at(sp, i) == '\r')
            i++;
        if (i >= n || ss_at(sp, i) != '\n')
            return 0;
        i++;
        while (i < n && ss_space(ss_at(sp, i)))
            i++;
        *end = q;
        *next = i;
        return 1;
    }
    /* sentence punctuation needs whitespace, more punctuation or a closer next */
    Py_UCS4 after = q < n ? ss_at(sp, q) : 0;
    if (q < n && (ss_space(after) || after == '.' || after == '!' || after == '?' || after == 0x2026
                  || ss_closer(after))) {
        int punct = 0;
        i = q;
        if (c == '.' && after == '.') { /* an ellipsis */
            while (i < n && ss_at(sp, i) == '.')
                i++;
            while (i < n && (ss_at(sp, i) == '!' || ss_at(sp, i) == '?' || ss_at(sp, i) == 0x2026))
                i++;
            punct = 1;
        }
        else if (c == '.') {
            int not_boundary = stop_is_not_boundary(sp, p);
            if (not_boundary < 0)
                return -1;
            if (!not_boundary) {
                while (i < n && (ss_at(sp, i) == '!' || ss_at(sp, i) == '?'))
                    i++;
                punct = 1;
            }
        }
        else {
            while (i < n && (ss_at(sp, i) == '.' || ss_at(sp, i) == '!' || ss_at(sp, i) == '?'
                             || ss_at(sp, i) == 0x2026))
                i++;
            punct = 1;
        }
        if (punct) {
            while (i < n && ss_closer(ss_at(sp, i)))
                i++;
            if (i < n && ss_space(ss_at(sp, i))) {
                *end = i;
                while (i < n && ss_space(ss_at(sp, i)))
                    i++;
                *next = i;
                return 1;
            }
        }
    }
    /* glued: "word.Word", "word!Word" (ASCII punctuation and letters only) */
    if (!(c == '.' || c == '!' || c == '?') || p < 1 || !ss_lower_ascii(ss_at(sp, p - 1)))
        return 0;
    i = q;
    if (c == '.') {
        if (p < 2 || !ss_lower_ascii(ss_at(sp, p - 2)))
            return 0;
    }
    else {
        while (i < n && (ss_at(sp, i) == '!' || ss_at(sp, i) == '?'))
            i++;
    }
    if (!(i + 1 < n && ss_upper_ascii(ss_at(sp, i)) && ss_lower_ascii(ss_at(sp, i + 1))))
        return 0;
    int glued = glued_is_boundary(sp, p);
    if (glued < 0)
        return -1;
    *end = glued ? i : -1;
    *next = i;
    return 1;
}

/* Where to look next after no boundary starts at p. Inside a run of ".!?…" and closers no
 * boundary starts either unless whitespace follows the run: sentence punctuation must be followed
 * by whitespace at the end of what it takes, which lies inside the run or at its end, and a glued
 * word needs a lower-case letter before it. Skipping such a run keeps "?!?!..." linear. */
static Py_ssize_t
after_failed_punctuation(const Splitter *sp, Py_ssize_t p)
{
    Py_ssize_t e = p;
    while (e < sp->n) {
        Py_UCS4 c = ss_at(sp, e);
        if (!(c == '.' || c == '!' || c == '?' || c == 0x2026 || ss_closer(c)))
            break;
        e++;
    }
    if (e > p + 1 && (e == sp->n || !ss_space(ss_at(sp, e))))
        return e;
    return p + 1;
}

/* _emit for text without markup: append text[a:b] without surrounding whitespace, if anything is
 * left. 0 appended or nothing to append, 1 too long (the caller gives up), -1 on error. */
static int
emit_trimmed(PyObject *spans, const Splitter *sp, Py_ssize_t a, Py_ssize_t b, Py_ssize_t max_span)
{
    while (a < b && ss_space(ss_at(sp, a)))
        a++;
    while (b > a && ss_space(ss_at(sp, b - 1)))
        b--;
    if (a == b)
        return 0;
    if (b - a > max_span)
        return 1;
    PyObject *span = Py_BuildValue("(nn)", a, b);
    if (span == NULL)
        return -1;
    int rc = PyList_Append(spans, span);
    Py_DECREF(span);
    return rc;
}

/* The (start, end) pairs of `code_spans` in a new array of 2 * count, checked to be int pairs
 * in order within text[0:n]; NULL with an exception set when they are not. No Python code runs
 * here (ints are read as they are, no __index__), so the list cannot change meanwhile. */
static Py_ssize_t *
read_code_spans(PyObject *code_spans, Py_ssize_t n, Py_ssize_t *count)
{
    Py_ssize_t m = PyList_GET_SIZE(code_spans);
    Py_ssize_t *out = PyMem_Malloc(sizeof(Py_ssize_t) * (size_t)(2 * m + 1));
    if (out == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    Py_ssize_t last = 0;
    for (Py_ssize_t k = 0; k < m; k++) {
        PyObject *pair = PyList_GET_ITEM(code_spans, k);
        Py_ssize_t a = -1, b = -1;
        if (PyTuple_Check(pair) && PyTuple_GET_SIZE(pair) == 2 && PyLong_Check(PyTuple_GET_ITEM(pair, 0))
            && PyLong_Check(PyTuple_GET_ITEM(pair, 1))) {
            a = PyLong_AsSsize_t(PyTuple_GET_ITEM(pair, 0));
            if (!(a == -1 && PyErr_Occurred()))
                b = PyLong_AsSsize_t(PyTuple_GET_ITEM(pair, 1));
        }
        if (a < last || b < a || b > n) { /* an overflow reads as -1 */
            PyErr_Clear();
            PyErr_SetString(PyExc_ValueError,
                            "plain_sentence_spans: code_spans must be (start, end) int pairs in order within the text");
            PyMem_Free(out);
            return NULL;
        }
        out[2 * k] = a;
        out[2 * k + 1] = b;
        last = b;
    }
    *count = m;
    return out;
}

static PyObject *
plain_sentence_spans(PyObject *self, PyObject *args)
{
    Splitter sp;
    PyObject *code_spans, *words;
    Py_ssize_t max_span;
    if (!PyArg_ParseTuple(args, "UO!O!OO!n:plain_sentence_spans", &sp.text, &PyList_Type, &code_spans, &PyTuple_Type,
                          &words, &sp.code_line, &PyFrozenSet_Type, &sp.glue_safe, &max_span))
        return NULL;
    if (!PyArg_ParseTuple(words, "O!O!O!:plain_sentence_spans words", &PyFrozenSet_Type, &sp.always,
                          &PyFrozenSet_Type, &sp.before_num, &PyFrozenSet_Type, &sp.runon))
        return NULL;
    if (max_span < 1) {
        PyErr_SetString(PyExc_ValueError, "plain_sentence_spans: max_span must be at least 1");
        return NULL;
    }
    if (PyUnicode_READY(sp.text) < 0)
        return NULL;
    sp.kind = PyUnicode_KIND(sp.text);
    sp.data = PyUnicode_DATA(sp.text);
    Py_ssize_t n = sp.n = PyUnicode_GET_LENGTH(sp.text);
    sp.token_from = sp.token_start = sp.token_end = 0;
    sp.token_is_name = 0;
    Py_ssize_t n_code;
    Py_ssize_t *code = read_code_spans(code_spans, n, &n_code);
    if (code == NULL)
        return NULL;
    /* markup and fences go the Python way, and so does a str subclass (whose own methods the
     * Python path would call) */
    int plain = PyUnicode_CheckExact(sp.text);
    for (Py_ssize_t i = 0; i < n && plain; i++) {
        Py_UCS4 c = ss_at(&sp, i);
        plain = !(c == '<' || c == '&'
                  || ((c == '~' || c == '`') && i + 2 < n && ss_at(&sp, i + 1) == c && ss_at(&sp, i + 2) == c));
    }
    if (!plain) {
        PyMem_Free(code);
        Py_RETURN_NONE;
    }
    PyObject *spans = PyList_New(0);
    if (spans == NULL) {
        PyMem_Free(code);
        return NULL;
    }
    Py_ssize_t prev = 0, p = 0, k = 0;
    int rc = 0;
    while (p < n && rc == 0) {
        Py_UCS4 c = ss_at(&sp, p);
        if (c != '\n' && c != ':' && c != '.' && !ss_end_mark(c)) {
            p++;
            continue;
        }
        Py_ssize_t end, next;
        int found = boundary_at(&sp, p, &end, &next);
        if (found < 0) {
            rc = -1;
            break;
        }
        if (!found) {
            p = after_failed_punctuation(&sp, p);
            continue;
        }
        p = next;
        if (end < 0)
            continue; /* a glued word that is a name, not two sentences */
        while (k < n_code && code[2 * k + 1] <= end)
            k++; /* both are in text order: walk the code spans alongside the cuts */
        if (k < n_code && code[2 * k] < end)
            continue; /* no cut inside a code span */
        if (end > prev)
            rc = emit_trimmed(spans, &sp, prev, end, max_span);
        prev = next;
    }
    if (rc == 0 && prev < n)
        rc = emit_trimmed(spans, &sp, prev, n, max_span);
    PyMem_Free(code);
    if (rc != 0) {
        Py_DECREF(spans);
        if (rc < 0)
            return NULL;
        Py_RETURN_NONE;
    }
    return spans;
}

static PyMethodDef methods[] = {
    {"words", words, METH_O, words_doc},
    {"lookup_entries", lookup_entries, METH_VARARGS, lookup_entries_doc},
    {"pair_table", pair_table, METH_VARARGS, pair_table_doc},
    {"count_logits", count_logits, METH_VARARGS, count_logits_doc},
    {"reason_terms", reason_terms, METH_VARARGS, reason_terms_doc},
    {"combine", combine, METH_VARARGS, combine_doc},
    {"count_tokens", count_tokens, METH_O, count_tokens_doc},
    {"has_clean_words", has_clean_words, METH_VARARGS, has_clean_words_doc},
    {"promo_candidates", promo_candidates, METH_VARARGS, promo_candidates_doc},
    {"plain_normalise", plain_normalise, METH_O, plain_normalise_doc},
    {"may_hold_links", may_hold_links, METH_VARARGS, may_hold_links_doc},
    {"plain_words", plain_words, METH_VARARGS, plain_words_doc},
    {"has_run", has_run, METH_VARARGS, has_run_doc},
    {"plain_sentence_spans", plain_sentence_spans, METH_VARARGS, plain_sentence_spans_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_fastcount",
    "Compiled counting, TF-IDF and logits for postsieve's scoring fast path (optional).", -1, methods,
};

PyMODINIT_FUNC
PyInit__fastcount(void)
{
    for (int c = 1; c < LOG_TABLE; c++)
        log_table[c] = log((double)c);
    if (PyType_Ready(&WordCacheType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    Py_INCREF(&WordCacheType);
    /* the interface version: classifier/compiled.py uses no build of another one */
    if (PyModule_AddObject(m, "WordCache", (PyObject *)&WordCacheType) < 0) {
        Py_DECREF(&WordCacheType);
        Py_DECREF(m);
        return NULL;
    }
    if (PyModule_AddIntConstant(m, "VERSION", 5) < 0)
        Py_CLEAR(m);
    return m;
}
