/* The numeric core of monitor.analysis.cluster.TopicClusterer, in C.
 *
 * It holds the state the pure-Python clusterer keeps in dicts: the decayed document-frequency table (float32 slots,
 * the same multiply-shift hashing), the inverted index term -> clusters (posting lists, latest last, capped), each
 * cluster's decayed term counts (an insertion-ordered map, or the one-post ``codes`` form), its mass, scale time and
 * cached centroid norm, the names of its word and tag terms, and the recent posts whose terms are all indexed. And
 * the per-post bookkeeping: members (post id, ts) and kept samples (post id, ts, cleaned text) of each cluster, the
 * map post id -> cluster, the arrival order the window expires by, absorbed clusters' aliases and their expiry heap,
 * and the terms of the latest texts. One call (add_post) does what TopicClusterer.add does after cleaning; expire()
 * is here too. Labels stay in Python (cluster.py), reading samples and centroids from here. Post ids and texts are
 * Python objects: the core holds references while it keeps them.
 *
 * Every result equals the Python reference's: the same double operations in the same order (no contraction into
 * fused multiply-adds), math.fsum ported from CPython (exactly rounded), sum() as the running Python does it, the
 * tie-breaking of heapq.nlargest (stable: the earliest item first) and of dict insertion order, the float32 rounding
 * of array('f'). libm's exp, log and sqrt are what Python's math module calls.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#define MIX 0x9E3779B97F4A7C15ULL
#define TAG_FLAG (1LL << 61)
#define LATIN_FLAG (1LL << 62)
#define EMPTY (-1LL)

/* ---- helpers: Python's float sums ---------------------------------------------------------------------------- */

/* sum(xs) of floats, as the running Python computes it (3.12 added Neumaier compensation). */
static double
py_sum(const double *xs, Py_ssize_t n)
{
    if (n == 0)
        return 0.0;
    double f = 0.0 + xs[0]; /* sum() starts from the int 0 */
#if PY_VERSION_HEX >= 0x030C0000
    double c = 0.0;
    for (Py_ssize_t i = 1; i < n; i++) {
        double x = xs[i];
        double t = f + x;
        if (fabs(f) >= fabs(x))
            c += (f - t) + x;
        else
            c += (x - t) + f;
        f = t;
    }
    if (c != 0.0 && isfinite(c))
        f += c;
#else
    for (Py_ssize_t i = 1; i < n; i++)
        f += xs[i];
#endif
    return f;
}

/* math.fsum of finite values (CPython's msum: Shewchuk's partials, then the half-even fix-up). */
static double
fsum(const double *xs, Py_ssize_t count)
{
    double ps[128]; /* non-overlapping partials of finite doubles: at most about 40 */
    Py_ssize_t i, j, n = 0;
    double x, y, t, hi, yr, lo = 0.0;
    for (Py_ssize_t k = 0; k < count; k++) {
        x = xs[k];
        for (i = j = 0; j < n; j++) {
            y = ps[j];
            if (fabs(x) < fabs(y)) {
                t = x;
                x = y;
                y = t;
            }
            hi = x + y;
            yr = hi - x;
            lo = y - yr;
            if (lo != 0.0)
                ps[i++] = lo;
            x = hi;
        }
        n = i;
        if (x != 0.0 && n < 128)
            ps[n++] = x;
    }
    hi = 0.0;
    if (n > 0) {
        hi = ps[--n];
        while (n > 0) {
            x = hi;
            y = ps[--n];
            hi = x + y;
            yr = hi - x;
            lo = y - yr;
            if (lo != 0.0)
                break;
        }
        if (n > 0 && ((lo < 0.0 && ps[n - 1] < 0.0) || (lo > 0.0 && ps[n - 1] > 0.0))) {
            y = lo * 2.0;
            x = hi + y;
            yr = x - hi;
            if (y == yr)
                hi = x;
        }
    }
    return hi;
}

/* ---- an insertion-ordered map int64 -> double (a cluster's term counts; the scratch maps) -------------------- */

typedef struct {
    int64_t *keys;
    double *vals;
    int32_t n, cap;
    int32_t *tab; /* positions in keys, -1 empty; size 1 << bits, at least 2 * cap */
    int bits;
} OMap;

static inline uint32_t
hash_at(int64_t key, int bits)
{
    return (uint32_t)(((uint64_t)key * MIX) >> (64 - bits));
}

static int
omap_init(OMap *m, int32_t cap)
{
    int bits = 3;
    if (cap < 4)
        cap = 4;
    while ((1 << bits) < 2 * cap)
        bits++;
    m->keys = PyMem_Malloc(sizeof(int64_t) * cap);
    m->vals = PyMem_Malloc(sizeof(double) * cap);
    m->tab = PyMem_Malloc(sizeof(int32_t) * ((size_t)1 << bits));
    if (!m->keys || !m->vals || !m->tab) {
        PyMem_Free(m->keys);
        PyMem_Free(m->vals);
        PyMem_Free(m->tab);
        m->keys = NULL;
        m->vals = NULL;
        m->tab = NULL;
        PyErr_NoMemory();
        return -1;
    }
    memset(m->tab, 0xff, sizeof(int32_t) * ((size_t)1 << bits));
    m->n = 0;
    m->cap = cap;
    m->bits = bits;
    return 0;
}

static void
omap_free(OMap *m)
{
    PyMem_Free(m->keys);
    PyMem_Free(m->vals);
    PyMem_Free(m->tab);
    m->keys = NULL;
    m->vals = NULL;
    m->tab = NULL;
    m->n = m->cap = 0;
}

static inline int32_t
omap_find(const OMap *m, int64_t key)
{
    uint32_t mask = (1u << m->bits) - 1, i = hash_at(key, m->bits);
    for (;;) {
        int32_t p = m->tab[i];
        if (p < 0)
            return -1;
        if (m->keys[p] == key)
            return p;
        i = (i + 1) & mask;
    }
}

static void
omap_reindex(OMap *m)
{
    uint32_t mask = (1u << m->bits) - 1;
    memset(m->tab, 0xff, sizeof(int32_t) * ((size_t)1 << m->bits));
    for (int32_t p = 0; p < m->n; p++) {
        uint32_t i = hash_at(m->keys[p], m->bits);
        while (m->tab[i] >= 0)
            i = (i + 1) & mask;
        m->tab[i] = p;
    }
}

static int
omap_reserve(OMap *m, int32_t need)
{
    if (need <= m->cap)
        return 0;
    int32_t cap = m->cap * 2;
    if (cap < need)
        cap = need;
    int64_t *keys = PyMem_Realloc(m->keys, sizeof(int64_t) * cap);
    if (!keys)
        goto fail;
    m->keys = keys;
    double *vals = PyMem_Realloc(m->vals, sizeof(double) * cap);
    if (!vals)
        goto fail;
    m->vals = vals;
    m->cap = cap;
    if ((1 << m->bits) < 2 * cap) {
        int bits = m->bits;
        while ((1 << bits) < 2 * cap)
            bits++;
        int32_t *tab = PyMem_Realloc(m->tab, sizeof(int32_t) * ((size_t)1 << bits));
        if (!tab)
            goto fail;
        m->tab = tab;
        m->bits = bits;
        omap_reindex(m);
    }
    return 0;
fail:
    PyErr_NoMemory();
    return -1;
}

/* Append a key known to be absent. */
static int
omap_append(OMap *m, int64_t key, double val)
{
    if (m->n >= m->cap && omap_reserve(m, m->n + 1) < 0)
        return -1;
    uint32_t mask = (1u << m->bits) - 1, i = hash_at(key, m->bits);
    while (m->tab[i] >= 0)
        i = (i + 1) & mask;
    m->tab[i] = m->n;
    m->keys[m->n] = key;
    m->vals[m->n] = val;
    m->n++;
    return 0;
}

/* ---- a set of int64 (the everyday words and function characters) -------------------------------------------- */

typedef struct {
    int64_t *keys;
    int bits;
} KSet;

static int
kset_build(KSet *s, PyObject *iterable)
{
    PyObject *seq = PySequence_Fast(iterable, "expected a sequence of ints");
    if (!seq)
        return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    int bits = 3;
    while ((1 << bits) < 2 * n + 2)
        bits++;
    s->keys = PyMem_Malloc(sizeof(int64_t) * ((size_t)1 << bits));
    if (!s->keys) {
        Py_DECREF(seq);
        PyErr_NoMemory();
        return -1;
    }
    s->bits = bits;
    for (Py_ssize_t i = 0; i < ((Py_ssize_t)1 << bits); i++)
        s->keys[i] = EMPTY;
    uint32_t mask = (1u << bits) - 1;
    for (Py_ssize_t k = 0; k < n; k++) {
        long long v = PyLong_AsLongLong(PySequence_Fast_GET_ITEM(seq, k));
        if (v == -1 && PyErr_Occurred()) {
            Py_DECREF(seq);
            return -1;
        }
        if (v < 0)
            continue;
        uint32_t i = hash_at(v, bits);
        while (s->keys[i] != EMPTY && s->keys[i] != v)
            i = (i + 1) & mask;
        s->keys[i] = v;
    }
    Py_DECREF(seq);
    return 0;
}

static inline int
kset_has(const KSet *s, int64_t key)
{
    uint32_t mask = (1u << s->bits) - 1, i = hash_at(key, s->bits);
    for (;;) {
        int64_t k = s->keys[i];
        if (k == key)
            return 1;
        if (k == EMPTY)
            return 0;
        i = (i + 1) & mask;
    }
}

/* ---- clusters ------------------------------------------------------------------------------------------------ */

#define SAMPLES 16 /* cluster._SAMPLES: member texts a cluster keeps for its label */

typedef struct {
    PyObject *pid; /* a reference */
    double ts;
} Member;

typedef struct {
    PyObject *pid, *text; /* references */
    double ts;
} Sample;

typedef struct {
    int64_t num;
    int one;  /* one-post form: the post's terms in m.keys, each counted ``mass`` (vals unused) */
    OMap m;   /* term -> decayed count, in the Python dict's insertion order */
    double mass, scale_t, norm, norm_docs, norm_mass;
    PyObject *names; /* dict: code -> text of word and tag terms */
    /* members in the window, in order of joining (sorted by time after a merge): mem[mem_head:mem_head + mem_n] */
    Member *mem;
    Py_ssize_t mem_head, mem_n, mem_cap;
    Sample samples[SAMPLES];
    int ns;
    /* numbers of the clusters merged into this one that still resolve to it, oldest merge first */
    int64_t *ab;
    Py_ssize_t ab_n, ab_cap;
} Cluster;

/* An absorbed cluster number: the cluster it resolves to, until when. */
typedef struct {
    int64_t key, target;
    double until;
} ASlot;

typedef struct {
    double until;
    int64_t num;
} HeapItem;

typedef struct {
    double ts;
    int64_t num;
} OrderItem;

/* A kept text's terms (cleaned text -> token_codes): codes, and the text of each word term (NULL for a bigram). */
typedef struct {
    PyObject *key;
    int64_t *codes;
    PyObject **names;
    Py_ssize_t n;
} Cached;

typedef struct {
    int64_t key;
    Cluster *c;
} CSlot;

/* A posting: the clusters that used a term last (latest last). One cluster is kept inline. */
typedef struct {
    int64_t key;
    int32_t len, cap;
    int64_t one;
    int64_t *arr;
} PSlot;

typedef struct {
    int64_t num;
    int64_t *codes;
    Py_ssize_t n;
} Recent;

typedef struct {
    PyObject_HEAD
    /* document frequencies */
    float *df;
    uint64_t df_mask;
    Py_ssize_t df_slots;
    double docs, grow, df_t, tau;
    int df_t_set;
    /* parameters */
    double threshold, merge_threshold, common_weight, hashtag_weight;
    Py_ssize_t min_shared, min_df, post_terms, probe_terms, score_clusters, centroid_terms, posting_cap,
        recent_posts, merge_terms;
    KSet common, function;
    /* token_codes: stop characters, stop words (a frozenset of str), stop codes */
    KSet stop_chars, stop_codes;
    PyObject *stop_words;
    /* clusters by number */
    CSlot *cl;
    int cl_bits;
    Py_ssize_t cl_n;
    /* inverted index */
    PSlot *ix;
    int ix_bits;
    Py_ssize_t ix_n;
    /* recent posts: a ring */
    Recent *recent;
    Py_ssize_t r_head, r_len, r_cap;
    /* the clock, the next cluster number */
    double now;
    int64_t next;
    /* post id -> number of the cluster it joined (a dict of str -> int) */
    PyObject *post_cluster;
    /* (ts, cluster number at joining) in arrival order: a ring */
    OrderItem *order;
    Py_ssize_t o_head, o_len, o_cap;
    /* absorbed numbers: open addressing; the heap of (until, num) */
    ASlot *al;
    int al_bits;
    Py_ssize_t al_n;
    HeapItem *heap;
    Py_ssize_t h_n, h_cap;
    /* recent texts' terms: a ring of codes_kept, and a dict text -> slot */
    Cached *cache;
    Py_ssize_t c_head, c_len, c_cap;
    PyObject *cache_index;
    PyObject *hashtags; /* textfeat.hashtags */
} Core;

static inline double
factor(Core *s, int64_t code)
{
    if (code >= TAG_FLAG)
        return code < LATIN_FLAG ? s->hashtag_weight : 1.0;
    if (kset_has(&s->common, code) || kset_has(&s->function, code >> 21) || kset_has(&s->function, code & 0x1FFFFF))
        return s->common_weight;
    return 1.0;
}

static inline uint64_t
df_slot(Core *s, int64_t code)
{
    return (((uint64_t)code * MIX) >> 40) & s->df_mask;
}

/* -- the cluster table: open addressing, linear probing, deletion by backward shift -- */

static Cluster *
cl_get(Core *s, int64_t num)
{
    uint32_t mask = (1u << s->cl_bits) - 1, i = hash_at(num, s->cl_bits);
    for (;;) {
        CSlot *e = &s->cl[i];
        if (e->key == num)
            return e->c;
        if (e->key == EMPTY)
            return NULL;
        i = (i + 1) & mask;
    }
}

static int
cl_put(Core *s, Cluster *c)
{
    if (2 * (s->cl_n + 1) > ((Py_ssize_t)1 << s->cl_bits)) {
        int bits = s->cl_bits + 1;
        CSlot *tab = PyMem_Malloc(sizeof(CSlot) * ((size_t)1 << bits));
        if (!tab) {
            PyErr_NoMemory();
            return -1;
        }
        for (Py_ssize_t i = 0; i < ((Py_ssize_t)1 << bits); i++)
            tab[i].key = EMPTY;
        uint32_t mask = (1u << bits) - 1;
        for (Py_ssize_t k = 0; k < ((Py_ssize_t)1 << s->cl_bits); k++) {
            if (s->cl[k].key == EMPTY)
                continue;
            uint32_t i = hash_at(s->cl[k].key, bits);
            while (tab[i].key != EMPTY)
                i = (i + 1) & mask;
            tab[i] = s->cl[k];
        }
        PyMem_Free(s->cl);
        s->cl = tab;
        s->cl_bits = bits;
    }
    uint32_t mask = (1u << s->cl_bits) - 1, i = hash_at(c->num, s->cl_bits);
    while (s->cl[i].key != EMPTY)
        i = (i + 1) & mask;
    s->cl[i].key = c->num;
    s->cl[i].c = c;
    s->cl_n++;
    return 0;
}

static void
cl_del(Core *s, int64_t num)
{
    uint32_t mask = (1u << s->cl_bits) - 1, i = hash_at(num, s->cl_bits);
    for (;;) {
        if (s->cl[i].key == num)
            break;
        if (s->cl[i].key == EMPTY)
            return;
        i = (i + 1) & mask;
    }
    uint32_t j = i;
    for (;;) {
        j = (j + 1) & mask;
        if (s->cl[j].key == EMPTY)
            break;
        uint32_t k = hash_at(s->cl[j].key, s->cl_bits);
        /* move j back to i unless its home lies cyclically in (i, j] */
        if ((i <= j) ? (i < k && k <= j) : (i < k || k <= j))
            continue;
        s->cl[i] = s->cl[j];
        i = j;
    }
    s->cl[i].key = EMPTY;
    s->cl_n--;
}

static void
cluster_free(Cluster *c)
{
    omap_free(&c->m);
    Py_XDECREF(c->names);
    for (Py_ssize_t k = 0; k < c->mem_n; k++)
        Py_DECREF(c->mem[c->mem_head + k].pid);
    PyMem_Free(c->mem);
    for (int k = 0; k < c->ns; k++) {
        Py_DECREF(c->samples[k].pid);
        Py_DECREF(c->samples[k].text);
    }
    PyMem_Free(c->ab);
    PyMem_Free(c);
}

/* -- the inverted index -- */

static PSlot *
ix_find(Core *s, int64_t code)
{
    uint32_t mask = (1u << s->ix_bits) - 1, i = hash_at(code, s->ix_bits);
    for (;;) {
        PSlot *e = &s->ix[i];
        if (e->key == code)
            return e;
        if (e->key == EMPTY)
            return NULL;
        i = (i + 1) & mask;
    }
}

static int
ix_grow(Core *s)
{
    int bits = s->ix_bits + 1;
    PSlot *tab = PyMem_Malloc(sizeof(PSlot) * ((size_t)1 << bits));
    if (!tab) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < ((Py_ssize_t)1 << bits); i++)
        tab[i].key = EMPTY;
    uint32_t mask = (1u << bits) - 1;
    for (Py_ssize_t k = 0; k < ((Py_ssize_t)1 << s->ix_bits); k++) {
        if (s->ix[k].key == EMPTY)
            continue;
        uint32_t i = hash_at(s->ix[k].key, bits);
        while (tab[i].key != EMPTY)
            i = (i + 1) & mask;
        tab[i] = s->ix[k];
    }
    PyMem_Free(s->ix);
    s->ix = tab;
    s->ix_bits = bits;
    return 0;
}

static void
ix_del(Core *s, PSlot *e)
{
    uint32_t mask = (1u << s->ix_bits) - 1, i = (uint32_t)(e - s->ix), j = i;
    PyMem_Free(e->arr);
    for (;;) {
        j = (j + 1) & mask;
        if (s->ix[j].key == EMPTY)
            break;
        uint32_t k = hash_at(s->ix[j].key, s->ix_bits);
        if ((i <= j) ? (i < k && k <= j) : (i < k || k <= j))
            continue;
        s->ix[i] = s->ix[j];
        i = j;
    }
    s->ix[i].key = EMPTY;
    s->ix[i].arr = NULL;
    s->ix_n--;
}

/* TopicClusterer._post: the cluster becomes the latest user of the term. */
static int
post(Core *s, int64_t code, int64_t num)
{
    PSlot *e = ix_find(s, code);
    if (!e) {
        if (2 * (s->ix_n + 1) > ((Py_ssize_t)1 << s->ix_bits) && ix_grow(s) < 0)
            return -1;
        uint32_t mask = (1u << s->ix_bits) - 1, i = hash_at(code, s->ix_bits);
        while (s->ix[i].key != EMPTY)
            i = (i + 1) & mask;
        e = &s->ix[i];
        e->key = code;
        e->len = 1;
        e->cap = 0;
        e->one = num;
        e->arr = NULL;
        s->ix_n++;
        return 0;
    }
    if (e->len == 1) {
        if (e->one == num)
            return 0;
        if (e->cap < 2) {
            int64_t *arr = PyMem_Realloc(e->arr, sizeof(int64_t) * 4);
            if (!arr) {
                PyErr_NoMemory();
                return -1;
            }
            e->arr = arr;
            e->cap = 4;
        }
        e->arr[0] = e->one;
        e->arr[1] = num;
        e->len = 2; /* an int becomes [it, num], uncapped as in Python */
        return 0;
    }
    if (e->arr[e->len - 1] == num)
        return 0;
    for (int32_t k = 0; k < e->len; k++) {
        if (e->arr[k] == num) {
            memmove(e->arr + k, e->arr + k + 1, sizeof(int64_t) * (e->len - k - 1));
            e->len--;
            break;
        }
    }
    if (e->len >= e->cap) {
        int32_t cap = e->cap * 2;
        int64_t *arr = PyMem_Realloc(e->arr, sizeof(int64_t) * cap);
        if (!arr) {
            PyErr_NoMemory();
            return -1;
        }
        e->arr = arr;
        e->cap = cap;
    }
    e->arr[e->len++] = num;
    if (e->len > s->posting_cap) {
        memmove(e->arr, e->arr + 1, sizeof(int64_t) * (e->len - 1));
        e->len--;
    }
    return 0;
}

/* TopicClusterer._unpost_all, one term. */
static void
unpost(Core *s, int64_t code, int64_t num)
{
    PSlot *e = ix_find(s, code);
    if (!e)
        return;
    if (e->len == 1) {
        if (e->one == num)
            ix_del(s, e);
        return;
    }
    for (int32_t k = 0; k < e->len; k++) {
        if (e->arr[k] == num) {
            memmove(e->arr + k, e->arr + k + 1, sizeof(int64_t) * (e->len - k - 1));
            e->len--;
            if (e->len == 1)
                e->one = e->arr[0];
            return;
        }
    }
}

/* -- document frequencies -- */

/* TopicClusterer._count: count a post's terms at time ``now``. */
static void
count_terms(Core *s, const int64_t *codes, Py_ssize_t n, double now)
{
    if (!s->df_t_set) {
        s->df_t = now;
        s->df_t_set = 1;
    }
    double e = (now - s->df_t) / s->tau;
    if (700.0 < e)
        e = 700.0;
    double grow = exp(e);
    if (grow > 1e6) {
        float f = (float)(1.0 / grow);
        float *df = s->df;
        for (Py_ssize_t i = 0; i < s->df_slots; i++)
            df[i] = df[i] * f;
        s->docs /= grow;
        s->df_t = now;
        grow = 1.0;
    }
    s->grow = grow;
    for (Py_ssize_t i = 0; i < n; i++) {
        uint64_t k = df_slot(s, codes[i]);
        s->df[k] = (float)((double)s->df[k] + grow);
    }
    s->docs += grow;
}

static inline double
df_of(Core *s, int64_t code, double inv)
{
    return (double)s->df[df_slot(s, code)] * inv;
}

/* -- sorting: heapq.nlargest's order (value descending, ties in original order) -- */

typedef struct {
    double v;
    Py_ssize_t i;
} Ranked;

static int
cmp_desc_stable(const void *a, const void *b)
{
    const Ranked *x = a, *y = b;
    if (x->v > y->v)
        return -1;
    if (x->v < y->v)
        return 1;
    return (x->i > y->i) - (x->i < y->i);
}

/* Put the ``k`` first items of the order above (the ``k`` largest values, ties in original order) at the front, in
 * that order: what heapq.nlargest(k, ...) gives. The items past ``k`` are left in no order (some overwritten). */
static void
top_k(Ranked *a, Py_ssize_t n, Py_ssize_t k)
{
    if (k >= n || k > 32) {
        qsort(a, n, sizeof(Ranked), cmp_desc_stable);
        return;
    }
    if (k <= 0)
        return;
    /* insertion sort of the first k, then each later item that beats the k-th is inserted */
    for (Py_ssize_t i = 1; i < k; i++) {
        Ranked x = a[i];
        Py_ssize_t j = i;
        while (j > 0 && cmp_desc_stable(&x, &a[j - 1]) < 0) {
            a[j] = a[j - 1];
            j--;
        }
        a[j] = x;
    }
    for (Py_ssize_t i = k; i < n; i++) {
        if (cmp_desc_stable(&a[i], &a[k - 1]) >= 0)
            continue;
        Ranked x = a[i];
        Py_ssize_t j = k - 1;
        while (j > 0 && cmp_desc_stable(&x, &a[j - 1]) < 0) {
            a[j] = a[j - 1];
            j--;
        }
        a[j] = x;
    }
}

typedef struct {
    double n, d;
    int64_t code;
} PruneKey;

/* sorted(zip(-counts, df, codes)): most members first, then the rarer term, then the smaller code. */
static int
cmp_prune(const void *a, const void *b)
{
    const PruneKey *x = a, *y = b;
    if (x->n != y->n)
        return x->n > y->n ? -1 : 1;
    if (x->d != y->d)
        return x->d < y->d ? -1 : 1;
    return (x->code > y->code) - (x->code < y->code);
}

/* -- clusters' centroids -- */

static int
names_pop(Cluster *c, int64_t code)
{
    if (code < TAG_FLAG || !c->names)
        return 0;
    PyObject *key = PyLong_FromLongLong(code);
    if (!key)
        return -1;
    int has = PyDict_Contains(c->names, key);
    int r = has > 0 ? PyDict_DelItem(c->names, key) : has;
    Py_DECREF(key);
    return r;
}

/* TopicClusterer._prune: keep the ``centroid_terms`` terms with the most members (ties: the rarer term). */
static int
prune(Core *s, Cluster *c)
{
    int32_t n = c->m.n;
    double inv = 1.0 / s->grow;
    PruneKey *ranked = PyMem_Malloc(sizeof(PruneKey) * (n ? n : 1));
    if (!ranked) {
        PyErr_NoMemory();
        return -1;
    }
    for (int32_t k = 0; k < n; k++) {
        ranked[k].n = c->m.vals[k];
        ranked[k].d = df_of(s, c->m.keys[k], inv);
        ranked[k].code = c->m.keys[k];
    }
    qsort(ranked, n, sizeof(PruneKey), cmp_prune);
    int32_t keep = (int32_t)(s->centroid_terms < n ? s->centroid_terms : n);
    for (int32_t k = 0; k < keep; k++) {
        c->m.keys[k] = ranked[k].code;
        c->m.vals[k] = ranked[k].n;
    }
    c->m.n = keep;
    omap_reindex(&c->m);
    int r = 0;
    for (int32_t k = keep; k < n; k++) {
        unpost(s, ranked[k].code, c->num);
        if (names_pop(c, ranked[k].code) < 0)
            r = -1;
    }
    c->norm_docs = -1.0;
    PyMem_Free(ranked);
    return r;
}

static void
to_counts(Cluster *c)
{
    if (c->one) {
        for (int32_t k = 0; k < c->m.n; k++)
            c->m.vals[k] = c->mass;
        c->one = 0;
    }
}

/* TopicClusterer._add_counts. ``vals`` NULL: each term counts ``each``. */
static int
add_counts(Core *s, Cluster *c, const int64_t *keys, const double *vals, double each, Py_ssize_t n, double ts,
           double mass)
{
    to_counts(c);
    double e = (ts - c->scale_t) / s->tau;
    if (700.0 < e)
        e = 700.0;
    double f = exp(e);
    if (f > 1e9) {
        double shrink = 1.0 / f;
        for (int32_t k = 0; k < c->m.n; k++)
            c->m.vals[k] = c->m.vals[k] * shrink;
        c->mass *= shrink;
        c->scale_t = ts;
        f = 1.0;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        double v = (vals ? vals[i] : each) * f;
        int32_t p = omap_find(&c->m, keys[i]);
        if (p >= 0)
            c->m.vals[p] = c->m.vals[p] + v;
        else if (omap_append(&c->m, keys[i], 0.0 + v) < 0)
            return -1;
    }
    c->mass += mass * f;
    if (c->m.n > 2 * s->centroid_terms)
        return prune(s, c);
    return 0;
}

/* TopicClusterer._centroid_df: weights and document frequencies of the weighted terms, in the counts' order.
 * The outputs hold room for c->m.n entries; returns how many were written. */
static Py_ssize_t
centroid(Core *s, Cluster *c, double floor, int64_t *codes, double *w, double *dfs)
{
    double inv = 1.0 / s->grow;
    double docs = s->docs / s->grow + 1.0;
    double inv_mass = 1.0 / c->mass;
    Py_ssize_t out = 0;
    for (int32_t k = 0; k < c->m.n; k++) {
        int64_t code = c->m.keys[k];
        double d = df_of(s, code, inv);
        if (d < floor)
            continue;
        double p = (c->one ? c->mass : c->m.vals[k]) * inv_mass;
        double lift = p * docs / (d + 0.5);
        if (lift > 1.0) {
            codes[out] = code;
            w[out] = p * log(lift) * factor(s, code);
            if (dfs)
                dfs[out] = d;
            out++;
        }
    }
    return out;
}

static void
set_norm(Core *s, Cluster *c, double norm)
{
    c->norm = norm;
    c->norm_docs = s->docs / s->grow;
    c->norm_mass = c->mass;
}

static int
centroid_norm(Core *s, Cluster *c, double floor, double *norm)
{
    Py_ssize_t n = c->m.n ? c->m.n : 1;
    int64_t *codes = PyMem_Malloc(sizeof(int64_t) * n);
    double *w = PyMem_Malloc(sizeof(double) * n);
    if (!codes || !w) {
        PyMem_Free(codes);
        PyMem_Free(w);
        PyErr_NoMemory();
        return -1;
    }
    Py_ssize_t k = centroid(s, c, floor, codes, w, NULL);
    for (Py_ssize_t i = 0; i < k; i++)
        w[i] = w[i] * w[i];
    *norm = sqrt(py_sum(w, k));
    PyMem_Free(codes);
    PyMem_Free(w);
    return 0;
}

/* TopicClusterer._norm: the centroid norm, refreshed when the mass moved 10 % or the collection 5 %. */
static int
norm_of(Core *s, Cluster *c, double *out)
{
    double docs = s->docs / s->grow;
    if (c->norm_docs < 0 || fabs(c->mass - c->norm_mass) > 0.1 * c->norm_mass ||
        fabs(docs - c->norm_docs) > 0.05 * c->norm_docs) {
        double norm;
        if (centroid_norm(s, c, (double)s->min_df - 0.5, &norm) < 0)
            return -1;
        set_norm(s, c, norm);
    }
    *out = c->norm;
    return 0;
}

/* TopicClusterer._nearest. ``raw``: the query's weights before normalising (all present), or NULL. */
static int
nearest(Core *s, const int64_t *qc, const double *qw, const double *qdf, Py_ssize_t nq, const double *raw,
        int64_t exclude, double bar, int64_t *best_out, double *sim_out)
{
    *best_out = -1;
    *sim_out = 0.0;
    if (nq == 0)
        return 0;
    int ret = -1;
    Ranked *order = PyMem_Malloc(sizeof(Ranked) * nq);
    double *rawv = PyMem_Malloc(sizeof(double) * nq);
    char *rawok = PyMem_Malloc(nq);
    double *parts = PyMem_Malloc(sizeof(double) * nq);
    Ranked *cands = NULL;
    OMap partial = {0};
    if (!order || !rawv || !rawok || !parts) {
        PyErr_NoMemory();
        goto done;
    }
    if (omap_init(&partial, 64) < 0)
        goto done;
    for (Py_ssize_t i = 0; i < nq; i++) {
        order[i].v = qw[i];
        order[i].i = i;
    }
    Py_ssize_t probes = s->probe_terms < nq ? s->probe_terms : nq;
    top_k(order, nq, probes);
    for (Py_ssize_t r = 0; r < probes; r++) {
        Py_ssize_t qi = order[r].i;
        int64_t code = qc[qi];
        double w = qw[qi];
        PSlot *e = ix_find(s, code);
        if (!e)
            continue;
        int32_t len = e->len;
        for (int32_t k = 0; k < len; k++) {
            int64_t num = len == 1 ? e->one : e->arr[k];
            Cluster *c = cl_get(s, num);
            if (!c) {
                PyErr_Format(PyExc_RuntimeError, "cluster %lld indexed but unknown", (long long)num);
                goto done;
            }
            double add;
            if (!c->one) {
                int32_t p = omap_find(&c->m, code);
                add = w * ((p >= 0 ? c->m.vals[p] : 0.0) / c->mass);
            }
            else
                add = w;
            int32_t p = omap_find(&partial, num);
            if (p >= 0)
                partial.vals[p] = partial.vals[p] + add;
            else if (omap_append(&partial, num, 0.0 + add) < 0)
                goto done;
        }
    }
    /* partial.pop(exclude): keeps the others' order */
    Py_ssize_t ncand = 0;
    cands = PyMem_Malloc(sizeof(Ranked) * (partial.n ? partial.n : 1));
    if (!cands) {
        PyErr_NoMemory();
        goto done;
    }
    for (int32_t p = 0; p < partial.n; p++) {
        if (partial.keys[p] == exclude)
            continue;
        cands[ncand].v = partial.vals[p];
        cands[ncand].i = p;
        ncand++;
    }
    if (ncand == 0) {
        ret = 0;
        goto done;
    }
    if (ncand > s->score_clusters) {
        top_k(cands, ncand, s->score_clusters);
        ncand = s->score_clusters;
    }
    else
        qsort(cands, ncand, sizeof(Ranked), cmp_desc_stable);
    double docs = s->docs / s->grow + 1.0;
    int have_raw = 0;
    int64_t best = -1;
    double best_sim = 0.0;
    for (Py_ssize_t r = 0; r < ncand; r++) {
        int64_t num = partial.keys[cands[r].i];
        Cluster *c = cl_get(s, num);
        double mass = c->mass, dot;
        Py_ssize_t np = 0;
        if (!c->one) {
            Py_ssize_t shared = 0;
            for (Py_ssize_t i = 0; i < nq; i++) {
                int32_t p = omap_find(&c->m, qc[i]);
                if (p < 0)
                    continue;
                shared++;
                double n = c->m.vals[p];
                double lift = n * docs / (mass * (qdf[i] + 0.5));
                if (lift > 1.0)
                    parts[np++] = qw[i] * n / mass * log(lift) * factor(s, qc[i]);
            }
            if (shared < s->min_shared || np < s->min_shared)
                continue;
        }
        else {
            if (!have_raw) {
                for (Py_ssize_t i = 0; i < nq; i++) {
                    if (raw) {
                        rawv[i] = raw[i];
                        rawok[i] = 1;
                    }
                    else {
                        double idf = log(docs / (qdf[i] + 0.5));
                        rawok[i] = idf > 0.0;
                        rawv[i] = idf * factor(s, qc[i]);
                    }
                }
                have_raw = 1;
            }
            for (Py_ssize_t i = 0; i < nq; i++)
                if (rawok[i] && omap_find(&c->m, qc[i]) >= 0)
                    parts[np++] = qw[i] * rawv[i];
            if (np < s->min_shared)
                continue;
        }
        dot = fsum(parts, np);
        /* A stale norm is refreshed only when the similarity it gives is near the bar. */
        if (c->norm > 0.0 && dot / c->norm < 0.7 * (best_sim > bar ? best_sim : bar))
            continue;
        double norm;
        if (norm_of(s, c, &norm) < 0)
            goto done;
        if (norm == 0.0)
            continue;
        double sim = dot / c->norm;
        if (sim > best_sim + 1e-12 || (best >= 0 && fabs(sim - best_sim) <= 1e-12 && num < best)) {
            best = num;
            best_sim = sim;
        }
    }
    *best_out = best;
    *sim_out = best_sim;
    ret = 0;
done:
    PyMem_Free(order);
    PyMem_Free(rawv);
    PyMem_Free(rawok);
    PyMem_Free(parts);
    PyMem_Free(cands);
    omap_free(&partial);
    return ret;
}

/* ---- the Python type ----------------------------------------------------------------------------------------- */

static void free_terms(int64_t *codes, PyObject **names, Py_ssize_t n);

static void
Core_dealloc(Core *s)
{
    if (s->cl) {
        for (Py_ssize_t k = 0; k < ((Py_ssize_t)1 << s->cl_bits); k++)
            if (s->cl[k].key != EMPTY)
                cluster_free(s->cl[k].c);
        PyMem_Free(s->cl);
    }
    if (s->ix) {
        for (Py_ssize_t k = 0; k < ((Py_ssize_t)1 << s->ix_bits); k++)
            if (s->ix[k].key != EMPTY)
                PyMem_Free(s->ix[k].arr);
        PyMem_Free(s->ix);
    }
    if (s->recent) {
        for (Py_ssize_t k = 0; k < s->r_len; k++)
            PyMem_Free(s->recent[(s->r_head + k) % s->r_cap].codes);
        PyMem_Free(s->recent);
    }
    if (s->cache) {
        for (Py_ssize_t k = 0; k < s->c_len; k++) {
            Cached *e = &s->cache[(s->c_head + k) % s->c_cap];
            Py_XDECREF(e->key);
            free_terms(e->codes, e->names, e->n);
        }
        PyMem_Free(s->cache);
    }
    Py_XDECREF(s->cache_index);
    Py_XDECREF(s->post_cluster);
    Py_XDECREF(s->hashtags);
    PyMem_Free(s->al);
    PyMem_Free(s->heap);
    PyMem_Free(s->order);
    PyMem_Free(s->df);
    PyMem_Free(s->common.keys);
    PyMem_Free(s->function.keys);
    PyMem_Free(s->stop_chars.keys);
    PyMem_Free(s->stop_codes.keys);
    Py_XDECREF(s->stop_words);
    Py_TYPE(s)->tp_free((PyObject *)s);
}

static int
Core_init(Core *s, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"df_slots", "window", "threshold", "merge_threshold", "min_shared", "min_df",
                             "common_weight", "hashtag_weight", "post_terms", "probe_terms", "score_clusters",
                             "centroid_terms", "posting_cap", "recent_posts", "merge_terms", "common_codes",
                             "function_chars", "stop_chars", "stop_words", "stop_codes", "samples", "codes_kept",
                             "hashtags", NULL};
    Py_ssize_t df_slots, samples, codes_kept;
    PyObject *common, *function, *stop_chars, *stop_words, *stop_codes, *hashtags;
    if (s->df) {
        PyErr_SetString(PyExc_RuntimeError, "Core is initialised once");
        return -1;
    }
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "ndddnnddnnnnnnnOOOO!OnnO", kwlist, &df_slots, &s->tau,
                                     &s->threshold, &s->merge_threshold, &s->min_shared, &s->min_df,
                                     &s->common_weight, &s->hashtag_weight, &s->post_terms, &s->probe_terms,
                                     &s->score_clusters, &s->centroid_terms, &s->posting_cap, &s->recent_posts,
                                     &s->merge_terms, &common, &function, &stop_chars, &PyFrozenSet_Type, &stop_words,
                                     &stop_codes, &samples, &codes_kept, &hashtags))
        return -1;
    if (samples != SAMPLES || codes_kept < 1 || !PyCallable_Check(hashtags)) {
        PyErr_SetString(PyExc_ValueError, "the native core keeps 16 samples, codes_kept >= 1, hashtags callable");
        return -1;
    }
    if (df_slots < 1024 || df_slots > (1 << 24) || (df_slots & (df_slots - 1))) {
        PyErr_SetString(PyExc_ValueError, "df_slots must be a power of two from 1024 to 2**24");
        return -1;
    }
    if (s->posting_cap < 2 || s->recent_posts < 0 || s->tau <= 0) {
        PyErr_SetString(PyExc_ValueError, "the native core needs posting_cap >= 2, recent_posts >= 0, window > 0");
        return -1;
    }
    s->df = PyMem_Calloc(df_slots, sizeof(float));
    if (!s->df) {
        PyErr_NoMemory();
        return -1;
    }
    s->df_slots = df_slots;
    s->df_mask = (uint64_t)df_slots - 1;
    s->docs = 0.0;
    s->grow = 1.0;
    s->df_t_set = 0;
    if (kset_build(&s->common, common) < 0 || kset_build(&s->function, function) < 0 ||
        kset_build(&s->stop_chars, stop_chars) < 0 || kset_build(&s->stop_codes, stop_codes) < 0)
        return -1;
    Py_INCREF(stop_words);
    s->stop_words = stop_words;
    s->cl_bits = 10;
    s->cl = PyMem_Malloc(sizeof(CSlot) << s->cl_bits);
    s->ix_bits = 14;
    s->ix = PyMem_Malloc(sizeof(PSlot) << s->ix_bits);
    s->r_cap = s->recent_posts + 1;
    s->recent = PyMem_Calloc(s->r_cap, sizeof(Recent));
    s->now = -Py_HUGE_VAL;
    s->next = 0;
    s->al_bits = 6;
    s->al = PyMem_Malloc(sizeof(ASlot) << s->al_bits);
    s->c_cap = codes_kept;
    s->cache = PyMem_Calloc(codes_kept, sizeof(Cached));
    s->post_cluster = PyDict_New();
    s->cache_index = PyDict_New();
    Py_INCREF(hashtags);
    s->hashtags = hashtags;
    if (!s->post_cluster || !s->cache_index)
        return -1;
    if (!s->cl || !s->ix || !s->recent || !s->al || !s->cache) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < ((Py_ssize_t)1 << s->al_bits); i++)
        s->al[i].key = EMPTY;
    for (Py_ssize_t i = 0; i < ((Py_ssize_t)1 << s->cl_bits); i++)
        s->cl[i].key = EMPTY;
    for (Py_ssize_t i = 0; i < ((Py_ssize_t)1 << s->ix_bits); i++) {
        s->ix[i].key = EMPTY;
        s->ix[i].arr = NULL;
    }
    return 0;
}

static Cluster *
get_cluster(Core *s, long long num)
{
    Cluster *c = cl_get(s, num);
    if (!c)
        PyErr_Format(PyExc_KeyError, "no cluster %lld", num);
    return c;
}

static int
recent_push(Core *s, int64_t num, const int64_t *codes, Py_ssize_t n)
{
    int64_t *copy = PyMem_Malloc(sizeof(int64_t) * (n ? n : 1));
    if (!copy) {
        PyErr_NoMemory();
        return -1;
    }
    memcpy(copy, codes, sizeof(int64_t) * n);
    Recent *r = &s->recent[(s->r_head + s->r_len) % s->r_cap];
    r->num = num;
    r->codes = copy;
    r->n = n;
    s->r_len++;
    if (s->r_len > s->recent_posts) {
        Recent old = s->recent[s->r_head];
        s->recent[s->r_head].codes = NULL;
        s->r_head = (s->r_head + 1) % s->r_cap;
        s->r_len--;
        /* A cluster that is gone took its index entries with it. Terms only that post used leave the index. */
        if (cl_get(s, old.num)) {
            double inv = 1.0 / s->grow;
            for (Py_ssize_t i = 0; i < old.n; i++)
                if (df_of(s, old.codes[i], inv) < 1.5)
                    unpost(s, old.codes[i], old.num);
        }
        PyMem_Free(old.codes);
    }
    return 0;
}

PyDoc_STRVAR(Core_centroid_doc,
             "centroid(num, min_df=None) -> dict\n\nCentroid weights of a cluster's terms, in its counts' order.");

static PyObject *
Core_centroid(Core *s, PyObject *args)
{
    long long num;
    PyObject *min_df = Py_None;
    if (!PyArg_ParseTuple(args, "L|O", &num, &min_df))
        return NULL;
    Cluster *c = get_cluster(s, num);
    if (!c)
        return NULL;
    double floor;
    if (min_df == Py_None)
        floor = (double)s->min_df - 0.5;
    else {
        floor = PyFloat_AsDouble(min_df);
        if (floor == -1.0 && PyErr_Occurred())
            return NULL;
        floor -= 0.5;
    }
    Py_ssize_t n = c->m.n ? c->m.n : 1;
    int64_t *codes = PyMem_Malloc(sizeof(int64_t) * n);
    double *w = PyMem_Malloc(sizeof(double) * n);
    PyObject *out = NULL;
    if (!codes || !w) {
        PyErr_NoMemory();
        goto done;
    }
    Py_ssize_t k = centroid(s, c, floor, codes, w, NULL);
    out = PyDict_New();
    if (!out)
        goto done;
    for (Py_ssize_t i = 0; i < k; i++) {
        PyObject *key = PyLong_FromLongLong(codes[i]), *val = PyFloat_FromDouble(w[i]);
        int r = (key && val) ? PyDict_SetItem(out, key, val) : -1;
        Py_XDECREF(key);
        Py_XDECREF(val);
        if (r < 0) {
            Py_CLEAR(out);
            goto done;
        }
    }
done:
    PyMem_Free(codes);
    PyMem_Free(w);
    return out;
}

PyDoc_STRVAR(Core_names_doc, "names(num) -> dict\n\nThe cluster's word and tag terms' texts (the dict itself).");

static PyObject *
Core_names(Core *s, PyObject *arg)
{
    long long num = PyLong_AsLongLong(arg);
    if (num == -1 && PyErr_Occurred())
        return NULL;
    Cluster *c = get_cluster(s, num);
    if (!c)
        return NULL;
    Py_INCREF(c->names);
    return c->names;
}

PyDoc_STRVAR(Core_shared_terms_doc,
             "shared_terms(num, share) -> int\n\nSpecific terms (factor 1 or more) at least ``share`` of the members "
             "use.");

static PyObject *
Core_shared_terms(Core *s, PyObject *args)
{
    long long num;
    double share;
    if (!PyArg_ParseTuple(args, "Ld", &num, &share))
        return NULL;
    Cluster *c = get_cluster(s, num);
    if (!c)
        return NULL;
    Py_ssize_t out = 0;
    double floor = share * c->mass;
    for (int32_t k = 0; k < c->m.n; k++)
        if ((c->one || c->m.vals[k] >= floor) && factor(s, c->m.keys[k]) >= 1.0)
            out++;
    return PyLong_FromSsize_t(out);
}

PyDoc_STRVAR(Core_stats_doc, "stats() -> dict\n\nSizes of the structures (clusters, index terms, recent posts, posts "
             "in the window, the order queue, aliases, the alias heap, kept texts' terms).");

static PyObject *
Core_stats(Core *s, PyObject *Py_UNUSED(ignored))
{
    return Py_BuildValue("{s:n,s:n,s:n,s:d,s:d,s:n,s:n,s:n,s:n,s:n}", "clusters", s->cl_n, "index_terms", s->ix_n,
                         "recent", s->r_len, "docs", s->docs, "grow", s->grow, "posts",
                         PyDict_GET_SIZE(s->post_cluster), "order", s->o_len, "aliases", s->al_n, "heap", s->h_n,
                         "cached", s->c_len);
}

/* ---- textfeat.token_codes ----------------------------------------------------------------------------------- */

static uint32_t crc_table[256];

static void
crc_init(void)
{
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_table[n] = c;
    }
}

/* zlib.crc32(data, crc) */
static uint32_t
crc32_more(uint32_t crc, const char *p, Py_ssize_t n)
{
    uint32_t c = crc ^ 0xFFFFFFFFu;
    for (Py_ssize_t i = 0; i < n; i++)
        c = crc_table[(c ^ (unsigned char)p[i]) & 0xff] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

static uint32_t
crc32_of(const char *p, Py_ssize_t n)
{
    return crc32_more(0, p, n);
}

static inline int
is_cjk(Py_UCS4 ch)
{
    return (ch >= 0x3400 && ch <= 0x4DBF) || (ch >= 0x4E00 && ch <= 0x9FFF) || (ch >= 0xF900 && ch <= 0xFAFF);
}

PyDoc_STRVAR(Core_token_codes_doc,
             "token_codes(cleaned) -> dict\n\n"
             "textfeat.token_codes: the distinct tokens of cleaned text as term codes, in order of first occurrence "
             "(a word's code maps to its text, a CJK bigram's to None).");

/* textfeat.token_codes. Runs as textfeat._RUNS finds them: CJK characters other than stop characters, or word
 * characters (str.isalnum, as re's \w without "_") outside the CJK blocks; a CJK run gives its bigrams, another run
 * of two or more characters its word unless a stop word; stop codes go at the end. */
static int
terms_of(Core *s, PyObject *text, int64_t **codes_out, PyObject ***names_out, Py_ssize_t *n_out)
{
    int ret = -1;
    if (!PyUnicode_Check(text)) {
        PyErr_SetString(PyExc_TypeError, "token_codes needs a str");
        return -1;
    }
    Py_ssize_t len = PyUnicode_GET_LENGTH(text);
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    OMap seen = {0};
    PyObject **vals = NULL;
    Py_ssize_t vcap = 0;
    if (omap_init(&seen, 32) < 0)
        return -1;
#define CH(i) PyUnicode_READ(kind, data, (i))
    Py_ssize_t i = 0;
    while (i < len) {
        Py_UCS4 ch = CH(i);
        if (is_cjk(ch) && !kset_has(&s->stop_chars, ch)) {
            Py_ssize_t j = i + 1;
            while (j < len && is_cjk(CH(j)) && !kset_has(&s->stop_chars, CH(j)))
                j++;
            for (Py_ssize_t k = i; k + 1 < j; k++) {
                int64_t code = (int64_t)CH(k) << 21 | (int64_t)CH(k + 1);
                int32_t p = omap_find(&seen, code);
                if (p >= 0) { /* dict.update: the value becomes None */
                    Py_CLEAR(vals[p]);
                    continue;
                }
                if (seen.n >= vcap) {
                    Py_ssize_t cap = vcap ? 2 * vcap : 64;
                    PyObject **v = PyMem_Realloc(vals, sizeof(PyObject *) * cap);
                    if (!v) {
                        PyErr_NoMemory();
                        goto done;
                    }
                    vals = v;
                    vcap = cap;
                }
                vals[seen.n] = NULL;
                if (omap_append(&seen, code, 0.0) < 0)
                    goto done;
            }
            i = j;
        }
        else if (Py_UNICODE_ISALNUM(ch) && ch != '_' && !is_cjk(ch)) {
            Py_ssize_t j = i + 1;
            while (j < len) {
                Py_UCS4 c = CH(j);
                if (!(Py_UNICODE_ISALNUM(c) && c != '_' && !is_cjk(c)))
                    break;
                j++;
            }
            if (j - i > 1) {
                PyObject *run = PyUnicode_Substring(text, i, j);
                if (!run)
                    goto done;
                int stop = PySet_Contains(s->stop_words, run);
                if (stop != 0) {
                    Py_DECREF(run);
                    if (stop < 0)
                        goto done;
                    i = j;
                    continue;
                }
                int64_t code;
                if (j - i == 2 && ch >= 0x3400)
                    code = (int64_t)ch << 21 | (int64_t)CH(i + 1);
                else {
                    Py_ssize_t size;
                    const char *utf8 = PyUnicode_AsUTF8AndSize(run, &size);
                    if (!utf8) {
                        Py_DECREF(run);
                        goto done;
                    }
                    code = LATIN_FLAG | (int64_t)crc32_of(utf8, size);
                }
                if (omap_find(&seen, code) >= 0) { /* setdefault: the first text stays */
                    Py_DECREF(run);
                    i = j;
                    continue;
                }
                if (seen.n >= vcap) {
                    Py_ssize_t cap = vcap ? 2 * vcap : 64;
                    PyObject **v = PyMem_Realloc(vals, sizeof(PyObject *) * cap);
                    if (!v) {
                        Py_DECREF(run);
                        PyErr_NoMemory();
                        goto done;
                    }
                    vals = v;
                    vcap = cap;
                }
                vals[seen.n] = run;
                if (omap_append(&seen, code, 0.0) < 0) {
                    Py_DECREF(run);
                    goto done;
                }
            }
            i = j;
        }
        else
            i++;
    }
#undef CH
    {
        /* the terms other than stop codes, in order; the word texts' references move to the output */
        Py_ssize_t m = seen.n ? seen.n : 1, k = 0;
        int64_t *codes = PyMem_Malloc(sizeof(int64_t) * m);
        PyObject **names = PyMem_Malloc(sizeof(PyObject *) * m);
        if (!codes || !names) {
            PyMem_Free(codes);
            PyMem_Free(names);
            PyErr_NoMemory();
            goto done;
        }
        for (int32_t p = 0; p < seen.n; p++) {
            if (kset_has(&s->stop_codes, seen.keys[p]))
                continue;
            codes[k] = seen.keys[p];
            names[k++] = vals[p];
            vals[p] = NULL;
        }
        *codes_out = codes;
        *names_out = names;
        *n_out = k;
        ret = 0;
    }
done:
    for (int32_t p = 0; p < seen.n; p++)
        Py_XDECREF(vals[p]);
    PyMem_Free(vals);
    omap_free(&seen);
    return ret;
}

static void
free_terms(int64_t *codes, PyObject **names, Py_ssize_t n)
{
    for (Py_ssize_t i = 0; i < n; i++)
        Py_XDECREF(names[i]);
    PyMem_Free(codes);
    PyMem_Free(names);
}

static PyObject *
Core_token_codes(Core *s, PyObject *text)
{
    int64_t *codes;
    PyObject **names, *out = NULL;
    Py_ssize_t n;
    if (terms_of(s, text, &codes, &names, &n) < 0)
        return NULL;
    out = PyDict_New();
    for (Py_ssize_t i = 0; out && i < n; i++) {
        PyObject *key = PyLong_FromLongLong(codes[i]);
        if (!key || PyDict_SetItem(out, key, names[i] ? names[i] : Py_None) < 0)
            Py_CLEAR(out);
        Py_XDECREF(key);
    }
    free_terms(codes, names, n);
    return out;
}

/* ---- a post joins: terms, the nearest cluster, counts, index ------------------------------------------------- */

/* TopicClusterer._count, _query, _nearest and _join's numeric part for a post's terms (``names[i]``: the text of a
 * word or tag term, else NULL): count them; when ``target`` is -1 find the nearest cluster (a new one when none
 * reaches the threshold); join it: counts, names, index, recent posts. The cluster's number, or -1 on error. */
static int64_t
join_terms(Core *s, const int64_t *keys, PyObject *const *names, Py_ssize_t n, int64_t target, double ts)
{
    int64_t result = -1;
    double *dfv = NULL, *qw = NULL, *qn = NULL, *qd = NULL, *sq = NULL;
    int64_t *qc = NULL;
    Ranked *order = NULL;
    Cluster *c = NULL;
    count_terms(s, keys, n, s->now);
    int64_t num = target;
    if (num >= 0 && !(c = get_cluster(s, num)))
        goto done;
    if (num < 0) {
        Py_ssize_t m = n ? n : 1;
        dfv = PyMem_Malloc(sizeof(double) * m);
        qw = PyMem_Malloc(sizeof(double) * m);
        qn = PyMem_Malloc(sizeof(double) * m);
        qd = PyMem_Malloc(sizeof(double) * m);
        sq = PyMem_Malloc(sizeof(double) * m);
        qc = PyMem_Malloc(sizeof(int64_t) * m);
        order = PyMem_Malloc(sizeof(Ranked) * m);
        if (!dfv || !qw || !qn || !qd || !sq || !qc || !order) {
            PyErr_NoMemory();
            goto done;
        }
        double inv = 1.0 / s->grow;
        for (Py_ssize_t i = 0; i < n; i++)
            dfv[i] = df_of(s, keys[i], inv);
        /* _query: IDF weights of the terms seen in min_df posts, the post_terms heaviest */
        double docs = s->docs / s->grow + 1.0, floor = (double)s->min_df - 0.5;
        Py_ssize_t nq = 0;
        for (Py_ssize_t i = 0; i < n; i++) {
            if (dfv[i] >= floor) {
                double idf = log(docs / (dfv[i] + 0.5));
                if (idf > 0.0) {
                    order[nq].v = idf * factor(s, keys[i]);
                    order[nq].i = i;
                    nq++;
                }
            }
        }
        if (nq > s->post_terms) {
            top_k(order, nq, s->post_terms);
            nq = s->post_terms;
        }
        for (Py_ssize_t k = 0; k < nq; k++) {
            qc[k] = keys[order[k].i];
            qw[k] = order[k].v;
            qd[k] = dfv[order[k].i];
            sq[k] = qw[k] * qw[k];
        }
        double norm = sqrt(py_sum(sq, nq));
        if (norm != 0.0) {
            for (Py_ssize_t k = 0; k < nq; k++)
                qn[k] = qw[k] / norm;
            int64_t best;
            double sim;
            if (nearest(s, qc, qn, qd, nq, qw, -1, s->threshold, &best, &sim) < 0)
                goto done;
            if (best >= 0 && !(sim < s->threshold)) {
                num = best;
                c = cl_get(s, num);
            }
        }
    }
    if (!c) { /* a new cluster: its post's terms, compactly */
        num = s->next;
        c = PyMem_Calloc(1, sizeof(Cluster));
        if (!c) {
            PyErr_NoMemory();
            goto done;
        }
        c->num = num;
        c->one = 1;
        c->scale_t = ts;
        c->mass = 1.0;
        c->norm = 0.0;
        c->norm_docs = -1.0;
        c->norm_mass = -1.0;
        c->names = PyDict_New();
        if (!c->names || omap_init(&c->m, (int32_t)n) < 0) {
            cluster_free(c);
            goto done;
        }
        for (Py_ssize_t i = 0; i < n; i++)
            omap_append(&c->m, keys[i], 1.0);
        if (cl_put(s, c) < 0) {
            cluster_free(c);
            goto done;
        }
        s->next++;
    }
    else if (add_counts(s, c, keys, NULL, 1.0, n, ts, 1.0) < 0)
        goto done;
    /* names of word and tag terms (a CJK bigram's code holds its characters) */
    for (Py_ssize_t i = 0; i < n; i++) {
        if (keys[i] < TAG_FLAG || !names[i])
            continue;
        PyObject *key = PyLong_FromLongLong(keys[i]);
        int r = key ? PyDict_SetItem(c->names, key, names[i]) : -1;
        Py_XDECREF(key);
        if (r < 0)
            goto done;
    }
    /* index the post's terms: all of them for a new cluster, else those that survived pruning */
    for (Py_ssize_t i = 0; i < n; i++)
        if ((c->one || omap_find(&c->m, keys[i]) >= 0) && post(s, keys[i], num) < 0)
            goto done;
    if (recent_push(s, num, keys, n) < 0)
        goto done;
    result = num;
done:
    PyMem_Free(dfv);
    PyMem_Free(qw);
    PyMem_Free(qn);
    PyMem_Free(qd);
    PyMem_Free(sq);
    PyMem_Free(qc);
    PyMem_Free(order);
    return result;
}

/* TopicClusterer._merge_neighbours, one step: refresh the cluster's norm from its centroid and find the neighbour it
 * should absorb (the nearest by its merge_terms heaviest terms, at merge_threshold or above); *other -1 when none. */
static int
merge_step(Core *s, Cluster *c, int64_t *other_out)
{
    int64_t num = c->num;
    Py_ssize_t n = c->m.n ? c->m.n : 1;
    int64_t *wc = PyMem_Malloc(sizeof(int64_t) * n), *qc = PyMem_Malloc(sizeof(int64_t) * n);
    double *ww = PyMem_Malloc(sizeof(double) * n), *wd = PyMem_Malloc(sizeof(double) * n);
    double *sq = PyMem_Malloc(sizeof(double) * n), *qw = PyMem_Malloc(sizeof(double) * n);
    double *qd = PyMem_Malloc(sizeof(double) * n);
    Ranked *order = PyMem_Malloc(sizeof(Ranked) * n);
    int ret = -1;
    if (!wc || !qc || !ww || !wd || !sq || !qw || !qd || !order) {
        PyErr_NoMemory();
        goto done;
    }
    Py_ssize_t k = centroid(s, c, (double)s->min_df - 0.5, wc, ww, wd);
    for (Py_ssize_t i = 0; i < k; i++)
        sq[i] = ww[i] * ww[i];
    double norm = sqrt(py_sum(sq, k));
    set_norm(s, c, norm);
    int64_t other = -1;
    if (norm != 0.0) {
        for (Py_ssize_t i = 0; i < k; i++) {
            order[i].v = ww[i];
            order[i].i = i;
        }
        Py_ssize_t nq = k;
        if (k > s->merge_terms) { /* heapq.nlargest; otherwise the weights' own order */
            top_k(order, k, s->merge_terms);
            nq = s->merge_terms;
        }
        for (Py_ssize_t i = 0; i < nq; i++) {
            qc[i] = wc[order[i].i];
            qw[i] = ww[order[i].i] / norm;
            qd[i] = wd[order[i].i];
        }
        double sim;
        if (nearest(s, qc, qw, qd, nq, NULL, num, s->merge_threshold, &other, &sim) < 0)
            goto done;
        if (other >= 0 && sim < s->merge_threshold)
            other = -1;
    }
    *other_out = other;
    ret = 0;
done:
    PyMem_Free(wc);
    PyMem_Free(qc);
    PyMem_Free(ww);
    PyMem_Free(wd);
    PyMem_Free(sq);
    PyMem_Free(qw);
    PyMem_Free(qd);
    PyMem_Free(order);
    return ret;
}

/* ---- aliases of absorbed clusters ---------------------------------------------------------------------------- */

static ASlot *
al_find(Core *s, int64_t num)
{
    uint32_t mask = (1u << s->al_bits) - 1, i = hash_at(num, s->al_bits);
    for (;;) {
        ASlot *e = &s->al[i];
        if (e->key == num)
            return e;
        if (e->key == EMPTY)
            return NULL;
        i = (i + 1) & mask;
    }
}

/* alias.get(num, num) */
static inline int64_t
alias_of(Core *s, int64_t num)
{
    if (s->al_n == 0)
        return num;
    ASlot *e = al_find(s, num);
    return e ? e->target : num;
}

/* TopicClusterer._follow: the live cluster a number resolves to, or -1 */
static inline int64_t
follow(Core *s, int64_t num)
{
    num = alias_of(s, num);
    return cl_get(s, num) ? num : -1;
}

static int
al_set(Core *s, int64_t num, int64_t target, double until)
{
    ASlot *e = al_find(s, num);
    if (!e) {
        if (2 * (s->al_n + 1) > ((Py_ssize_t)1 << s->al_bits)) {
            int bits = s->al_bits + 1;
            ASlot *tab = PyMem_Malloc(sizeof(ASlot) * ((size_t)1 << bits));
            if (!tab) {
                PyErr_NoMemory();
                return -1;
            }
            for (Py_ssize_t i = 0; i < ((Py_ssize_t)1 << bits); i++)
                tab[i].key = EMPTY;
            uint32_t mask = (1u << bits) - 1;
            for (Py_ssize_t k = 0; k < ((Py_ssize_t)1 << s->al_bits); k++) {
                if (s->al[k].key == EMPTY)
                    continue;
                uint32_t i = hash_at(s->al[k].key, bits);
                while (tab[i].key != EMPTY)
                    i = (i + 1) & mask;
                tab[i] = s->al[k];
            }
            PyMem_Free(s->al);
            s->al = tab;
            s->al_bits = bits;
        }
        uint32_t mask = (1u << s->al_bits) - 1, i = hash_at(num, s->al_bits);
        while (s->al[i].key != EMPTY)
            i = (i + 1) & mask;
        e = &s->al[i];
        e->key = num;
        s->al_n++;
    }
    e->target = target;
    e->until = until;
    return 0;
}

static void
al_del(Core *s, int64_t num)
{
    uint32_t mask = (1u << s->al_bits) - 1, i = hash_at(num, s->al_bits);
    for (;;) {
        if (s->al[i].key == num)
            break;
        if (s->al[i].key == EMPTY)
            return;
        i = (i + 1) & mask;
    }
    uint32_t j = i;
    for (;;) {
        j = (j + 1) & mask;
        if (s->al[j].key == EMPTY)
            break;
        uint32_t k = hash_at(s->al[j].key, s->al_bits);
        if ((i <= j) ? (i < k && k <= j) : (i < k || k <= j))
            continue;
        s->al[i] = s->al[j];
        i = j;
    }
    s->al[i].key = EMPTY;
    s->al_n--;
}

/* heapq on (until, num) tuples */
static inline int
heap_less(const HeapItem *a, const HeapItem *b)
{
    return a->until < b->until || (a->until == b->until && a->num < b->num);
}

static int
heap_push(Core *s, double until, int64_t num)
{
    if (s->h_n >= s->h_cap) {
        Py_ssize_t cap = s->h_cap ? 2 * s->h_cap : 64;
        HeapItem *h = PyMem_Realloc(s->heap, sizeof(HeapItem) * cap);
        if (!h) {
            PyErr_NoMemory();
            return -1;
        }
        s->heap = h;
        s->h_cap = cap;
    }
    HeapItem item = {until, num};
    Py_ssize_t i = s->h_n++;
    while (i > 0) {
        Py_ssize_t parent = (i - 1) / 2;
        if (!heap_less(&item, &s->heap[parent]))
            break;
        s->heap[i] = s->heap[parent];
        i = parent;
    }
    s->heap[i] = item;
    return 0;
}

static HeapItem
heap_pop(Core *s)
{
    HeapItem top = s->heap[0], last = s->heap[--s->h_n];
    Py_ssize_t i = 0, n = s->h_n;
    for (;;) {
        Py_ssize_t child = 2 * i + 1;
        if (child >= n)
            break;
        if (child + 1 < n && heap_less(&s->heap[child + 1], &s->heap[child]))
            child++;
        if (!heap_less(&s->heap[child], &last))
            break;
        s->heap[i] = s->heap[child];
        i = child;
    }
    if (n > 0)
        s->heap[i] = last;
    return top;
}

static int
ab_append(Cluster *c, int64_t num)
{
    if (c->ab_n >= c->ab_cap) {
        Py_ssize_t cap = c->ab_cap ? 2 * c->ab_cap : 4;
        int64_t *ab = PyMem_Realloc(c->ab, sizeof(int64_t) * cap);
        if (!ab) {
            PyErr_NoMemory();
            return -1;
        }
        c->ab = ab;
        c->ab_cap = cap;
    }
    c->ab[c->ab_n++] = num;
    return 0;
}

/* ---- members and samples ------------------------------------------------------------------------------------- */

static int
mem_append(Cluster *c, PyObject *pid, double ts)
{
    if (c->mem_head + c->mem_n >= c->mem_cap) {
        if (c->mem_head > 0 && c->mem_head >= c->mem_cap / 2) { /* most of the room is before the members */
            memmove(c->mem, c->mem + c->mem_head, sizeof(Member) * c->mem_n);
            c->mem_head = 0;
        }
        else {
            Py_ssize_t cap = c->mem_cap ? 2 * c->mem_cap : 4;
            Member *mem = PyMem_Realloc(c->mem, sizeof(Member) * cap);
            if (!mem) {
                PyErr_NoMemory();
                return -1;
            }
            c->mem = mem;
            c->mem_cap = cap;
        }
    }
    Py_INCREF(pid);
    c->mem[c->mem_head + c->mem_n].pid = pid;
    c->mem[c->mem_head + c->mem_n].ts = ts;
    c->mem_n++;
    return 0;
}

/* _join's samples: the first SAMPLES members; then the first half stays and the rest rotates through the latest. */
static void
sample_put(Cluster *c, PyObject *pid, double ts, PyObject *text)
{
    Py_INCREF(pid);
    Py_INCREF(text);
    if (c->ns < SAMPLES) {
        c->samples[c->ns].pid = pid;
        c->samples[c->ns].text = text;
        c->samples[c->ns].ts = ts;
        c->ns++;
        return;
    }
    Sample *x = &c->samples[SAMPLES / 2 + c->mem_n % (SAMPLES / 2)];
    PyObject *old_pid = x->pid, *old_text = x->text;
    x->pid = pid;
    x->text = text;
    x->ts = ts;
    Py_DECREF(old_pid);
    Py_DECREF(old_text);
}

/* ---- merging and dropping ------------------------------------------------------------------------------------ */

/* TopicClusterer._drop: forget a cluster, its index entries and the ids of clusters it had absorbed. */
static void
drop_cluster(Core *s, Cluster *c)
{
    for (int32_t k = 0; k < c->m.n; k++)
        unpost(s, c->m.keys[k], c->num);
    cl_del(s, c->num);
    for (Py_ssize_t k = 0; k < c->ab_n; k++)
        al_del(s, c->ab[k]);
    cluster_free(c);
}

typedef struct {
    double ts;
    Py_ssize_t i;
} ByTime;

static int
cmp_by_time(const void *a, const void *b)
{
    const ByTime *x = a, *y = b;
    if (x->ts < y->ts)
        return -1;
    if (y->ts < x->ts)
        return 1;
    return (x->i > y->i) - (x->i < y->i);
}

/* TopicClusterer._absorb: move ``gone``'s counts, names, index entries, members and samples into ``keep``; gone's
 * number (and those it had absorbed) resolve to ``keep`` while posts that joined under them may be in the window. */
static int
absorb(Core *s, Cluster *keep, Cluster *gone)
{
    Py_ssize_t total = keep->mem_n + gone->mem_n;
    Member *mem = PyMem_Malloc(sizeof(Member) * (total ? total : 1));
    ByTime *by = PyMem_Malloc(sizeof(ByTime) * (total ? total : 1));
    if (!mem || !by) {
        PyMem_Free(mem);
        PyMem_Free(by);
        PyErr_NoMemory();
        return -1;
    }
    /* gone.terms(): its counts, or each of its post's terms counted ``mass`` */
    int32_t n = gone->m.n;
    if (add_counts(s, keep, gone->m.keys, gone->one ? NULL : gone->m.vals, gone->mass, n, gone->scale_t,
                   gone->mass) < 0)
        goto fail;
    keep->norm_docs = -1.0;
    if (PyDict_Update(keep->names, gone->names) < 0)
        goto fail;
    for (int32_t k = 0; k < n; k++)
        unpost(s, gone->m.keys[k], gone->num);
    for (int32_t k = 0; k < n; k++)
        if (omap_find(&keep->m, gone->m.keys[k]) >= 0 && post(s, gone->m.keys[k], keep->num) < 0)
            goto fail;
    cl_del(s, gone->num);
    /* members: sorted(keep.members + gone.members, key=ts), stable; the references move */
    for (Py_ssize_t k = 0; k < keep->mem_n; k++) {
        by[k].ts = keep->mem[keep->mem_head + k].ts;
        by[k].i = k;
    }
    for (Py_ssize_t k = 0; k < gone->mem_n; k++) {
        by[keep->mem_n + k].ts = gone->mem[gone->mem_head + k].ts;
        by[keep->mem_n + k].i = keep->mem_n + k;
    }
    qsort(by, total, sizeof(ByTime), cmp_by_time);
    for (Py_ssize_t k = 0; k < total; k++) {
        Py_ssize_t i = by[k].i;
        mem[k] = i < keep->mem_n ? keep->mem[keep->mem_head + i] : gone->mem[gone->mem_head + i - keep->mem_n];
    }
    /* the alias lasts until the latest of gone's members leaves (the first maximum, as max()) */
    double until = s->now;
    for (Py_ssize_t k = 0; k < gone->mem_n; k++) {
        double ts = gone->mem[gone->mem_head + k].ts;
        if (k == 0 || ts > until)
            until = ts;
    }
    PyMem_Free(keep->mem);
    keep->mem = mem;
    keep->mem_head = 0;
    keep->mem_n = keep->mem_cap = total;
    gone->mem_n = 0;
    mem = NULL;
    /* samples: (keep.samples + gone.samples)[:SAMPLES] */
    for (int k = 0; k < gone->ns; k++) {
        if (keep->ns < SAMPLES)
            keep->samples[keep->ns++] = gone->samples[k];
        else {
            Py_DECREF(gone->samples[k].pid);
            Py_DECREF(gone->samples[k].text);
        }
    }
    gone->ns = 0;
    /* gone's number and those it had absorbed now resolve to keep */
    for (Py_ssize_t k = -1; k < gone->ab_n; k++) {
        int64_t num = k < 0 ? gone->num : gone->ab[k];
        ASlot *e = al_find(s, num);
        double until_num = (e && e->until > until) ? e->until : until;
        if (al_set(s, num, keep->num, until_num) < 0 || heap_push(s, until_num, num) < 0 || ab_append(keep, num) < 0)
            goto fail;
    }
    cluster_free(gone);
    PyMem_Free(by);
    return 0;
fail:
    PyMem_Free(mem);
    PyMem_Free(by);
    return -1;
}

/* ---- the window ---------------------------------------------------------------------------------------------- */

static int
cmp_int64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* TopicClusterer.expire without the duplicate index: the number of clusters dropped, or -1 on error. */
static Py_ssize_t
expire_to(Core *s, double now)
{
    if (now > s->now)
        s->now = now;
    double cutoff = s->now - s->tau;
    Py_ssize_t dropped = 0;
    if (s->o_len && s->order[s->o_head].ts < cutoff) {
        int64_t one, *touched = &one;
        Py_ssize_t nt = 0, cap = 1;
        while (s->o_len && s->order[s->o_head].ts < cutoff) {
            int64_t num = alias_of(s, s->order[s->o_head].num);
            s->o_head = (s->o_head + 1) % s->o_cap;
            s->o_len--;
            if (!cl_get(s, num))
                continue;
            if (nt >= cap) {
                int64_t *t = PyMem_Malloc(sizeof(int64_t) * 2 * cap);
                if (!t) {
                    if (touched != &one)
                        PyMem_Free(touched);
                    PyErr_NoMemory();
                    return -1;
                }
                memcpy(t, touched, sizeof(int64_t) * nt);
                if (touched != &one)
                    PyMem_Free(touched);
                touched = t;
                cap *= 2;
            }
            touched[nt++] = num;
        }
        if (nt > 1)
            qsort(touched, nt, sizeof(int64_t), cmp_int64);
        int err = 0;
        for (Py_ssize_t t = 0; t < nt && !err; t++) {
            if (t > 0 && touched[t] == touched[t - 1])
                continue;
            int64_t num = touched[t];
            Cluster *c = cl_get(s, num);
            Py_ssize_t k = 0;
            while (k < c->mem_n && c->mem[c->mem_head + k].ts < cutoff) {
                PyObject *pid = c->mem[c->mem_head + k].pid;
                PyObject *home = PyDict_GetItemWithError(s->post_cluster, pid);
                int64_t h = -1;
                if (home) {
                    h = PyLong_AsLongLong(home);
                    if (h == -1 && PyErr_Occurred()) {
                        err = 1;
                        break;
                    }
                }
                else if (PyErr_Occurred()) {
                    err = 1;
                    break;
                }
                int64_t target = alias_of(s, h);
                /* as in Python: its cluster's entry, or one naming a cluster that is gone */
                if ((target == num || (home && !cl_get(s, target))) && PyDict_DelItem(s->post_cluster, pid) < 0) {
                    err = 1;
                    break;
                }
                k++;
            }
            for (Py_ssize_t i = 0; i < k; i++)
                Py_DECREF(c->mem[c->mem_head + i].pid);
            c->mem_head += k;
            c->mem_n -= k;
            if (c->mem_n == 0)
                c->mem_head = 0;
            int kept = 0;
            for (int i = 0; i < c->ns; i++) {
                if (c->samples[i].ts >= cutoff)
                    c->samples[kept++] = c->samples[i];
                else {
                    Py_DECREF(c->samples[i].pid);
                    Py_DECREF(c->samples[i].text);
                }
            }
            c->ns = kept;
            if (!err && c->mem_n == 0) {
                drop_cluster(s, c);
                dropped++;
            }
        }
        if (touched != &one)
            PyMem_Free(touched);
        if (err)
            return -1;
    }
    /* Absorbed ids no post of the window joined under any more stop resolving. */
    while (s->h_n && s->heap[0].until < cutoff) {
        HeapItem top = heap_pop(s);
        ASlot *e = al_find(s, top.num);
        if (e && e->until == top.until) {
            int64_t target = e->target;
            al_del(s, top.num);
            Cluster *c = cl_get(s, target);
            if (c) {
                for (Py_ssize_t k = 0; k < c->ab_n; k++) {
                    if (c->ab[k] == top.num) {
                        memmove(c->ab + k, c->ab + k + 1, sizeof(int64_t) * (c->ab_n - k - 1));
                        c->ab_n--;
                        break;
                    }
                }
            }
        }
    }
    return dropped;
}

static int
order_push(Core *s, double ts, int64_t num)
{
    if (s->o_len >= s->o_cap) {
        Py_ssize_t cap = s->o_cap ? 2 * s->o_cap : 1024;
        OrderItem *o = PyMem_Malloc(sizeof(OrderItem) * cap);
        if (!o) {
            PyErr_NoMemory();
            return -1;
        }
        for (Py_ssize_t k = 0; k < s->o_len; k++)
            o[k] = s->order[(s->o_head + k) % s->o_cap];
        PyMem_Free(s->order);
        s->order = o;
        s->o_head = 0;
        s->o_cap = cap;
    }
    OrderItem *e = &s->order[(s->o_head + s->o_len) % s->o_cap];
    e->ts = ts;
    e->num = num;
    s->o_len++;
    return 0;
}

/* The terms of a cleaned text, kept for the latest codes_kept texts (reposts and copies repeat a text). */
static Cached *
cached_terms(Core *s, PyObject *cleaned)
{
    PyObject *slot = PyDict_GetItemWithError(s->cache_index, cleaned);
    if (slot)
        return &s->cache[PyLong_AsSsize_t(slot)];
    if (PyErr_Occurred())
        return NULL;
    int64_t *codes;
    PyObject **names;
    Py_ssize_t n;
    if (terms_of(s, cleaned, &codes, &names, &n) < 0)
        return NULL;
    if (s->c_len == s->c_cap) { /* first in, first out */
        Cached *old = &s->cache[s->c_head];
        int r = PyDict_DelItem(s->cache_index, old->key);
        Py_CLEAR(old->key);
        free_terms(old->codes, old->names, old->n);
        old->codes = NULL;
        old->names = NULL;
        old->n = 0;
        s->c_head = (s->c_head + 1) % s->c_cap;
        s->c_len--;
        if (r < 0) {
            free_terms(codes, names, n);
            return NULL;
        }
    }
    Py_ssize_t at = (s->c_head + s->c_len) % s->c_cap;
    PyObject *index = PyLong_FromSsize_t(at);
    if (!index || PyDict_SetItem(s->cache_index, cleaned, index) < 0) {
        Py_XDECREF(index);
        free_terms(codes, names, n);
        return NULL;
    }
    Py_DECREF(index);
    Cached *e = &s->cache[at];
    Py_INCREF(cleaned);
    e->key = cleaned;
    e->codes = codes;
    e->names = names;
    e->n = n;
    s->c_len++;
    return e;
}

PyDoc_STRVAR(Core_add_post_doc,
             "add_post(post_id, text, cleaned, ts, duplicate_of) -> str\n\n"
             "TopicClusterer.add after the duplicate index and clean(): expire to ``ts``, the terms of ``cleaned`` "
             "(and the tags of ``text``), the cluster of ``duplicate_of`` or the nearest or a new one, joining it, "
             "merging. Returns the cluster's id.");

static PyObject *
Core_add_post(Core *s, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "add_post takes 5 arguments");
        return NULL;
    }
    PyObject *pid = args[0], *text = args[1], *cleaned = args[2], *dup = args[4];
    if (!PyUnicode_Check(text) || !PyUnicode_Check(cleaned)) {
        PyErr_SetString(PyExc_TypeError, "text and cleaned are str");
        return NULL;
    }
    double ts = PyFloat_AsDouble(args[3]);
    if (ts == -1.0 && PyErr_Occurred())
        return NULL;
    if (expire_to(s, ts) < 0)
        return NULL;
    Cached *terms = cached_terms(s, cleaned);
    if (!terms)
        return NULL;
    const int64_t *keys = terms->codes;
    PyObject *const *names = terms->names;
    Py_ssize_t n = terms->n;
    int64_t *tag_keys = NULL;
    PyObject **tag_names = NULL, *tags = NULL, *result = NULL;
    Py_ssize_t len = PyUnicode_GET_LENGTH(text);
    if (PyUnicode_FindChar(text, '#', 0, len, 1) >= 0 || PyUnicode_FindChar(text, 0xFF03, 0, len, 1) >= 0) {
        /* the kept terms are shared: tags go into a copy (a tag's code is that of "#" + tag; its name the tag) */
        tags = PyObject_CallOneArg(s->hashtags, text);
        if (!tags)
            return NULL;
        if (!PyList_Check(tags)) {
            PyErr_SetString(PyExc_TypeError, "hashtags() returns a list");
            goto done;
        }
        Py_ssize_t nt = PyList_GET_SIZE(tags);
        tag_keys = PyMem_Malloc(sizeof(int64_t) * (n + nt + 1));
        tag_names = PyMem_Malloc(sizeof(PyObject *) * (n + nt + 1));
        if (!tag_keys || !tag_names) {
            PyErr_NoMemory();
            goto done;
        }
        memcpy(tag_keys, keys, sizeof(int64_t) * n);
        memcpy(tag_names, names, sizeof(PyObject *) * n);
        Py_ssize_t m = n;
        for (Py_ssize_t t = 0; t < nt; t++) {
            PyObject *tag = PyList_GET_ITEM(tags, t);
            Py_ssize_t size;
            const char *utf8 = PyUnicode_Check(tag) ? PyUnicode_AsUTF8AndSize(tag, &size) : NULL;
            if (!utf8) {
                if (!PyErr_Occurred())
                    PyErr_SetString(PyExc_TypeError, "a tag is a str");
                goto done;
            }
            int64_t code = TAG_FLAG | (int64_t)crc32_more(crc32_of("#", 1), utf8, size);
            Py_ssize_t at = 0;
            while (at < m && tag_keys[at] != code)
                at++;
            if (at == m) {
                tag_keys[m] = code;
                m++;
            }
            tag_names[at] = tag;
        }
        keys = tag_keys;
        names = tag_names;
        n = m;
    }
    int64_t target = -1;
    if (dup != Py_None) {
        PyObject *home = PyDict_GetItemWithError(s->post_cluster, dup);
        if (home) {
            long long h = PyLong_AsLongLong(home);
            if (h == -1 && PyErr_Occurred())
                goto done;
            target = follow(s, h);
        }
        else if (PyErr_Occurred())
            goto done;
    }
    int64_t num = join_terms(s, keys, names, n, target, ts);
    if (num < 0)
        goto done;
    Cluster *c = cl_get(s, num);
    if (mem_append(c, pid, ts) < 0)
        goto done;
    sample_put(c, pid, ts, cleaned);
    {
        PyObject *v = PyLong_FromLongLong(num);
        int r = v ? PyDict_SetItem(s->post_cluster, pid, v) : -1;
        Py_XDECREF(v);
        if (r < 0 || order_push(s, ts, num) < 0)
            goto done;
    }
    Py_ssize_t size = c->mem_n;
    if (size >= 2 && (size & (size - 1)) == 0) {
        for (;;) {
            int64_t other;
            if (merge_step(s, c, &other) < 0)
                goto done;
            if (other < 0)
                break;
            Cluster *a = cl_get(s, other);
            Cluster *keep = a->num < c->num ? a : c, *gone = a->num < c->num ? c : a;
            if (absorb(s, keep, gone) < 0)
                goto done;
            c = keep;
        }
    }
    result = PyUnicode_FromFormat("c%lld", (long long)c->num);
done:
    Py_XDECREF(tags);
    PyMem_Free(tag_keys);
    PyMem_Free(tag_names);
    return result;
}

PyDoc_STRVAR(Core_expire_doc, "expire(now) -> int\n\nTopicClusterer.expire but the duplicate index.");

static PyObject *
Core_expire(Core *s, PyObject *arg)
{
    double now = PyFloat_AsDouble(arg);
    if (now == -1.0 && PyErr_Occurred())
        return NULL;
    Py_ssize_t dropped = expire_to(s, now);
    return dropped < 0 ? NULL : PyLong_FromSsize_t(dropped);
}

static int
num_arg(PyObject *arg, int64_t *num)
{
    long long v = PyLong_AsLongLong(arg);
    if (v == -1 && PyErr_Occurred())
        return -1;
    *num = v;
    return 0;
}

PyDoc_STRVAR(Core_follow_doc, "follow(num) -> int\n\nThe live cluster a number resolves to, or -1.");

static PyObject *
Core_follow(Core *s, PyObject *arg)
{
    int64_t num;
    if (num_arg(arg, &num) < 0)
        return NULL;
    return PyLong_FromLongLong(follow(s, num));
}

PyDoc_STRVAR(Core_cluster_of_doc,
             "cluster_of(post_id) -> int\n\nThe live cluster a post in the window resolves to, or -1.");

static PyObject *
Core_cluster_of(Core *s, PyObject *pid)
{
    PyObject *home = PyDict_GetItemWithError(s->post_cluster, pid);
    if (!home)
        return PyErr_Occurred() ? NULL : PyLong_FromLong(-1);
    int64_t num;
    if (num_arg(home, &num) < 0)
        return NULL;
    return PyLong_FromLongLong(follow(s, num));
}

PyDoc_STRVAR(Core_absorbed_doc, "absorbed(num) -> list\n\nNumbers of the clusters merged into a live one.");

static PyObject *
Core_absorbed(Core *s, PyObject *arg)
{
    int64_t num;
    if (num_arg(arg, &num) < 0)
        return NULL;
    Cluster *c = get_cluster(s, num);
    if (!c)
        return NULL;
    PyObject *out = PyList_New(c->ab_n);
    for (Py_ssize_t k = 0; out && k < c->ab_n; k++) {
        PyObject *v = PyLong_FromLongLong(c->ab[k]);
        if (!v) {
            Py_CLEAR(out);
            break;
        }
        PyList_SET_ITEM(out, k, v);
    }
    return out;
}

PyDoc_STRVAR(Core_members_doc,
             "members(num) -> list\n\n(post id, ts) of a live cluster's members, in the order they are kept.");

static PyObject *
Core_members(Core *s, PyObject *arg)
{
    int64_t num;
    if (num_arg(arg, &num) < 0)
        return NULL;
    Cluster *c = get_cluster(s, num);
    if (!c)
        return NULL;
    PyObject *out = PyList_New(c->mem_n);
    for (Py_ssize_t k = 0; out && k < c->mem_n; k++) {
        Member *m = &c->mem[c->mem_head + k];
        PyObject *v = Py_BuildValue("(Od)", m->pid, m->ts);
        if (!v) {
            Py_CLEAR(out);
            break;
        }
        PyList_SET_ITEM(out, k, v);
    }
    return out;
}

PyDoc_STRVAR(Core_samples_doc,
             "samples(num) -> list\n\n(post id, ts, cleaned text) of the member texts a live cluster keeps.");

static PyObject *
Core_samples(Core *s, PyObject *arg)
{
    int64_t num;
    if (num_arg(arg, &num) < 0)
        return NULL;
    Cluster *c = get_cluster(s, num);
    if (!c)
        return NULL;
    PyObject *out = PyList_New(c->ns);
    for (int k = 0; out && k < c->ns; k++) {
        PyObject *v = Py_BuildValue("(OdO)", c->samples[k].pid, c->samples[k].ts, c->samples[k].text);
        if (!v) {
            Py_CLEAR(out);
            break;
        }
        PyList_SET_ITEM(out, k, v);
    }
    return out;
}

PyDoc_STRVAR(Core_sizes_doc, "sizes(min_size) -> list\n\n(members, num) of the live clusters with min_size members "
                             "or more, in no particular order.");

static PyObject *
Core_sizes(Core *s, PyObject *arg)
{
    Py_ssize_t min_size = PyLong_AsSsize_t(arg);
    if (min_size == -1 && PyErr_Occurred())
        return NULL;
    PyObject *out = PyList_New(0);
    for (Py_ssize_t k = 0; out && k < ((Py_ssize_t)1 << s->cl_bits); k++) {
        if (s->cl[k].key == EMPTY || s->cl[k].c->mem_n < min_size)
            continue;
        PyObject *v = Py_BuildValue("(nL)", s->cl[k].c->mem_n, (long long)s->cl[k].key);
        if (!v || PyList_Append(out, v) < 0)
            Py_CLEAR(out);
        Py_XDECREF(v);
    }
    return out;
}

PyDoc_STRVAR(Core_post_clusters_doc,
             "post_clusters() -> dict\n\nA copy of the map post id -> number of the cluster it joined (for tests).");

static PyObject *
Core_post_clusters(Core *s, PyObject *Py_UNUSED(ignored))
{
    return PyDict_Copy(s->post_cluster);
}

PyDoc_STRVAR(Core_clock_doc, "clock() -> float\n\nThe newest time seen (the window ends there).");

static PyObject *
Core_clock(Core *s, PyObject *Py_UNUSED(ignored))
{
    return PyFloat_FromDouble(s->now);
}

PyDoc_STRVAR(Core_count_doc, "count() -> int\n\nLive clusters.");

static PyObject *
Core_count(Core *s, PyObject *Py_UNUSED(ignored))
{
    return PyLong_FromSsize_t(s->cl_n);
}

static PyMethodDef Core_methods[] = {
    {"token_codes", (PyCFunction)Core_token_codes, METH_O, Core_token_codes_doc},
    {"add_post", (PyCFunction)(void (*)(void))Core_add_post, METH_FASTCALL, Core_add_post_doc},
    {"expire", (PyCFunction)Core_expire, METH_O, Core_expire_doc},
    {"follow", (PyCFunction)Core_follow, METH_O, Core_follow_doc},
    {"cluster_of", (PyCFunction)Core_cluster_of, METH_O, Core_cluster_of_doc},
    {"absorbed", (PyCFunction)Core_absorbed, METH_O, Core_absorbed_doc},
    {"members", (PyCFunction)Core_members, METH_O, Core_members_doc},
    {"samples", (PyCFunction)Core_samples, METH_O, Core_samples_doc},
    {"sizes", (PyCFunction)Core_sizes, METH_O, Core_sizes_doc},
    {"clock", (PyCFunction)Core_clock, METH_NOARGS, Core_clock_doc},
    {"post_clusters", (PyCFunction)Core_post_clusters, METH_NOARGS, Core_post_clusters_doc},
    {"count", (PyCFunction)Core_count, METH_NOARGS, Core_count_doc},
    {"centroid", (PyCFunction)Core_centroid, METH_VARARGS, Core_centroid_doc},
    {"names", (PyCFunction)Core_names, METH_O, Core_names_doc},
    {"shared_terms", (PyCFunction)Core_shared_terms, METH_VARARGS, Core_shared_terms_doc},
    {"stats", (PyCFunction)Core_stats, METH_NOARGS, Core_stats_doc},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject CoreType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "monitor.analysis._cluster_c.Core",
    .tp_doc = PyDoc_STR("The numeric state and inner loops of TopicClusterer (see cluster.py)."),
    .tp_basicsize = sizeof(Core),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Core_init,
    .tp_dealloc = (destructor)Core_dealloc,
    .tp_methods = Core_methods,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "monitor.analysis._cluster_c",
    .m_doc = PyDoc_STR("C core of the topic clusterer (monitor.analysis.cluster)."),
    .m_size = -1,
};

PyMODINIT_FUNC
PyInit__cluster_c(void)
{
    crc_init();
    if (PyType_Ready(&CoreType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (!m)
        return NULL;
    Py_INCREF(&CoreType);
    if (PyModule_AddObject(m, "Core", (PyObject *)&CoreType) < 0) {
        Py_DECREF(&CoreType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
