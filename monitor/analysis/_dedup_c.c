/* The near-duplicate index's core in C: the same algorithm as monitor/analysis/dedup.py, with the same answers.
 *
 * Everything after cleaning runs here: bigram hashes, the MinHash sketch with optimal densification, the bucket
 * table, verification, the 64-bit BLAKE2b digest of exact copies, the copies' bookkeeping and eviction. Cleaning
 * (regular expressions) stays in Python: the ``clean`` function is called back when no cleaned text is given.
 *
 * Exactness. Every number that decides an answer is computed as CPython 3.11 computes it:
 *  - a bigram's hash is hash((a, b)) of its two code points, the sketch's band keys hash((band, *values)): the
 *    xxHash-based tuple hash of Objects/tupleobject.c over the item hashes, an int's hash being its value mod
 *    2**61 - 1 with its sign (-1 becomes -2);
 *  - the bucket table is the same open-addressing table (same sizes, probing, tombstones and rehash), so a bucket
 *    lists its posts in the same order and a full bucket keeps the same ones;
 *  - candidates are tried in the same order (timestamp, then post number), similarities are the same IEEE divisions
 *    and are rounded to 4 digits by CPython's own float formatting (round(x, 4) uses the same dtoa);
 *  - the digest is BLAKE2b (RFC 7693) with an 8-byte output over the UTF-8 of the text without spaces, read as a
 *    little-endian integer, as hashlib.blake2b(..., digest_size=8) gives it.
 * Timestamps are kept as C doubles (Python floats); post ids and short texts are Python objects held by reference.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <math.h>
#include <stdint.h>
#include <string.h>

#define CORE_VERSION 1

/* ---------------------------------------------------------------------------------------------------------------
 * CPython 3.11's int and tuple hashes (Objects/longobject.c, Objects/tupleobject.c), 64-bit Py_hash_t. */

#define XXPRIME_1 11400714785074694791ULL
#define XXPRIME_2 14029467366897019727ULL
#define XXPRIME_5 2870177450012600261ULL
#define XXROTATE(x) (((x) << 31) | ((x) >> 33))
#define HASH_MODULUS ((1ULL << 61) - 1)

/* hash(x) for an int x in the int64 range. */
static inline uint64_t
int_hash(int64_t x)
{
    if (x >= 0) {
        return (uint64_t)x % HASH_MODULUS;
    }
    uint64_t r = ((uint64_t)0 - (uint64_t)x) % HASH_MODULUS;
    int64_t h = -(int64_t)r;
    if (h == -1) {
        h = -2;
    }
    return (uint64_t)h;
}

/* hash(tuple) given its items' hashes. */
static inline int64_t
tuple_hash(const uint64_t *lanes, Py_ssize_t len)
{
    uint64_t acc = XXPRIME_5;
    for (Py_ssize_t i = 0; i < len; i++) {
        acc += lanes[i] * XXPRIME_2;
        acc = XXROTATE(acc);
        acc *= XXPRIME_1;
    }
    acc += (uint64_t)len ^ (XXPRIME_5 ^ 3527539ULL);
    if (acc == (uint64_t)-1) {
        return 1546275796;
    }
    return (int64_t)acc;
}

/* hash((a, b)) of two code points (their int hashes are themselves). */
static inline int64_t
pair_hash(uint64_t a, uint64_t b)
{
    uint64_t lanes[2] = {a, b};
    return tuple_hash(lanes, 2);
}

/* ---------------------------------------------------------------------------------------------------------------
 * BLAKE2b (RFC 7693), unkeyed, 8-byte digest, returned as the little-endian integer of the digest bytes. */

static const uint64_t blake2b_iv[8] = {
    0x6A09E667F3BCC908ULL, 0xBB67AE8584CAA73BULL, 0x3C6EF372FE94F82BULL, 0xA54FF53A5F1D36F1ULL,
    0x510E527FADE682D1ULL, 0x9B05688C2B3E6C1FULL, 0x1F83D9ABFB41BD6BULL, 0x5BE0CD19137E2179ULL,
};

static const uint8_t blake2b_sigma[12][16] = {
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
    {14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3},
    {11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4},
    {7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8},
    {9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13},
    {2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9},
    {12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11},
    {13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10},
    {6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5},
    {10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0},
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
    {14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3},
};

#define ROTR64(x, n) (((x) >> (n)) | ((x) << (64 - (n))))
#define B2B_G(a, b, c, d, x, y)                 \
    do {                                        \
        v[a] = v[a] + v[b] + (x);               \
        v[d] = ROTR64(v[d] ^ v[a], 32);         \
        v[c] = v[c] + v[d];                     \
        v[b] = ROTR64(v[b] ^ v[c], 24);         \
        v[a] = v[a] + v[b] + (y);               \
        v[d] = ROTR64(v[d] ^ v[a], 16);         \
        v[c] = v[c] + v[d];                     \
        v[b] = ROTR64(v[b] ^ v[c], 63);         \
    } while (0)

static void
blake2b_compress(uint64_t h[8], const uint8_t block[128], uint64_t t, int last)
{
    uint64_t v[16], m[16];
    for (int i = 0; i < 16; i++) {
        uint64_t w = 0;
        for (int j = 7; j >= 0; j--) {
            w = (w << 8) | block[8 * i + j];
        }
        m[i] = w;
    }
    for (int i = 0; i < 8; i++) {
        v[i] = h[i];
        v[i + 8] = blake2b_iv[i];
    }
    v[12] ^= t;  /* the high 64 bits of the counter stay 0: no text reaches 2**64 bytes */
    if (last) {
        v[14] = ~v[14];
    }
    for (int r = 0; r < 12; r++) {
        const uint8_t *s = blake2b_sigma[r];
        B2B_G(0, 4, 8, 12, m[s[0]], m[s[1]]);
        B2B_G(1, 5, 9, 13, m[s[2]], m[s[3]]);
        B2B_G(2, 6, 10, 14, m[s[4]], m[s[5]]);
        B2B_G(3, 7, 11, 15, m[s[6]], m[s[7]]);
        B2B_G(0, 5, 10, 15, m[s[8]], m[s[9]]);
        B2B_G(1, 6, 11, 12, m[s[10]], m[s[11]]);
        B2B_G(2, 7, 8, 13, m[s[12]], m[s[13]]);
        B2B_G(3, 4, 9, 14, m[s[14]], m[s[15]]);
    }
    for (int i = 0; i < 8; i++) {
        h[i] ^= v[i] ^ v[i + 8];
    }
}

static uint64_t
blake2b_64(const uint8_t *data, size_t len)
{
    uint64_t h[8];
    uint8_t block[128];
    memcpy(h, blake2b_iv, sizeof h);
    h[0] ^= 0x01010000ULL ^ 8;  /* no key, digest_size=8 */
    size_t done = 0;
    while (len - done > 128) {
        blake2b_compress(h, data + done, (uint64_t)(done + 128), 0);
        done += 128;
    }
    memset(block, 0, sizeof block);
    memcpy(block, data + done, len - done);
    blake2b_compress(h, block, (uint64_t)len, 1);
    return h[0];  /* the first 8 digest bytes are h[0] in little-endian order */
}

/* ---------------------------------------------------------------------------------------------------------------
 * Buckets: dedup._Buckets, slot for slot. */

#define EMPTY 0u
#define TOMBSTONE 1u
#define TABLE_MIN (1u << 12)

typedef struct {
    uint32_t *keys;
    uint32_t *vals;
    size_t mask;
    size_t live;
    size_t filled;  /* live slots and tombstones */
} Table;

static int
table_alloc(Table *t, size_t size)
{
    uint32_t *keys = PyMem_Calloc(size, sizeof(uint32_t));
    uint32_t *vals = PyMem_Calloc(size, sizeof(uint32_t));
    if (keys == NULL || vals == NULL) {
        PyMem_Free(keys);
        PyMem_Free(vals);
        PyErr_NoMemory();
        return -1;
    }
    t->keys = keys;
    t->vals = vals;
    t->mask = size - 1;
    t->live = 0;
    t->filled = 0;
    return 0;
}

static void
table_free(Table *t)
{
    PyMem_Free(t->keys);
    PyMem_Free(t->vals);
    t->keys = t->vals = NULL;
}

static int table_put(Table *t, uint32_t key, uint32_t val);

static int
table_rehash(Table *t)
{
    Table old = *t;
    size_t size = TABLE_MIN;
    while (size * 3 < t->live * 10) {
        size <<= 1;
    }
    if (table_alloc(t, size) < 0) {
        *t = old;
        return -1;
    }
    for (size_t i = 0; i <= old.mask; i++) {
        if (old.keys[i] > TOMBSTONE) {
            if (table_put(t, old.keys[i], old.vals[i]) < 0) {
                table_free(t);
                *t = old;
                return -1;
            }
        }
    }
    table_free(&old);
    return 0;
}

static int
table_put(Table *t, uint32_t key, uint32_t val)
{
    if ((t->filled + 1) * 10 > (t->mask + 1) * 6) {
        if (table_rehash(t) < 0) {
            return -1;
        }
    }
    size_t i = key & t->mask;
    while (t->keys[i] > TOMBSTONE) {
        i = (i + 1) & t->mask;
    }
    if (t->keys[i] == EMPTY) {
        t->filled++;
    }
    t->keys[i] = key;
    t->vals[i] = val;
    t->live++;
    return 0;
}

/* Up to limit posts filed under key, appended to out; returns how many. */
static size_t
table_get(const Table *t, uint32_t key, size_t limit, uint32_t *out)
{
    size_t i = key & t->mask, n = 0;
    uint32_t k;
    while ((k = t->keys[i]) != EMPTY) {
        if (k == key) {
            out[n++] = t->vals[i];
            if (n >= limit) {
                break;
            }
        }
        i = (i + 1) & t->mask;
    }
    return n;
}

static void
table_remove(Table *t, uint32_t key, uint32_t val)
{
    size_t i = key & t->mask;
    uint32_t k;
    while ((k = t->keys[i]) != EMPTY) {
        if (k == key && t->vals[i] == val) {
            t->keys[i] = TOMBSTONE;
            t->live--;
            return;
        }
        i = (i + 1) & t->mask;
    }
}

/* ---------------------------------------------------------------------------------------------------------------
 * Entries: post number -> (post id, ts, data), a ring indexed by post number (the live numbers are consecutive). */

enum { KIND_UNFILED = 0, KIND_SHORT = 1, KIND_LONG = 2 };

/* A filed long text: its digest, its bucket keys (0 = not filed under that band) and distinct 16-bit bigram hashes.
 * It is in dedup's ``_first`` (every filed long text is the filed copy of its digest). */
typedef struct {
    uint64_t flat;
    uint32_t n;        /* number of hashes */
    uint32_t *keys;    /* bands keys, then the hashes as uint16 */
    uint16_t *hashes;
} LongData;

typedef struct {
    PyObject *id;      /* owned */
    double ts;
    int kind;
    union {
        PyObject *text;  /* KIND_SHORT: owned */
        LongData *data;  /* KIND_LONG: owned */
    } u;
} Entry;

/* ---------------------------------------------------------------------------------------------------------------
 * Copies: digest -> [filed copy, its earliest near-duplicate (-1 none, -2 not known), similarity, unfiled copies]. */

typedef struct {
    uint64_t key;
    int used;
    uint32_t first;
    int64_t prior;
    double sim;
    uint32_t *later;  /* a queue: later[head .. head + len) */
    size_t head, len, cap;
} Copy;

typedef struct {
    Copy *slots;
    size_t mask;
    size_t used;
} CopyMap;

static int
copies_init(CopyMap *m, size_t size)
{
    m->slots = PyMem_Calloc(size, sizeof(Copy));
    if (m->slots == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    m->mask = size - 1;
    m->used = 0;
    return 0;
}

static inline size_t
copies_home(const CopyMap *m, uint64_t key)
{
    return (size_t)(key ^ (key >> 29)) & m->mask;
}

static Copy *
copies_get(CopyMap *m, uint64_t key)
{
    size_t i = copies_home(m, key);
    while (m->slots[i].used) {
        if (m->slots[i].key == key) {
            return &m->slots[i];
        }
        i = (i + 1) & m->mask;
    }
    return NULL;
}

/* A new, empty slot for key (not present); NULL with an exception set when memory runs out. */
static Copy *
copies_insert(CopyMap *m, uint64_t key)
{
    if ((m->used + 1) * 2 > m->mask + 1) {
        CopyMap bigger;
        if (copies_init(&bigger, 2 * (m->mask + 1)) < 0) {
            return NULL;
        }
        for (size_t j = 0; j <= m->mask; j++) {
            if (m->slots[j].used) {
                size_t i = copies_home(&bigger, m->slots[j].key);
                while (bigger.slots[i].used) {
                    i = (i + 1) & bigger.mask;
                }
                bigger.slots[i] = m->slots[j];
            }
        }
        bigger.used = m->used;
        PyMem_Free(m->slots);
        *m = bigger;
    }
    size_t i = copies_home(m, key);
    while (m->slots[i].used) {
        i = (i + 1) & m->mask;
    }
    Copy *c = &m->slots[i];
    memset(c, 0, sizeof *c);
    c->used = 1;
    c->key = key;
    m->used++;
    return c;
}

/* Delete a slot (linear probing with backward shift: no tombstones). */
static void
copies_delete(CopyMap *m, Copy *c)
{
    PyMem_Free(c->later);
    size_t i = (size_t)(c - m->slots);
    size_t j = i;
    for (;;) {
        j = (j + 1) & m->mask;
        if (!m->slots[j].used) {
            break;
        }
        size_t home = copies_home(m, m->slots[j].key);
        /* slot j can move to i when its home is not cyclically within (i, j] */
        if (((j - home) & m->mask) >= ((j - i) & m->mask)) {
            m->slots[i] = m->slots[j];
            i = j;
        }
    }
    memset(&m->slots[i], 0, sizeof m->slots[i]);
    m->used--;
}

static int
copy_push(Copy *c, uint32_t seq)
{
    if (c->head + c->len == c->cap) {
        if (c->head > 0 && c->head >= c->len) {
            memmove(c->later, c->later + c->head, c->len * sizeof(uint32_t));
            c->head = 0;
        }
        else {
            size_t cap = c->cap ? 2 * c->cap : 4;
            uint32_t *later = PyMem_Realloc(c->later, cap * sizeof(uint32_t));
            if (later == NULL) {
                PyErr_NoMemory();
                return -1;
            }
            c->later = later;
            c->cap = cap;
        }
    }
    c->later[c->head + c->len++] = seq;
    return 0;
}

/* ---------------------------------------------------------------------------------------------------------------
 * The index object. */

typedef struct {
    PyObject_HEAD
    int ready;
    int busy;
    double window;
    double threshold;
    Py_ssize_t bands, rows, bins;
    double min_chars;
    size_t cap;                 /* bucket_cap, as a whole number (ceil) */
    PyObject *params[6];        /* window_seconds, threshold, bands, rows, min_chars, bucket_cap as given */
    PyObject *clean;            /* textfeat.clean */
    PyObject *match_type;       /* dedup.DuplicateMatch */
    uint32_t *probes;           /* bins sequences of plen bins */
    Py_ssize_t plen;

    Table table;
    PyObject *exact;            /* dict: short cleaned text -> list of post numbers */
    CopyMap copies;
    Entry *ring;
    uint32_t rmask;
    uint32_t seq, oldest;
    double now;

    /* scratch */
    Py_UCS4 *cps;
    size_t cps_cap;
    uint8_t *utf8;
    size_t utf8_cap;
    int64_t *sig;               /* bins */
    uint8_t *sig_set;           /* bins */
    uint64_t *lanes;            /* rows + 1 */
    uint32_t *keys;             /* bands */
    uint16_t *mine;             /* distinct 16-bit hashes of the text at hand */
    size_t mine_n, mine_cap;
    uint64_t mine_bits[65536 / 64];
    uint32_t *found;            /* bands lists of up to cap post numbers, concatenated */
    size_t *found_n;            /* bands */
    size_t found_cap;
    struct cand { double ts; uint32_t seq; } *cands;
    size_t cands_cap;
} Index;

/* A match: the earliest near-duplicate (borrowed id). */
typedef struct {
    int hit;
    uint32_t seq;
    PyObject *id;
    double sim;
    double ts;
} Match;

static void
data_free(LongData *d)
{
    PyMem_Free(d);
}

static int
grow(void **buf, size_t *cap, size_t need, size_t item)
{
    if (need <= *cap) {
        return 0;
    }
    size_t n = *cap ? *cap : 64;
    while (n < need) {
        n *= 2;
    }
    void *p = PyMem_Realloc(*buf, n * item);
    if (p == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    *buf = p;
    *cap = n;
    return 0;
}

static inline uint32_t
live_count(const Index *self)
{
    return self->seq - self->oldest;
}

static inline int
is_live(const Index *self, uint32_t s)
{
    return (uint32_t)(s - self->oldest) < (uint32_t)(self->seq - self->oldest);
}

static inline Entry *
entry_at(Index *self, uint32_t s)
{
    return &self->ring[s & self->rmask];
}

/* The next post number (and its ring slot, to be filled by the caller). */
static int
take_seq(Index *self, uint32_t *out)
{
    uint32_t count = live_count(self);
    if ((size_t)count == (size_t)self->rmask + 1) {
        if (count >= 0x80000000u) {
            PyErr_SetString(PyExc_OverflowError, "too many posts in one window");
            return -1;
        }
        uint32_t size = 2 * (self->rmask + 1), mask = size - 1;
        Entry *ring = PyMem_Calloc(size, sizeof(Entry));
        if (ring == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        for (uint32_t s = self->oldest; s != self->seq; s++) {
            ring[s & mask] = self->ring[s & self->rmask];
        }
        PyMem_Free(self->ring);
        self->ring = ring;
        self->rmask = mask;
    }
    *out = self->seq;
    self->seq++;
    return 0;
}

static void
entry_clear(Entry *e)
{
    Py_CLEAR(e->id);
    if (e->kind == KIND_SHORT) {
        Py_CLEAR(e->u.text);
    }
    else if (e->kind == KIND_LONG) {
        data_free(e->u.data);
    }
    e->kind = KIND_UNFILED;
    e->u.data = NULL;
}

/* id == other, without calling Python code for exact strings. -1 on error. */
static inline int
same_id(PyObject *stored, PyObject *id)
{
    if (stored == id) {
        return 1;
    }
    if (id == Py_None) {
        return 0;
    }
    if (PyUnicode_CheckExact(stored) && PyUnicode_CheckExact(id)) {
        if (PyUnicode_GET_LENGTH(stored) != PyUnicode_GET_LENGTH(id)) {
            return 0;
        }
        return PyUnicode_Compare(stored, id) == 0;
    }
    return PyObject_RichCompareBool(stored, id, Py_EQ);
}

/* round(x, 4) as CPython computes it (the same correctly rounded dtoa). NaN with an exception set on error. */
static double
round4(double x)
{
    char *s = PyOS_double_to_string(x, 'f', 4, 0, NULL);
    if (s == NULL) {
        return -1.0;
    }
    double r = PyOS_string_to_double(s, NULL, NULL);
    PyMem_Free(s);
    return r;
}

/* ---- promotion and eviction ---- */

/* The filed copy of a text leaves: file its oldest unfiled copy still held in its place (dedup._promote). Returns 1
 * when data went to a copy, 0 when the text was forgotten (the copy slot deleted), -1 on error. */
static int
promote(Index *self, Copy *c, LongData *data)
{
    while (c->len) {
        uint32_t s = c->later[c->head++];
        c->len--;
        if (!is_live(self, s)) {
            continue;
        }
        for (Py_ssize_t b = 0; b < self->bands; b++) {
            if (data->keys[b] && table_put(&self->table, data->keys[b], s) < 0) {
                return -1;
            }
        }
        Entry *e = entry_at(self, s);
        e->kind = KIND_LONG;
        e->u.data = data;
        c->first = s;
        c->prior = -2;
        if (c->len == 0) {
            c->head = 0;
        }
        return 1;
    }
    copies_delete(&self->copies, c);
    return 0;
}

static int
exact_remove(Index *self, PyObject *text, uint32_t s)
{
    PyObject *posts = PyDict_GetItemWithError(self->exact, text);
    if (posts == NULL) {
        if (!PyErr_Occurred()) {
            PyErr_SetObject(PyExc_KeyError, text);
        }
        return -1;
    }
    Py_ssize_t n = PyList_GET_SIZE(posts);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *v = PyList_GET_ITEM(posts, i);
        if (PyLong_AsUnsignedLong(v) == s) {
            if (PyList_SetSlice(posts, i, i + 1, NULL) < 0) {
                return -1;
            }
            if (PyList_GET_SIZE(posts) == 0 && PyDict_DelItem(self->exact, text) < 0) {
                return -1;
            }
            return 0;
        }
    }
    PyErr_SetString(PyExc_ValueError, "list.remove(x): x not in list");
    return -1;
}

static Py_ssize_t
evict_core(Index *self, double now)
{
    if (now > self->now) {
        self->now = now;
    }
    double cutoff = self->now - self->window;
    Py_ssize_t dropped = 0;
    while (self->oldest != self->seq) {
        uint32_t s = self->oldest;
        Entry *e = entry_at(self, s);
        if (e->ts >= cutoff) {
            break;
        }
        /* the entry leaves first (dedup deletes it before promoting another) */
        self->oldest = s + 1;
        Entry gone = *e;
        memset(e, 0, sizeof *e);
        int err = 0;
        if (gone.kind == KIND_SHORT) {
            err = exact_remove(self, gone.u.text, s);
        }
        else if (gone.kind == KIND_LONG) {
            LongData *data = gone.u.data;
            int kept = 0;
            Copy *c = copies_get(&self->copies, data->flat);
            if (c != NULL && c->first == s) {
                kept = promote(self, c, data);
                if (kept < 0) {
                    err = -1;
                    kept = 1;  /* do not know where data went: leak rather than free twice */
                }
            }
            for (Py_ssize_t b = 0; b < self->bands; b++) {
                if (data->keys[b]) {
                    table_remove(&self->table, data->keys[b], s);
                }
            }
            if (!kept) {
                data_free(data);
            }
            gone.kind = KIND_UNFILED;
        }
        entry_clear(&gone);
        if (err < 0) {
            return -1;
        }
        dropped++;
    }
    return dropped;
}

/* ---- text at hand ---- */

/* The code points of cleaned without spaces, into self->cps; returns their number, -1 on error. */
static Py_ssize_t
load_text(Index *self, PyObject *cleaned)
{
    if (!PyUnicode_Check(cleaned)) {
        PyErr_Format(PyExc_TypeError, "cleaned text must be str, not %.100s", Py_TYPE(cleaned)->tp_name);
        return -1;
    }
#if PY_VERSION_HEX < 0x030C0000
    if (PyUnicode_READY(cleaned) < 0) {
        return -1;
    }
#endif
    Py_ssize_t len = PyUnicode_GET_LENGTH(cleaned);
    if (grow((void **)&self->cps, &self->cps_cap, (size_t)len + 1, sizeof(Py_UCS4)) < 0) {
        return -1;
    }
    int kind = PyUnicode_KIND(cleaned);
    const void *data = PyUnicode_DATA(cleaned);
    Py_ssize_t n = 0;
    Py_UCS4 *cps = self->cps;
    for (Py_ssize_t i = 0; i < len; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        if (c != ' ') {
            cps[n++] = c;
        }
    }
    return n;
}

/* The text without spaces as a str (a new reference). */
static PyObject *
spaceless_str(Index *self, PyObject *cleaned, Py_ssize_t n)
{
    if (n == PyUnicode_GET_LENGTH(cleaned) && PyUnicode_CheckExact(cleaned)) {
        Py_INCREF(cleaned);
        return cleaned;
    }
    return PyUnicode_FromKindAndData(PyUnicode_4BYTE_KIND, self->cps, n);
}

/* blake2b(text.replace(" ", "").encode(), digest_size=8) as a little-endian integer. */
static int
digest(Index *self, PyObject *cleaned, Py_ssize_t n, uint64_t *out)
{
    if (grow((void **)&self->utf8, &self->utf8_cap, 4 * (size_t)n + 1, 1) < 0) {
        return -1;
    }
    uint8_t *p = self->utf8;
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_UCS4 c = self->cps[i];
        if (c < 0x80) {
            *p++ = (uint8_t)c;
        }
        else if (c < 0x800) {
            *p++ = (uint8_t)(0xC0 | (c >> 6));
            *p++ = (uint8_t)(0x80 | (c & 0x3F));
        }
        else if (c < 0x10000) {
            if (c >= 0xD800 && c <= 0xDFFF) {
                /* a lone surrogate: let Python's encoder raise its own error */
                PyObject *s = spaceless_str(self, cleaned, n);
                if (s != NULL) {
                    PyObject *b = PyUnicode_AsEncodedString(s, "utf-8", "strict");
                    Py_DECREF(s);
                    if (b != NULL) {  /* cannot happen */
                        Py_DECREF(b);
                        PyErr_SetString(PyExc_SystemError, "surrogate encoded");
                    }
                }
                return -1;
            }
            *p++ = (uint8_t)(0xE0 | (c >> 12));
            *p++ = (uint8_t)(0x80 | ((c >> 6) & 0x3F));
            *p++ = (uint8_t)(0x80 | (c & 0x3F));
        }
        else {
            *p++ = (uint8_t)(0xF0 | (c >> 18));
            *p++ = (uint8_t)(0x80 | ((c >> 12) & 0x3F));
            *p++ = (uint8_t)(0x80 | ((c >> 6) & 0x3F));
            *p++ = (uint8_t)(0x80 | (c & 0x3F));
        }
    }
    *out = blake2b_64(self->utf8, (size_t)(p - self->utf8));
    return 0;
}

static inline void
mine_add(Index *self, uint16_t v)
{
    uint64_t bit = 1ULL << (v & 63);
    if (!(self->mine_bits[v >> 6] & bit)) {
        self->mine_bits[v >> 6] |= bit;
        self->mine[self->mine_n++] = v;
    }
}

static void
mine_clear(Index *self)
{
    for (size_t i = 0; i < self->mine_n; i++) {
        self->mine_bits[self->mine[i] >> 6] = 0;
    }
    self->mine_n = 0;
}

/* dedup._sketch: the distinct 16-bit bigram hashes (self->mine, also marked in mine_bits) and the band keys
 * (self->keys) of the n code points in self->cps. */
static int
sketch(Index *self, Py_ssize_t n)
{
    Py_ssize_t nsh = n < 2 ? n : n - 1;
    Py_ssize_t bins = self->bins;
    mine_clear(self);
    if (grow((void **)&self->mine, &self->mine_cap, (size_t)nsh + 1, sizeof(uint16_t)) < 0) {
        return -1;
    }
    memset(self->sig_set, 0, (size_t)bins);
    Py_ssize_t nfilled = 0;
    for (Py_ssize_t i = 0; i < nsh; i++) {
        int64_t h = n < 2 ? pair_hash(self->cps[0], 0) : pair_hash(self->cps[i], self->cps[i + 1]);
        int64_t bin = h % bins;
        if (bin < 0) {
            bin += bins;
        }
        if (!self->sig_set[bin]) {
            self->sig_set[bin] = 1;
            self->sig[bin] = h;
            nfilled++;
        }
        else if (h < self->sig[bin]) {
            self->sig[bin] = h;
        }
        mine_add(self, (uint16_t)((uint64_t)h & 0xFFFF));
    }
    if (nfilled == 0) {
        /* no bigram: the Python code's next(filter(...)) over the probe sequence raises StopIteration */
        PyErr_SetNone(PyExc_StopIteration);
        return -1;
    }
    for (Py_ssize_t b = 0; b < self->bands; b++) {
        self->lanes[0] = (uint64_t)b;
        for (Py_ssize_t r = 0; r < self->rows; r++) {
            Py_ssize_t i = b * self->rows + r;
            int64_t v;
            if (self->sig_set[i]) {
                v = self->sig[i];
            }
            else {  /* optimal densification: the first filled bin of the bin's probe sequence */
                const uint32_t *probe = self->probes + (size_t)i * (size_t)self->plen;
                Py_ssize_t k = 0;
                while (!self->sig_set[probe[k]]) {
                    k++;
                }
                v = self->sig[probe[k]];
            }
            self->lanes[r + 1] = int_hash(v);
        }
        uint64_t h = (uint64_t)tuple_hash(self->lanes, self->rows + 1);
        self->keys[b] = ((uint32_t)h) | 2u;
    }
    return 0;
}

/* dedup._candidates: self->found holds, for each band, up to cap posts of its bucket. */
static int
candidates(Index *self)
{
    size_t cap = self->cap;
    size_t limit = self->table.live < cap ? self->table.live : cap;
    if (grow((void **)&self->found, &self->found_cap, (size_t)self->bands * (limit ? limit : 1), sizeof(uint32_t)) < 0) {
        return -1;
    }
    for (Py_ssize_t b = 0; b < self->bands; b++) {
        self->found_n[b] = table_get(&self->table, self->keys[b], cap, self->found + (size_t)b * limit);
    }
    return 0;
}

static inline int
cand_less(const struct cand *a, const struct cand *b)
{
    return a->ts < b->ts || (a->ts == b->ts && a->seq < b->seq);
}

static int
cand_cmp(const void *x, const void *y)
{
    const struct cand *a = x, *b = y;
    return cand_less(a, b) ? -1 : cand_less(b, a) ? 1 : 0;
}

/* dedup._verify over self->found against self->mine: the earliest candidate that passes. */
static int
verify(Index *self, PyObject *post_id, Match *out)
{
    out->hit = 0;
    size_t cap = self->cap;
    size_t limit = self->table.live < cap ? self->table.live : cap;
    size_t total = 0;
    for (Py_ssize_t b = 0; b < self->bands; b++) {
        total += self->found_n[b];
    }
    if (total == 0) {
        return 0;
    }
    if (grow((void **)&self->cands, &self->cands_cap, total, sizeof(struct cand)) < 0) {
        return -1;
    }
    size_t nc = 0;
    for (Py_ssize_t b = 0; b < self->bands; b++) {
        const uint32_t *f = self->found + (size_t)b * limit;
        for (size_t k = 0; k < self->found_n[b]; k++) {
            self->cands[nc].seq = f[k];
            self->cands[nc].ts = entry_at(self, f[k])->ts;
            nc++;
        }
    }
    if (nc <= 64) {
        for (size_t i = 1; i < nc; i++) {
            struct cand c = self->cands[i];
            size_t j = i;
            while (j > 0 && cand_less(&c, &self->cands[j - 1])) {
                self->cands[j] = self->cands[j - 1];
                j--;
            }
            self->cands[j] = c;
        }
    }
    else {
        qsort(self->cands, nc, sizeof(struct cand), cand_cmp);
    }
    double cutoff = self->now - self->window;
    size_t n = self->mine_n;
    for (size_t i = 0; i < nc; i++) {
        uint32_t s = self->cands[i].seq;
        if (i > 0 && self->cands[i - 1].seq == s) {
            continue;  /* in several bands */
        }
        Entry *e = entry_at(self, s);
        int same = same_id(e->id, post_id);
        if (same < 0) {
            return -1;
        }
        if (same || e->ts < cutoff || e->kind != KIND_LONG) {
            continue;
        }
        LongData *d = e->u.data;
        size_t m = d->n;
        size_t lo = n < m ? n : m, hi = n < m ? m : n;
        if ((double)lo < self->threshold * (double)hi) {
            continue;
        }
        size_t inter = 0;
        for (size_t k = 0; k < m; k++) {
            uint16_t v = d->hashes[k];
            inter += (self->mine_bits[v >> 6] >> (v & 63)) & 1;
        }
        double sim = (double)inter / (double)(n + m - inter);
        if (sim >= self->threshold) {
            double r = round4(sim);
            if (PyErr_Occurred()) {
                return -1;
            }
            out->hit = 1;
            out->seq = s;
            out->id = e->id;
            out->sim = r;
            out->ts = e->ts;
            return 0;
        }
    }
    return 0;
}

/* dedup._best over a list of post numbers (NULL: none). */
static int
best(Index *self, PyObject *post_id, PyObject *posts, Match *out)
{
    out->hit = 0;
    if (posts == NULL) {
        return 0;
    }
    double cutoff = self->now - self->window;
    Py_ssize_t n = PyList_GET_SIZE(posts);
    for (Py_ssize_t i = 0; i < n; i++) {
        uint32_t s = (uint32_t)PyLong_AsUnsignedLong(PyList_GET_ITEM(posts, i));
        Entry *e = entry_at(self, s);
        int same = same_id(e->id, post_id);
        if (same < 0) {
            return -1;
        }
        if (same || e->ts < cutoff) {
            continue;
        }
        if (!out->hit || e->ts < out->ts) {
            out->hit = 1;
            out->seq = s;
            out->id = e->id;
            out->ts = e->ts;
            out->sim = 1.0;
        }
    }
    return 0;
}

/* dedup._copy_match. */
static int
copy_match(Index *self, PyObject *post_id, const Copy *c, Match *out)
{
    out->hit = 0;
    double cutoff = self->now - self->window;
    if (c->prior == -2) {
        return 0;
    }
    uint32_t s = c->prior >= 0 ? (uint32_t)c->prior : c->first;
    if (!is_live(self, s)) {
        return 0;
    }
    Entry *e = entry_at(self, s);
    if (e->ts < cutoff) {
        return 0;
    }
    int same = same_id(e->id, post_id);
    if (same) {
        return same < 0 ? -1 : 0;
    }
    out->hit = 1;
    out->seq = s;
    out->id = e->id;
    out->sim = c->prior >= 0 ? c->sim : 1.0;
    out->ts = e->ts;
    return 0;
}

static int
store_entry(Index *self, PyObject *post_id, double ts, uint32_t *seq_out)
{
    uint32_t s;
    if (take_seq(self, &s) < 0) {
        return -1;
    }
    Entry *e = entry_at(self, s);
    Py_INCREF(post_id);
    e->id = post_id;
    e->ts = ts;
    e->kind = KIND_UNFILED;
    e->u.data = NULL;
    *seq_out = s;
    return 0;
}

/* dedup._add_short. */
static int
add_short(Index *self, PyObject *post_id, PyObject *text, double ts, Match *out)
{
    out->hit = 0;
    if (PyUnicode_GET_LENGTH(text) == 0) {
        return 0;
    }
    PyObject *posts = PyDict_GetItemWithError(self->exact, text);
    if (posts == NULL && PyErr_Occurred()) {
        return -1;
    }
    Py_XINCREF(posts);
    if (best(self, post_id, posts, out) < 0) {
        Py_XDECREF(posts);
        return -1;
    }
    int err = 0;
    if (ts >= self->now - self->window) {
        PyObject *num = PyLong_FromUnsignedLong(self->seq);
        uint32_t s;
        if (num == NULL) {
            err = -1;
        }
        else if (posts == NULL) {
            PyObject *list = PyList_New(1);
            if (list == NULL) {
                err = -1;
            }
            else {
                Py_INCREF(num);
                PyList_SET_ITEM(list, 0, num);
                err = PyDict_SetItem(self->exact, text, list);
                Py_DECREF(list);
            }
            if (!err && (err = store_entry(self, post_id, ts, &s)) == 0) {
                Entry *e = entry_at(self, s);
                e->kind = KIND_SHORT;
                Py_INCREF(text);
                e->u.text = text;
            }
        }
        else if ((size_t)PyList_GET_SIZE(posts) < self->cap) {
            err = PyList_Append(posts, num);
            if (!err && (err = store_entry(self, post_id, ts, &s)) == 0) {
                Entry *e = entry_at(self, s);
                e->kind = KIND_SHORT;
                Py_INCREF(text);
                e->u.text = text;
            }
        }
        else {  /* not filed: the list holds the earliest copies already */
            err = store_entry(self, post_id, ts, &s);
        }
        Py_XDECREF(num);
    }
    Py_XDECREF(posts);
    return err;
}

/* dedup.add_match up to the match (None: no match). */
static int
add_core(Index *self, PyObject *post_id, PyObject *text, PyObject *ts_obj, PyObject *cleaned, Match *out)
{
    out->hit = 0;
    double ts = PyFloat_AsDouble(ts_obj);
    if (ts == -1.0 && PyErr_Occurred()) {
        return -1;
    }
    if (evict_core(self, ts) < 0) {
        return -1;
    }
    PyObject *own = NULL;
    if (cleaned == NULL || cleaned == Py_None) {
        own = PyObject_CallOneArg(self->clean, text);
        if (own == NULL) {
            return -1;
        }
        cleaned = own;
    }
    int err = -1;
    Py_ssize_t n = load_text(self, cleaned);
    if (n < 0) {
        goto done;
    }
    if ((double)n < self->min_chars) {
        PyObject *flat_text = spaceless_str(self, cleaned, n);
        if (flat_text != NULL) {
            err = add_short(self, post_id, flat_text, ts, out);
            Py_DECREF(flat_text);
        }
        goto done;
    }
    uint64_t flat;
    if (digest(self, cleaned, n, &flat) < 0) {
        goto done;
    }
    int keep = ts >= self->now - self->window;
    Copy *c = copies_get(&self->copies, flat);
    if (c != NULL) {
        if (copy_match(self, post_id, c, out) < 0) {
            goto done;
        }
        if (out->hit) {
            if (keep) {
                uint32_t s;
                if (store_entry(self, post_id, ts, &s) < 0 || copy_push(c, s) < 0) {
                    goto done;
                }
            }
            err = 0;
            goto done;
        }
    }
    if (sketch(self, n) < 0 || candidates(self) < 0 || verify(self, post_id, out) < 0) {
        goto done;
    }
    if (keep) {
        uint32_t s;
        if (c != NULL) {  /* its filed copy is in the window (the copies' answer unknown, or gone): now known */
            c->prior = out->hit ? (int64_t)out->seq : -1;
            c->sim = out->hit ? out->sim : 1.0;
            if (store_entry(self, post_id, ts, &s) < 0 || copy_push(c, s) < 0) {
                goto done;
            }
            err = 0;
            goto done;
        }
        size_t m = self->mine_n;
        LongData *d = PyMem_Malloc(sizeof(LongData) + (size_t)self->bands * sizeof(uint32_t) + m * sizeof(uint16_t));
        if (d == NULL) {
            PyErr_NoMemory();
            goto done;
        }
        d->flat = flat;
        d->n = (uint32_t)m;
        d->keys = (uint32_t *)(d + 1);
        d->hashes = (uint16_t *)(d->keys + self->bands);
        memcpy(d->hashes, self->mine, m * sizeof(uint16_t));
        Copy *nc = copies_insert(&self->copies, flat);
        if (nc == NULL || store_entry(self, post_id, ts, &s) < 0) {
            if (nc != NULL) {
                copies_delete(&self->copies, nc);
            }
            data_free(d);
            goto done;
        }
        nc->first = s;
        nc->prior = out->hit ? (int64_t)out->seq : -1;
        nc->sim = out->hit ? out->sim : 1.0;
        Entry *e = entry_at(self, s);
        e->kind = KIND_LONG;
        e->u.data = d;
        for (Py_ssize_t b = 0; b < self->bands; b++) {
            if (self->found_n[b] < self->cap) {
                d->keys[b] = self->keys[b];
                if (table_put(&self->table, self->keys[b], s) < 0) {
                    d->keys[b] = 0;
                    goto done;
                }
            }
            else {
                d->keys[b] = 0;
            }
        }
    }
    err = 0;
done:
    mine_clear(self);
    Py_XDECREF(own);
    return err;
}

/* ---- Python methods ---- */

static int
enter(Index *self)
{
    if (!self->ready) {
        PyErr_SetString(PyExc_RuntimeError, "index not set up");
        return -1;
    }
    if (self->busy) {
        PyErr_SetString(PyExc_RuntimeError, "the index was called again from inside one of its calls");
        return -1;
    }
    self->busy = 1;
    return 0;
}

static PyObject *
make_match(Index *self, const Match *m)
{
    if (!m->hit) {
        Py_RETURN_NONE;
    }
    PyObject *sim = PyFloat_FromDouble(m->sim);
    PyObject *ts = PyFloat_FromDouble(m->ts);
    PyObject *res = NULL;
    if (sim != NULL && ts != NULL) {
        PyObject *args[3] = {m->id, sim, ts};
        res = PyObject_Vectorcall(self->match_type, args, 3, NULL);
    }
    Py_XDECREF(sim);
    Py_XDECREF(ts);
    return res;
}

/* Arguments as a Python signature binds them: the first npos may be positional, the first nreq are required;
 * out[i] is NULL for one not given. */
static int
parse(const char *fname, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames, const char *const *names,
      Py_ssize_t nnames, Py_ssize_t npos, Py_ssize_t nreq, PyObject **out)
{
    for (Py_ssize_t i = 0; i < nnames; i++) {
        out[i] = NULL;
    }
    if (nargs > npos) {
        PyErr_Format(PyExc_TypeError, "%s() takes at most %zd positional arguments (%zd given)", fname, npos, nargs);
        return -1;
    }
    for (Py_ssize_t i = 0; i < nargs; i++) {
        out[i] = args[i];
    }
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    for (Py_ssize_t k = 0; k < nkw; k++) {
        PyObject *name = PyTuple_GET_ITEM(kwnames, k);
        Py_ssize_t j = 0;
        while (j < nnames && PyUnicode_CompareWithASCIIString(name, names[j]) != 0) {
            j++;
        }
        if (j == nnames) {
            PyErr_Format(PyExc_TypeError, "%s() got an unexpected keyword argument %R", fname, name);
            return -1;
        }
        if (out[j] != NULL) {
            PyErr_Format(PyExc_TypeError, "%s() got multiple values for argument '%s'", fname, names[j]);
            return -1;
        }
        out[j] = args[nargs + k];
    }
    for (Py_ssize_t i = 0; i < nreq; i++) {
        if (out[i] == NULL) {
            PyErr_Format(PyExc_TypeError, "%s() missing required argument '%s'", fname, names[i]);
            return -1;
        }
    }
    return 0;
}

static const char *const add_names[] = {"post_id", "text", "ts", "cleaned"};

static PyObject *
Index_add_match(Index *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *a[4];
    Match m;
    if (parse("add_match", args, nargs, kwnames, add_names, 4, 3, 3, a) < 0 || enter(self) < 0) {
        return NULL;
    }
    int err = add_core(self, a[0], a[1], a[2], a[3], &m);
    PyObject *res = NULL;
    if (err == 0) {
        /* the match's id is borrowed from an entry that is still held: make the result before anything else */
        res = make_match(self, &m);
    }
    self->busy = 0;
    return res;
}

static PyObject *
Index_add(Index *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *a[4];
    Match m;
    if (parse("add", args, nargs, kwnames, add_names, 4, 3, 3, a) < 0 || enter(self) < 0) {
        return NULL;
    }
    int err = add_core(self, a[0], a[1], a[2], a[3], &m);
    self->busy = 0;
    if (err < 0) {
        return NULL;
    }
    if (!m.hit) {
        Py_RETURN_NONE;
    }
    Py_INCREF(m.id);
    return m.id;
}

static PyObject *
Index_find(Index *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const names[] = {"text", "ts"};
    PyObject *a[2];
    if (parse("find", args, nargs, kwnames, names, 2, 2, 1, a) < 0 || enter(self) < 0) {
        return NULL;
    }
    PyObject *text = a[0], *ts_obj = a[1] ? a[1] : Py_None;
    PyObject *res = NULL, *cleaned = NULL;
    Match m = {0};
    if (ts_obj != Py_None) {
        double ts = PyFloat_AsDouble(ts_obj);
        if ((ts == -1.0 && PyErr_Occurred()) || evict_core(self, ts) < 0) {
            goto done;
        }
    }
    cleaned = PyObject_CallOneArg(self->clean, text);
    if (cleaned == NULL) {
        goto done;
    }
    Py_ssize_t n = load_text(self, cleaned);
    if (n < 0) {
        goto done;
    }
    if ((double)n < self->min_chars) {
        PyObject *flat_text = spaceless_str(self, cleaned, n);
        if (flat_text == NULL) {
            goto done;
        }
        PyObject *posts = PyDict_GetItemWithError(self->exact, flat_text);
        Py_XINCREF(posts);
        Py_DECREF(flat_text);
        if ((posts == NULL && PyErr_Occurred()) || best(self, Py_None, posts, &m) < 0) {
            Py_XDECREF(posts);
            goto done;
        }
        Py_XDECREF(posts);
    }
    else {
        int err = sketch(self, n) < 0 || candidates(self) < 0 || verify(self, Py_None, &m) < 0;
        mine_clear(self);
        if (err) {
            goto done;
        }
    }
    res = make_match(self, &m);
done:
    Py_XDECREF(cleaned);
    self->busy = 0;
    return res;
}

static PyObject *
Index_evict(Index *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const names[] = {"now"};
    PyObject *arg;
    if (parse("evict", args, nargs, kwnames, names, 1, 1, 1, &arg) < 0) {
        return NULL;
    }
    double now = PyFloat_AsDouble(arg);
    if ((now == -1.0 && PyErr_Occurred()) || enter(self) < 0) {
        return NULL;
    }
    Py_ssize_t dropped = evict_core(self, now);
    self->busy = 0;
    return dropped < 0 ? NULL : PyLong_FromSsize_t(dropped);
}

static void
state_free(Index *self)
{
    if (self->ring != NULL) {
        for (uint32_t s = self->oldest; s != self->seq; s++) {
            entry_clear(entry_at(self, s));
        }
        PyMem_Free(self->ring);
        self->ring = NULL;
    }
    if (self->copies.slots != NULL) {
        for (size_t i = 0; i <= self->copies.mask; i++) {
            PyMem_Free(self->copies.slots[i].later);
        }
        PyMem_Free(self->copies.slots);
        self->copies.slots = NULL;
    }
    table_free(&self->table);
    PyMem_Free(self->probes);
    PyMem_Free(self->cps);
    PyMem_Free(self->utf8);
    PyMem_Free(self->sig);
    PyMem_Free(self->sig_set);
    PyMem_Free(self->lanes);
    PyMem_Free(self->keys);
    PyMem_Free(self->mine);
    PyMem_Free(self->found);
    PyMem_Free(self->found_n);
    PyMem_Free(self->cands);
    self->probes = NULL;
    self->cps = NULL;
    self->utf8 = NULL;
    self->sig = NULL;
    self->sig_set = NULL;
    self->lanes = NULL;
    self->keys = NULL;
    self->mine = NULL;
    self->found = NULL;
    self->found_n = NULL;
    self->cands = NULL;
    self->cps_cap = self->utf8_cap = self->mine_cap = self->found_cap = self->cands_cap = 0;
    self->mine_n = 0;
    memset(self->mine_bits, 0, sizeof self->mine_bits);
    self->ready = 0;
}

/* _setup(window_seconds, threshold, bands, rows, min_chars, bucket_cap, probes, clean, match_type): the parameters
 * validated by the Python class; probes: for each of the bands * rows bins, its probe sequence (equal lengths). */
static PyObject *
Index_setup(Index *self, PyObject *args)
{
    PyObject *window, *threshold, *bands, *rows, *min_chars, *cap, *probes, *clean, *match_type;
    if (!PyArg_ParseTuple(args, "OOOOOOO!OO:_setup", &window, &threshold, &bands, &rows, &min_chars, &cap,
                          &PyList_Type, &probes, &clean, &match_type)) {
        return NULL;
    }
    if (self->busy) {
        PyErr_SetString(PyExc_RuntimeError, "the index is busy");
        return NULL;
    }
    double w = PyFloat_AsDouble(window), th = PyFloat_AsDouble(threshold), mc = PyFloat_AsDouble(min_chars);
    double cp = PyFloat_AsDouble(cap);
    Py_ssize_t nb = PyNumber_AsSsize_t(bands, PyExc_OverflowError);
    Py_ssize_t nr = PyNumber_AsSsize_t(rows, PyExc_OverflowError);
    if (PyErr_Occurred()) {
        return NULL;
    }
    if (nb < 1 || nr < 1 || !(cp >= 1.0) || nb > (1 << 20) || nr > (1 << 20)) {
        PyErr_SetString(PyExc_ValueError, "bands, rows and bucket_cap must be at least 1");
        return NULL;
    }
    Py_ssize_t bins = nb * nr;
    if (PyList_GET_SIZE(probes) != bins) {
        PyErr_SetString(PyExc_ValueError, "one probe sequence per bin expected");
        return NULL;
    }
    state_free(self);
    Py_ssize_t plen = -1;
    for (Py_ssize_t i = 0; i < bins; i++) {
        PyObject *seq = PyList_GET_ITEM(probes, i);
        if (!PyList_Check(seq) || (plen >= 0 && PyList_GET_SIZE(seq) != plen)) {
            PyErr_SetString(PyExc_ValueError, "probe sequences must be lists of one length");
            goto fail;
        }
        if (plen < 0) {
            plen = PyList_GET_SIZE(seq);
            self->probes = PyMem_Calloc((size_t)bins * (size_t)plen + 1, sizeof(uint32_t));
            if (self->probes == NULL) {
                PyErr_NoMemory();
                goto fail;
            }
        }
        for (Py_ssize_t k = 0; k < plen; k++) {
            Py_ssize_t v = PyNumber_AsSsize_t(PyList_GET_ITEM(seq, k), PyExc_OverflowError);
            if (v == -1 && PyErr_Occurred()) {
                goto fail;
            }
            if (v < 0 || v >= bins) {
                PyErr_SetString(PyExc_ValueError, "probe sequences hold bin numbers");
                goto fail;
            }
            self->probes[(size_t)i * (size_t)plen + (size_t)k] = (uint32_t)v;
        }
    }
    /* each sequence must hold every bin, so that the walk for a text with one bigram always stops */
    {
        uint8_t *seen = PyMem_Calloc((size_t)bins, 1);
        if (seen == NULL) {
            PyErr_NoMemory();
            goto fail;
        }
        for (Py_ssize_t i = 0; i < bins; i++) {
            Py_ssize_t distinct = 0;
            memset(seen, 0, (size_t)bins);
            for (Py_ssize_t k = 0; k < plen; k++) {
                uint32_t v = self->probes[(size_t)i * (size_t)plen + (size_t)k];
                distinct += !seen[v];
                seen[v] = 1;
            }
            if (distinct != bins) {
                PyMem_Free(seen);
                PyErr_SetString(PyExc_ValueError, "each probe sequence must hold every bin");
                goto fail;
            }
        }
        PyMem_Free(seen);
    }
    self->plen = plen;
    self->window = w;
    self->threshold = th;
    self->bands = nb;
    self->rows = nr;
    self->bins = bins;
    self->min_chars = mc;
    self->cap = cp >= 1e15 ? (size_t)1e15 : (size_t)ceil(cp);
    self->sig = PyMem_Calloc((size_t)bins, sizeof(int64_t));
    self->sig_set = PyMem_Calloc((size_t)bins, 1);
    self->lanes = PyMem_Calloc((size_t)nr + 1, sizeof(uint64_t));
    self->keys = PyMem_Calloc((size_t)nb, sizeof(uint32_t));
    self->found_n = PyMem_Calloc((size_t)nb, sizeof(size_t));
    self->ring = PyMem_Calloc(1024, sizeof(Entry));
    if (!self->sig || !self->sig_set || !self->lanes || !self->keys || !self->found_n || !self->ring) {
        PyErr_NoMemory();
        goto fail;
    }
    self->rmask = 1023;
    self->seq = self->oldest = 0;
    self->now = -Py_HUGE_VAL;
    if (table_alloc(&self->table, TABLE_MIN) < 0 || copies_init(&self->copies, 64) < 0) {
        goto fail;
    }
    PyObject *exact = PyDict_New();
    if (exact == NULL) {
        goto fail;
    }
    Py_XSETREF(self->exact, exact);
    PyObject *given[6] = {window, threshold, bands, rows, min_chars, cap};
    for (int i = 0; i < 6; i++) {
        Py_INCREF(given[i]);
        Py_XSETREF(self->params[i], given[i]);
    }
    Py_INCREF(clean);
    Py_XSETREF(self->clean, clean);
    Py_INCREF(match_type);
    Py_XSETREF(self->match_type, match_type);
    self->ready = 1;
    Py_RETURN_NONE;
fail:
    state_free(self);
    return NULL;
}

/* ---- read-only views for tests and debugging (copies of the state, in dedup's shapes) ---- */

static PyObject *
Index_get_buckets(Index *self, void *closure)
{
    PyObject *out = PyList_New(0);
    if (out == NULL || !self->ready) {
        return out;
    }
    for (size_t i = 0; i <= self->table.mask; i++) {
        if (self->table.keys[i] > TOMBSTONE) {
            PyObject *pair = Py_BuildValue("(kk)", (unsigned long)self->table.keys[i],
                                           (unsigned long)self->table.vals[i]);
            if (pair == NULL || PyList_Append(out, pair) < 0) {
                Py_XDECREF(pair);
                Py_DECREF(out);
                return NULL;
            }
            Py_DECREF(pair);
        }
    }
    return out;
}

static PyObject *
Index_get_exact(Index *self, void *closure)
{
    PyObject *out = PyDict_New();
    if (out == NULL || !self->ready) {
        return out;
    }
    PyObject *key, *value;
    Py_ssize_t pos = 0;
    while (PyDict_Next(self->exact, &pos, &key, &value)) {
        PyObject *copy = PyList_GetSlice(value, 0, PyList_GET_SIZE(value));
        if (copy == NULL || PyDict_SetItem(out, key, copy) < 0) {
            Py_XDECREF(copy);
            Py_DECREF(out);
            return NULL;
        }
        Py_DECREF(copy);
    }
    return out;
}

static PyObject *
Index_get_copies(Index *self, void *closure)
{
    PyObject *out = PyDict_New();
    if (out == NULL || !self->ready) {
        return out;
    }
    for (size_t i = 0; i <= self->copies.mask; i++) {
        const Copy *c = &self->copies.slots[i];
        if (!c->used) {
            continue;
        }
        PyObject *later = PyList_New((Py_ssize_t)c->len);
        PyObject *key = PyLong_FromUnsignedLongLong(c->key);
        PyObject *value = NULL;
        if (later != NULL && key != NULL) {
            for (size_t k = 0; k < c->len; k++) {
                PyList_SET_ITEM(later, (Py_ssize_t)k, PyLong_FromUnsignedLong(c->later[c->head + k]));
            }
            value = Py_BuildValue("[kLdO]", (unsigned long)c->first, (long long)c->prior, c->sim, later);
        }
        if (value == NULL || PyDict_SetItem(out, key, value) < 0) {
            Py_XDECREF(later);
            Py_XDECREF(key);
            Py_XDECREF(value);
            Py_DECREF(out);
            return NULL;
        }
        Py_DECREF(later);
        Py_DECREF(key);
        Py_DECREF(value);
    }
    return out;
}

static PyObject *
Index_get_entries(Index *self, void *closure)
{
    /* post number -> (post id, ts, data); data: None, the short text, or (keys, sorted 16-bit hashes) */
    PyObject *out = PyDict_New();
    if (out == NULL || !self->ready) {
        return out;
    }
    for (uint32_t s = self->oldest; s != self->seq; s++) {
        Entry *e = entry_at(self, s);
        PyObject *data = NULL;
        if (e->kind == KIND_UNFILED) {
            data = Py_NewRef(Py_None);
        }
        else if (e->kind == KIND_SHORT) {
            data = Py_NewRef(e->u.text);
        }
        else {
            LongData *d = e->u.data;
            PyObject *keys = PyTuple_New(self->bands);
            PyObject *hashes = PyList_New((Py_ssize_t)d->n);
            if (keys != NULL && hashes != NULL) {
                for (Py_ssize_t b = 0; b < self->bands; b++) {
                    PyTuple_SET_ITEM(keys, b, PyLong_FromUnsignedLong(d->keys[b]));
                }
                for (uint32_t k = 0; k < d->n; k++) {
                    PyList_SET_ITEM(hashes, k, PyLong_FromLong(d->hashes[k]));
                }
                if (PyList_Sort(hashes) == 0) {
                    PyObject *t = PyList_AsTuple(hashes);
                    if (t != NULL) {
                        data = PyTuple_Pack(2, keys, t);
                        Py_DECREF(t);
                    }
                }
            }
            Py_XDECREF(keys);
            Py_XDECREF(hashes);
        }
        PyObject *key = PyLong_FromUnsignedLong(s);
        PyObject *value = data ? Py_BuildValue("(OdO)", e->id, e->ts, data) : NULL;
        if (key == NULL || value == NULL || PyDict_SetItem(out, key, value) < 0) {
            Py_XDECREF(data);
            Py_XDECREF(key);
            Py_XDECREF(value);
            Py_DECREF(out);
            return NULL;
        }
        Py_DECREF(data);
        Py_DECREF(key);
        Py_DECREF(value);
    }
    return out;
}

static PyObject *
Index_get_first(Index *self, void *closure)
{
    PyObject *out = PyDict_New();
    if (out == NULL || !self->ready) {
        return out;
    }
    for (uint32_t s = self->oldest; s != self->seq; s++) {
        Entry *e = entry_at(self, s);
        if (e->kind != KIND_LONG) {
            continue;
        }
        PyObject *key = PyLong_FromUnsignedLong(s);
        PyObject *value = PyLong_FromUnsignedLongLong(e->u.data->flat);
        if (key == NULL || value == NULL || PyDict_SetItem(out, key, value) < 0) {
            Py_XDECREF(key);
            Py_XDECREF(value);
            Py_DECREF(out);
            return NULL;
        }
        Py_DECREF(key);
        Py_DECREF(value);
    }
    return out;
}

static PyObject *
Index_get_table(Index *self, void *closure)
{
    /* the bucket table's two arrays as bytes (same layout as dedup._Buckets' arrays) */
    if (!self->ready) {
        Py_RETURN_NONE;
    }
    size_t size = (self->table.mask + 1) * sizeof(uint32_t);
    return Py_BuildValue("(y#y#)", (const char *)self->table.keys, (Py_ssize_t)size,
                         (const char *)self->table.vals, (Py_ssize_t)size);
}

static PyObject *
Index_get_now(Index *self, void *closure)
{
    return PyFloat_FromDouble(self->ready ? self->now : -Py_HUGE_VAL);
}

static PyObject *
Index_get_param(Index *self, void *closure)
{
    PyObject *v = self->params[(intptr_t)closure];
    if (v == NULL) {
        PyErr_SetString(PyExc_AttributeError, "index not set up");
        return NULL;
    }
    return Py_NewRef(v);
}

static PyObject *
Index_get_seqs(Index *self, void *closure)
{
    return Py_BuildValue("(kk)", (unsigned long)self->oldest, (unsigned long)self->seq);
}

static Py_ssize_t
Index_len(Index *self)
{
    return self->ready ? (Py_ssize_t)live_count(self) : 0;
}

static PyObject *
Index_nbytes(Index *self, PyObject *unused)
{
    /* bytes held by the C structures (the Python objects held are not counted) */
    size_t n = 0;
    if (self->ready) {
        n += (self->table.mask + 1) * 8 + ((size_t)self->rmask + 1) * sizeof(Entry)
             + (self->copies.mask + 1) * sizeof(Copy);
        for (uint32_t s = self->oldest; s != self->seq; s++) {
            Entry *e = entry_at(self, s);
            if (e->kind == KIND_LONG) {
                n += sizeof(LongData) + (size_t)self->bands * 4 + e->u.data->n * 2;
            }
        }
        for (size_t i = 0; i <= self->copies.mask; i++) {
            n += self->copies.slots[i].cap * sizeof(uint32_t);
        }
    }
    return PyLong_FromSize_t(n);
}

static int
Index_traverse(Index *self, visitproc visit, void *arg)
{
    Py_VISIT(self->clean);
    Py_VISIT(self->match_type);
    Py_VISIT(self->exact);
    for (int i = 0; i < 6; i++) {
        Py_VISIT(self->params[i]);
    }
    if (self->ring != NULL) {
        for (uint32_t s = self->oldest; s != self->seq; s++) {
            Entry *e = entry_at(self, s);
            Py_VISIT(e->id);
            if (e->kind == KIND_SHORT) {
                Py_VISIT(e->u.text);
            }
        }
    }
    return 0;
}

static int
Index_clear(Index *self)
{
    Py_CLEAR(self->clean);
    Py_CLEAR(self->match_type);
    Py_CLEAR(self->exact);
    for (int i = 0; i < 6; i++) {
        Py_CLEAR(self->params[i]);
    }
    if (!self->busy) {
        state_free(self);
    }
    self->ready = 0;
    return 0;
}

static void
Index_dealloc(Index *self)
{
    PyObject_GC_UnTrack(self);
    Index_clear(self);
    state_free(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef Index_methods[] = {
    {"_setup", (PyCFunction)Index_setup, METH_VARARGS, "Set the parameters and empty the index."},
    {"add_match", (PyCFunction)(void (*)(void))Index_add_match, METH_FASTCALL | METH_KEYWORDS,
     "add_match(post_id, text, ts, *, cleaned=None): record a post; its earliest near-duplicate or None."},
    {"add", (PyCFunction)(void (*)(void))Index_add, METH_FASTCALL | METH_KEYWORDS,
     "add(post_id, text, ts, *, cleaned=None): record a post; the id of its earliest near-duplicate or None."},
    {"find", (PyCFunction)(void (*)(void))Index_find, METH_FASTCALL | METH_KEYWORDS,
     "find(text, ts=None): the earliest near-duplicate of text in the window, without recording it."},
    {"evict", (PyCFunction)(void (*)(void))Index_evict, METH_FASTCALL | METH_KEYWORDS,
     "evict(now): advance the window and drop posts older than it; how many went."},
    {"_nbytes", (PyCFunction)Index_nbytes, METH_NOARGS, "Bytes held by the C structures."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Index_getset[] = {
    {"now", (getter)Index_get_now, NULL, "The newest timestamp seen so far (-inf before the first).", NULL},
    {"window_seconds", (getter)Index_get_param, NULL, "The window, in seconds.", (void *)0},
    {"threshold", (getter)Index_get_param, NULL, "The Jaccard similarity from which posts are duplicates.", (void *)1},
    {"bands", (getter)Index_get_param, NULL, "LSH bands.", (void *)2},
    {"rows", (getter)Index_get_param, NULL, "LSH rows per band.", (void *)3},
    {"min_chars", (getter)Index_get_param, NULL, "Shorter cleaned texts match only identical ones.", (void *)4},
    {"bucket_cap", (getter)Index_get_param, NULL, "Most posts one bucket keeps.", (void *)5},
    {"_buckets", (getter)Index_get_buckets, NULL, "(key, post number) of the live bucket slots, in slot order.", NULL},
    {"_exact", (getter)Index_get_exact, NULL, "A copy of the short texts' lists of post numbers.", NULL},
    {"_copies", (getter)Index_get_copies, NULL, "A copy of the copies' records, as dedup keeps them.", NULL},
    {"_first", (getter)Index_get_first, NULL, "Filed copy's post number -> its text's digest.", NULL},
    {"_entries", (getter)Index_get_entries, NULL, "A copy of the entries (hashes sorted).", NULL},
    {"_table", (getter)Index_get_table, NULL, "The bucket table's arrays as bytes.", NULL},
    {"_seqs", (getter)Index_get_seqs, NULL, "(oldest post number, next post number).", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PySequenceMethods Index_as_sequence = {
    .sq_length = (lenfunc)Index_len,
};

static PyTypeObject IndexType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "monitor.analysis._dedup_c.Index",
    .tp_doc = PyDoc_STR("The state and hot paths of dedup.NearDuplicateIndex (set up by its _setup)."),
    .tp_basicsize = sizeof(Index),
    .tp_itemsize = 0,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_new = PyType_GenericNew,
    .tp_dealloc = (destructor)Index_dealloc,
    .tp_traverse = (traverseproc)Index_traverse,
    .tp_clear = (inquiry)Index_clear,
    .tp_methods = Index_methods,
    .tp_getset = Index_getset,
    .tp_as_sequence = &Index_as_sequence,
};

/* Module-level helpers, for tests: the digest and the hashes as the index computes them. */

static PyObject *
mod_digest(PyObject *module, PyObject *arg)
{
    if (!PyBytes_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "bytes expected");
        return NULL;
    }
    return PyLong_FromUnsignedLongLong(blake2b_64((const uint8_t *)PyBytes_AS_STRING(arg),
                                                  (size_t)PyBytes_GET_SIZE(arg)));
}

static PyObject *
mod_tuple_hash(PyObject *module, PyObject *arg)
{
    /* hash(tuple(ints)) for a tuple of ints in the int64 range, computed the index's way */
    if (!PyTuple_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "tuple expected");
        return NULL;
    }
    Py_ssize_t n = PyTuple_GET_SIZE(arg);
    uint64_t *lanes = PyMem_Calloc((size_t)n + 1, sizeof(uint64_t));
    if (lanes == NULL) {
        return PyErr_NoMemory();
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        long long v = PyLong_AsLongLong(PyTuple_GET_ITEM(arg, i));
        if (v == -1 && PyErr_Occurred()) {
            PyMem_Free(lanes);
            return NULL;
        }
        lanes[i] = int_hash((int64_t)v);
    }
    int64_t h = tuple_hash(lanes, n);
    PyMem_Free(lanes);
    return PyLong_FromLongLong(h);
}

static PyObject *
mod_round4(PyObject *module, PyObject *arg)
{
    double x = PyFloat_AsDouble(arg);
    if (x == -1.0 && PyErr_Occurred()) {
        return NULL;
    }
    double r = round4(x);
    if (PyErr_Occurred()) {
        return NULL;
    }
    return PyFloat_FromDouble(r);
}

static PyMethodDef module_methods[] = {
    {"_digest", mod_digest, METH_O, "blake2b(data, digest_size=8) as a little-endian int."},
    {"_tuple_hash", mod_tuple_hash, METH_O, "hash() of a tuple of int64 values."},
    {"_round4", mod_round4, METH_O, "round(x, 4)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "monitor.analysis._dedup_c",
    .m_doc = PyDoc_STR("C core of monitor.analysis.dedup.NearDuplicateIndex (same answers as the Python code)."),
    .m_size = -1,
    .m_methods = module_methods,
};

PyMODINIT_FUNC
PyInit__dedup_c(void)
{
    if (PyType_Ready(&IndexType) < 0) {
        return NULL;
    }
    PyObject *m = PyModule_Create(&module_def);
    if (m == NULL) {
        return NULL;
    }
    Py_INCREF(&IndexType);
    if (PyModule_AddObject(m, "Index", (PyObject *)&IndexType) < 0) {
        Py_DECREF(&IndexType);
        Py_DECREF(m);
        return NULL;
    }
    if (PyModule_AddIntConstant(m, "VERSION", CORE_VERSION) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
