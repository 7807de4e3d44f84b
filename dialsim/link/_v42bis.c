/*
 * ITU-T V.42bis (01/1990) data compression: the compiled twin of
 * dialsim/link/v42bis_ref.py.
 *
 * Scope: one direction's encoder and decoder (BTLZ dictionary of P1 = N2
 * codewords, strings of at most P2 = N7 octets, codeword size C2 growing from
 * 9 bits with STEPUP, leaves recycled when the dictionary is full, transparent
 * and compressed modes with ESC ECM / ETM, FLUSH at the end of each chunk).
 * The procedure, its section numbers and dialsim's compressibility test are
 * described in v42bis_ref.py; this file must produce the same bytes (the
 * property tests compare the two).  The only addition here is a hash table
 * that finds a string's child for an octet in O(1); it does not change what
 * the dictionary holds.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <stdint.h>
#include <string.h>

#define N3 8
#define N4 256
#define N6 3
#define N5 (N4 + N6)
#define P1_MIN 512
#define P1_MAX 4096
#define P2_MIN 6
#define P2_MAX 250
#define HASH_BITS 14
#define HASH_SIZE (1 << HASH_BITS) /* at least twice P1_MAX: short probe runs */
#define ESCAPE_STEP 51
#define TEST_OCTETS 256

enum { ETM = 0, FLUSH = 1, STEPUP = 2 };
enum { ECM = 0, EID = 1, RESET = 2 };

static PyObject *V42bisError; /* dialsim.link.v42bis_ref.V42bisError */

/* ---- the dictionary and the string matching procedure (6.1-6.5) -------- */

typedef struct {
    int n1, n2, n7;
    int c1, c2, c3;
    int cur, pending, last_created;
    uint16_t parent[P1_MAX];   /* 0: a root or an empty entry */
    uint16_t children[P1_MAX];
    uint8_t octet[P1_MAX];
    uint8_t depth[P1_MAX];     /* string length; 0: empty entry */
    uint32_t slot[HASH_SIZE];  /* linear probing: key << 12 | codeword; 0: free */
} dictionary;

/* The hash key of a string's child for an octet (never 0: parents are >= 3). */
static inline uint32_t key_of(int parent, int octet)
{
    return ((uint32_t)parent << 8) | (uint32_t)octet;
}

static inline unsigned home(uint32_t key)
{
    return (key * 2654435761u) >> (32 - HASH_BITS);
}

static void dict_reset(dictionary *d)
{
    memset(d->parent, 0, sizeof d->parent);
    memset(d->children, 0, sizeof d->children);
    memset(d->octet, 0, sizeof d->octet);
    memset(d->depth, 0, sizeof d->depth);
    memset(d->slot, 0, sizeof d->slot);
    for (int c = 0; c < N4; c++) {
        d->octet[c + N6] = (uint8_t)c;
        d->depth[c + N6] = 1;
    }
    d->c1 = N5;
    d->c2 = N3 + 1;
    d->c3 = 2 * N4;
    d->cur = d->pending = d->last_created = 0;
}

static void dict_init(dictionary *d, int p1, int p2)
{
    d->n2 = p1;
    d->n7 = p2;
    d->n1 = 0;
    while ((1 << d->n1) < p1)
        d->n1++;
    dict_reset(d);
}

/* The slot holding the child for key, or the free slot where it would go;
   *node is the child's codeword, or 0. */
static inline unsigned probe(const dictionary *d, uint32_t key, int *node)
{
    unsigned i = home(key);
    uint32_t v;
    while ((v = d->slot[i]) != 0) {
        if ((v >> 12) == key) {
            *node = (int)(v & 0xFFF);
            return i;
        }
        i = (i + 1) & (HASH_SIZE - 1);
    }
    *node = 0;
    return i;
}

/* Remove a node from the hash table (backward-shift deletion). */
static void unhash(dictionary *d, int node)
{
    int found;
    unsigned i = probe(d, key_of(d->parent[node], d->octet[node]), &found);
    unsigned j = i;
    for (;;) {
        j = (j + 1) & (HASH_SIZE - 1);
        uint32_t v = d->slot[j];
        if (v == 0)
            break;
        unsigned k = home(v >> 12);
        int stays = (i <= j) ? (i < k && k <= j) : (i < k || k <= j);
        if (!stays) {
            d->slot[i] = v;
            i = j;
        }
    }
    d->slot[i] = 0;
}

/* 6.5: the next entry to use is the next one without children; detach it. */
static void recover(dictionary *d)
{
    int c1 = d->c1;
    do {
        if (++c1 == d->n2)
            c1 = N5;
    } while (d->children[c1]);
    int up = d->parent[c1];
    if (up) {
        unhash(d, c1);
        d->children[up]--;
        d->parent[c1] = 0;
        d->depth[c1] = 0;
    }
    d->c1 = c1;
}

/* 6.4: add string + octet (known absent, its free slot at `at`) unless too
   long; the new entry or 0. */
static int insert(dictionary *d, int string, int octet, unsigned at)
{
    if (d->depth[string] >= d->n7)
        return 0;
    int new = d->c1;
    d->parent[new] = (uint16_t)string;
    d->octet[new] = (uint8_t)octet;
    d->depth[new] = (uint8_t)(d->depth[string] + 1);
    d->slot[at] = key_of(string, octet) << 12 | (uint32_t)new;
    d->children[string]++;
    recover(d);
    return new;
}

/* 6.4 for a string and an octet not looked up yet. */
static int add(dictionary *d, int string, int octet)
{
    int present;
    unsigned at = probe(d, key_of(string, octet), &present);
    return present ? 0 : insert(d, string, octet, at);
}

/* 6.3: feed one octet; the codeword of the string it ended, or 0. */
static inline int step(dictionary *d, int octet)
{
    int cur = d->cur;
    if (cur) {
        int next;
        unsigned at = probe(d, key_of(cur, octet), &next);
        if (next == 0)
            d->last_created = insert(d, cur, octet, at);
        else if (next != d->last_created) {
            d->cur = next;
            return 0;
        } else
            d->last_created = 0;
    } else {
        d->last_created = d->pending ? add(d, d->pending, octet) : 0;
        d->pending = 0;
    }
    d->cur = octet + N6;
    return cur;
}

/* End the current string without an octet (FLUSH, ECM); its codeword or 0.
   With no string in progress (an empty chunk right after a flush) there is
   nothing to end: the string cut before stays the one that the next octet
   extends (6.4), as the peer, which saw nothing, expects. */
static int cut(dictionary *d)
{
    int cur = d->cur;
    if (cur) {
        d->pending = cur;
        d->cur = 0;
    }
    return cur;
}

static int check_parameters(int p1, int p2)
{
    if (p1 < P1_MIN || p1 > P1_MAX) {
        PyErr_Format(PyExc_ValueError,
                     "P1 (codewords) must be in %d..%d, got %d", P1_MIN, P1_MAX, p1);
        return -1;
    }
    if (p2 < P2_MIN || p2 > P2_MAX) {
        PyErr_Format(PyExc_ValueError,
                     "P2 (string length) must be in %d..%d, got %d", P2_MIN, P2_MAX, p2);
        return -1;
    }
    return 0;
}

static int bit_length(int v)
{
    int n = 0;
    while (v) {
        n++;
        v >>= 1;
    }
    return n;
}

/* ---- what an encoder and a decoder both hold --------------------------- */

#define CODER_FIELDS                                                     \
    dictionary d;                                                        \
    int p1, p2;                                                          \
    char transparent; /* char: read as T_BOOL */                         \
    int escape;       /* the escape character */                         \
    uint32_t bits;    /* codeword bits, least significant first */       \
    int nbits;                                                           \
    long long octets_in, octets_out;                                     \
    long long switches_to_compressed, switches_to_transparent;

typedef struct {
    PyObject_HEAD
    CODER_FIELDS
} Coder; /* the common initial part of Encoder and Decoder */

static int coder_init(Coder *c, PyObject *args, PyObject *kwds)
{
    static char *names[] = {"p1", "p2", NULL};
    int p1 = 2048, p2 = 32;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|ii", names, &p1, &p2))
        return -1;
    if (check_parameters(p1, p2) < 0)
        return -1;
    dict_init(&c->d, p1, p2);
    c->p1 = p1;
    c->p2 = p2;
    c->transparent = 1;
    c->escape = 0;
    c->bits = 0;
    c->nbits = 0;
    c->octets_in = c->octets_out = 0;
    c->switches_to_compressed = c->switches_to_transparent = 0;
    return 0;
}

#define RO(type, name, kind) {#name, kind, offsetof(type, name), READONLY, NULL}
#define CODER_MEMBERS(type)                                              \
    RO(type, p1, T_INT), RO(type, p2, T_INT),                            \
    RO(type, transparent, T_BOOL),                                       \
    RO(type, octets_in, T_LONGLONG), RO(type, octets_out, T_LONGLONG),   \
    RO(type, switches_to_compressed, T_LONGLONG),                        \
    RO(type, switches_to_transparent, T_LONGLONG)

/* ---- the encoder ------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    CODER_FIELDS
    long long test_octets, test_bits; /* the compressibility test's window */
    long long compressed_octets_in;
} Encoder;

/* the output of one encode() call; sized so that it cannot overflow */
typedef struct {
    uint8_t *p;
} sink;

static inline void put(Encoder *e, sink *out, int codeword)
{
    e->bits |= (uint32_t)codeword << e->nbits;
    e->nbits += e->d.c2;
    while (e->nbits >= 8) {
        *out->p++ = (uint8_t)e->bits;
        e->bits >>= 8;
        e->nbits -= 8;
    }
}

static inline void align(Encoder *e, sink *out)
{
    if (e->nbits)
        *out->p++ = (uint8_t)e->bits;
    e->bits = 0;
    e->nbits = 0;
}

/* A matched string is complete: its codeword (7.4) and the test's count. */
static void string_ended(Encoder *e, sink *out, int codeword)
{
    dictionary *d = &e->d;
    if (!e->transparent) {
        while (codeword >= d->c3) {
            put(e, out, STEPUP);
            d->c2++;
            d->c3 <<= 1;
        }
        put(e, out, codeword);
    }
    e->test_bits += codeword < d->c3 ? d->c2 : bit_length(codeword);
    e->test_octets += d->depth[codeword];
}

/* 7.8: dialsim's compressibility test, between two strings. */
static void test(Encoder *e, sink *out)
{
    if (e->test_octets < TEST_OCTETS)
        return;
    long long octet_bits = 8 * e->test_octets;
    long long codeword_bits = e->test_bits;
    e->test_octets = e->test_bits = 0;
    if (e->transparent && 16 * codeword_bits < 15 * octet_bits) {
        *out->p++ = (uint8_t)e->escape;
        *out->p++ = ECM;
        e->transparent = 0;
        e->switches_to_compressed++;
    } else if (!e->transparent && codeword_bits > octet_bits) {
        put(e, out, ETM);
        align(e, out);
        e->transparent = 1;
        e->switches_to_transparent++;
    }
}

/* 7.9: the partial string, then FLUSH and padding if not on an octet boundary. */
static void flush(Encoder *e, sink *out)
{
    if (e->transparent)
        return;
    int ended = cut(&e->d);
    if (ended)
        string_ended(e, out, ended);
    if (e->nbits) {
        put(e, out, FLUSH);
        align(e, out);
    }
}

static void encode_octets(Encoder *e, sink *out, const uint8_t *in, Py_ssize_t n)
{
    dictionary *d = &e->d;
    uint8_t *restrict p = out->p; /* locals: the octet writes alias nothing */
    int escape = e->escape;
    long long compressed = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        int octet = in[i];
        int ended = step(d, octet);
        if (ended) {
            out->p = p;
            e->escape = escape;
            string_ended(e, out, ended);
            test(e, out);
            p = out->p;
        }
        if (e->transparent) {
            *p++ = (uint8_t)octet;
            if (octet == escape) {
                *p++ = EID;
                escape = (escape + ESCAPE_STEP) & 0xFF;
            }
        } else {
            compressed++;
            if (octet == escape)
                escape = (escape + ESCAPE_STEP) & 0xFF;
        }
    }
    out->p = p;
    e->escape = escape;
    e->compressed_octets_in += compressed;
    flush(e, out);
}

static PyObject *Encoder_encode(Encoder *e, PyObject *arg)
{
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    Py_ssize_t n = view.len;
    /* per octet at most 2 octets (transparent: octet + EID) or one codeword
       (<= 12 bits); at most one mode switch (<= 5 octets) per 256 octets;
       STEPUPs and the flush are a few octets */
    Py_ssize_t bound = 2 * n + n / 16 + 64;
    PyObject *result = PyBytes_FromStringAndSize(NULL, bound);
    if (result == NULL) {
        PyBuffer_Release(&view);
        return NULL;
    }
    uint8_t *start = (uint8_t *)PyBytes_AS_STRING(result);
    sink out = {start};
    encode_octets(e, &out, (const uint8_t *)view.buf, n);
    PyBuffer_Release(&view);
    Py_ssize_t produced = out.p - start;
    e->octets_in += n;
    e->octets_out += produced;
    if (_PyBytes_Resize(&result, produced) < 0)
        return NULL;
    return result;
}

static int Encoder_init(Encoder *e, PyObject *args, PyObject *kwds)
{
    if (coder_init((Coder *)e, args, kwds) < 0)
        return -1;
    e->test_octets = e->test_bits = 0;
    e->compressed_octets_in = 0;
    return 0;
}

static PyMethodDef Encoder_methods[] = {
    {"encode", (PyCFunction)Encoder_encode, METH_O,
     "encode(chunk) -> bytes: the chunk's octets on the line, flushed (V.42bis 7.9)."},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef Encoder_members[] = {
    CODER_MEMBERS(Encoder),
    RO(Encoder, compressed_octets_in, T_LONGLONG),
    {NULL, 0, 0, 0, NULL},
};

static PyTypeObject EncoderType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "dialsim.link._v42bis.Encoder",
    .tp_basicsize = sizeof(Encoder),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "Encoder(p1=2048, p2=32): one direction's V.42bis encoder.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Encoder_init,
    .tp_methods = Encoder_methods,
    .tp_members = Encoder_members,
};

/* ---- the decoder ------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    CODER_FIELDS
    int escaped; /* the escape character came, its command code is next */
} Decoder;

/* a growable output buffer (a codeword can stand for up to 250 octets) */
typedef struct {
    uint8_t *p;
    Py_ssize_t len, cap;
} buffer;

static int reserve(buffer *b, Py_ssize_t more)
{
    if (b->len + more <= b->cap)
        return 0;
    Py_ssize_t cap = b->cap * 2 > b->len + more ? b->cap * 2 : b->len + more;
    uint8_t *p = PyMem_Realloc(b->p, cap);
    if (p == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    b->p = p;
    b->cap = cap;
    return 0;
}

static int decode_transparent(Decoder *s, buffer *out, int octet)
{
    if (s->escaped) {
        s->escaped = 0;
        if (octet == ECM) {
            cut(&s->d);
            s->transparent = 0;
            s->switches_to_compressed++;
            return 0;
        }
        if (octet == RESET) {
            dict_reset(&s->d);
            s->escape = 0;
            return 0;
        }
        if (octet != EID) {
            PyErr_Format(V42bisError,
                         "reserved command code %d after the escape character", octet);
            return -1;
        }
        octet = s->escape;
        s->escape = (s->escape + ESCAPE_STEP) & 0xFF;
    } else if (octet == s->escape) {
        s->escaped = 1;
        return 0;
    }
    out->p[out->len++] = (uint8_t)octet;
    step(&s->d, octet);
    return 0;
}

static int decode_control(Decoder *s, int codeword)
{
    dictionary *d = &s->d;
    if (codeword == STEPUP) {
        if (d->c2 >= d->n1) {
            PyErr_Format(V42bisError,
                         "STEPUP beyond the largest codeword size N1 = %d", d->n1);
            return -1;
        }
        d->c2++;
        d->c3 <<= 1;
        return 0;
    }
    s->bits = 0; /* ETM, FLUSH: the rest of the octet is padding */
    s->nbits = 0;
    if (codeword == ETM) {
        s->transparent = 1;
        s->switches_to_transparent++;
    }
    return 0;
}

static int decode_codeword(Decoder *s, buffer *out, int codeword)
{
    dictionary *d = &s->d;
    if (codeword < N6)
        return decode_control(s, codeword);
    if (codeword >= d->n2 || d->depth[codeword] == 0) {
        PyErr_Format(V42bisError,
                     "codeword %d names an empty dictionary entry", codeword);
        return -1;
    }
    int len = d->depth[codeword];
    if (reserve(out, len) < 0)
        return -1;
    uint8_t *string = out->p + out->len;
    int first = 0;
    for (int i = len - 1, n = codeword; i >= 0; i--, n = d->parent[n])
        string[i] = d->octet[n];
    first = string[0];
    if (d->pending)
        d->last_created = add(d, d->pending, first);
    d->pending = codeword;
    out->len += len;
    int escape = s->escape;
    for (int i = 0; i < len; i++)
        if (string[i] == escape)
            escape = (escape + ESCAPE_STEP) & 0xFF;
    s->escape = escape;
    return 0;
}

static int decode_octets(Decoder *s, buffer *out, const uint8_t *in, Py_ssize_t n)
{
    for (Py_ssize_t i = 0; i < n; i++) {
        int octet = in[i];
        if (s->transparent) {
            if (reserve(out, 1) < 0 || decode_transparent(s, out, octet) < 0)
                return -1;
            continue;
        }
        s->bits |= (uint32_t)octet << s->nbits;
        s->nbits += 8;
        int c2 = s->d.c2;
        if (s->nbits >= c2) { /* one octet completes at most one codeword (C2 > 8) */
            int codeword = (int)(s->bits & ((1u << c2) - 1));
            s->bits >>= c2;
            s->nbits -= c2;
            if (decode_codeword(s, out, codeword) < 0)
                return -1;
        }
    }
    return 0;
}

static PyObject *Decoder_decode(Decoder *s, PyObject *arg)
{
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    buffer out = {NULL, 0, 0};
    PyObject *result = NULL;
    if (reserve(&out, 4 * view.len + 256) == 0
        && decode_octets(s, &out, (const uint8_t *)view.buf, view.len) == 0) {
        s->octets_in += view.len;
        s->octets_out += out.len;
        result = PyBytes_FromStringAndSize((const char *)out.p, out.len);
    }
    PyMem_Free(out.p);
    PyBuffer_Release(&view);
    return result;
}

static int Decoder_init(Decoder *s, PyObject *args, PyObject *kwds)
{
    if (coder_init((Coder *)s, args, kwds) < 0)
        return -1;
    s->escaped = 0;
    return 0;
}

static PyMethodDef Decoder_methods[] = {
    {"decode", (PyCFunction)Decoder_decode, METH_O,
     "decode(data) -> bytes: the octets that data completes."},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef Decoder_members[] = {
    CODER_MEMBERS(Decoder),
    {NULL, 0, 0, 0, NULL},
};

static PyTypeObject DecoderType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "dialsim.link._v42bis.Decoder",
    .tp_basicsize = sizeof(Decoder),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "Decoder(p1=2048, p2=32): one direction's V.42bis decoder.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Decoder_init,
    .tp_methods = Decoder_methods,
    .tp_members = Decoder_members,
};

/* ---- the module -------------------------------------------------------- */

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "dialsim.link._v42bis",
    .m_doc = "ITU-T V.42bis encoder and decoder in C (the twin of v42bis_ref).",
    .m_size = -1,
};

PyMODINIT_FUNC PyInit__v42bis(void)
{
    PyObject *ref = PyImport_ImportModule("dialsim.link.v42bis_ref");
    if (ref == NULL)
        return NULL;
    V42bisError = PyObject_GetAttrString(ref, "V42bisError");
    Py_DECREF(ref);
    if (V42bisError == NULL)
        return NULL;
    if (PyType_Ready(&EncoderType) < 0 || PyType_Ready(&DecoderType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    Py_INCREF(&EncoderType);
    Py_INCREF(&DecoderType);
    if (PyModule_AddObject(m, "Encoder", (PyObject *)&EncoderType) < 0
        || PyModule_AddObject(m, "Decoder", (PyObject *)&DecoderType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
