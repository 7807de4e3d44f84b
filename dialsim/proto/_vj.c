/*
 * RFC 1144 Van Jacobson TCP/IP header compression: the compiled twin of the
 * reference classes in dialsim/proto/vj.py.
 *
 * Scope: VjCompressor and VjDecompressor with vj.py's API, state and
 * counters: the TYPE_IP / UNCOMPRESSED_TCP / COMPRESSED_TCP decision, the
 * change mask and deltas with SPECIAL_I / SPECIAL_D, the slots in least
 * recently used order, compress_slot_id, the decompressor's toss state, its
 * errors (short, unknown connection, over 65535 octets) and the IP header
 * checksum it recomputes.  The rules and their RFC sections are described in
 * vj.py; this file must give the same (kind, data), the same datagrams and
 * the same counters (tests/unit/test_vj_c.py compares the two).
 *
 * A slot keeps its saved header's octets only: every field vj.py keeps
 * beside them is read from those octets.  The compressor finds a
 * connection's slot by comparing the addresses and ports of the saved
 * headers, most recently used first (vj.py keeps a dict; a connection is in
 * at most one slot, so both find the same one).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <stdint.h>
#include <string.h>

#include "_octets.h"

#define TYPE_ERROR 0x00
#define TYPE_IP 0x40
#define TYPE_UNCOMPRESSED_TCP 0x70
#define TYPE_COMPRESSED_TCP 0x80

/* change mask bits (RFC 1144 3.2.2) */
#define NEW_C 0x40
#define NEW_I 0x20
#define TCP_PUSH_BIT 0x10
#define NEW_S 0x08
#define NEW_A 0x04
#define NEW_W 0x02
#define NEW_U 0x01
#define SPECIAL_I (NEW_S | NEW_W | NEW_U)
#define SPECIAL_D (NEW_S | NEW_A | NEW_W | NEW_U)
#define SPECIALS_MASK (NEW_S | NEW_A | NEW_W | NEW_U)

#define TH_FIN 0x01
#define TH_SYN 0x02
#define TH_RST 0x04
#define TH_PUSH 0x08
#define TH_ACK 0x10
#define TH_URG 0x20

#define MAX_SLOTS 256
#define MAX_HEADER 120 /* 60 octets of IPv4 header, 60 of TCP */
#define MAX_DELTAS 15  /* five deltas of at most three octets */

/* ---- octets and fields ------------------------------------------------- */

static inline int ihl_of(const uint8_t *p)
{
    return (p[0] & 0x0F) * 4;
}

/* RFC 1071 checksum of len (even) octets: ipv4.internet_checksum's value. */
static unsigned internet_checksum(const uint8_t *p, int len)
{
    uint32_t sum = 0;
    for (int i = 0; i < len; i += 2)
        sum += be16(p + i);
    while (sum >> 16)
        sum = (sum & 0xFFFF) + (sum >> 16);
    return ~sum & 0xFFFF;
}

/* A connection slot: the header last sent or received on it. */
typedef struct {
    uint8_t len; /* 0: empty */
    uint8_t h[MAX_HEADER];
} saved_header;

static void save(saved_header *s, const uint8_t *header, int len)
{
    memcpy(s->h, header, (size_t)len);
    s->len = (uint8_t)len;
}

/* The saved headers, None for an empty slot (for state()). */
static PyObject *saved_tuple(const saved_header *saved, int slots)
{
    PyObject *t = PyTuple_New(slots);
    if (t == NULL)
        return NULL;
    for (int i = 0; i < slots; i++) {
        PyObject *h;
        if (saved[i].len) {
            h = PyBytes_FromStringAndSize((const char *)saved[i].h, saved[i].len);
            if (h == NULL) {
                Py_DECREF(t);
                return NULL;
            }
        } else {
            h = Py_NewRef(Py_None);
        }
        PyTuple_SET_ITEM(t, i, h);
    }
    return t;
}

static int check_slots(int slots)
{
    if (slots < 1 || slots > MAX_SLOTS) {
        PyErr_SetString(PyExc_ValueError, "slots must be 1..256");
        return -1;
    }
    return 0;
}

/* bytes(obj): obj itself when it is bytes already, as in Python. */
static PyObject *as_bytes(PyObject *obj, const Py_buffer *view)
{
    if (PyBytes_CheckExact(obj))
        return Py_NewRef(obj);
    return PyBytes_FromStringAndSize((const char *)view->buf, view->len);
}

/* The n (1 or 2) arguments of a method called as vj.py's, by position or by
   name (names: NULL-terminated, format: "O" or "OO" and ":name"). */
static int method_args(PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
                       const char *format, char **names, PyObject **out)
{
    Py_ssize_t n = names[1] == NULL ? 1 : 2;
    if (kwnames == NULL && nargs == n) {
        for (Py_ssize_t i = 0; i < n; i++)
            out[i] = args[i];
        return 0;
    }
    Py_ssize_t nkw = kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames);
    PyObject *tuple = PyTuple_New(nargs), *dict = PyDict_New();
    int ok = tuple != NULL && dict != NULL;
    for (Py_ssize_t i = 0; ok && i < nargs; i++)
        PyTuple_SET_ITEM(tuple, i, Py_NewRef(args[i]));
    for (Py_ssize_t i = 0; ok && i < nkw; i++)
        ok = PyDict_SetItem(dict, PyTuple_GET_ITEM(kwnames, i), args[nargs + i]) == 0;
    ok = ok && PyArg_ParseTupleAndKeywords(tuple, dict, format, names, &out[0], &out[1]);
    Py_XDECREF(tuple); /* the arguments stay referenced by the caller */
    Py_XDECREF(dict);
    return ok ? 0 : -1;
}

/* ---- the compressor (RFC 1144 3.2, vj.VjCompressor) --------------------- */

typedef struct {
    PyObject_HEAD
    int slots;
    char compress_slot_id;
    int last_xmit; /* -1: none yet */
    long long packets, compressed, uncompressed, ip, searches, misses;
    uint8_t lru[MAX_SLOTS]; /* slot numbers, least recently used first */
    saved_header saved[MAX_SLOTS];
} Compressor;

/* IP + TCP header length of an unfragmented IPv4/TCP segment that carries ACK
   and none of SYN, FIN, RST; 0 for anything else (it goes as TYPE_IP). */
static int compressible(const uint8_t *p, Py_ssize_t n)
{
    if (n < 40 || p[0] >> 4 != 4 || p[9] != 6)
        return 0;
    int ihl = ihl_of(p);
    if (ihl < 20 || (be16(p + 6) & 0x3FFF) || n < ihl + 20)
        return 0;
    const uint8_t *t = p + ihl;
    int doff = (t[12] >> 4) * 4;
    if (doff < 20 || n < ihl + doff || (t[13] & (TH_SYN | TH_FIN | TH_RST | TH_ACK)) != TH_ACK)
        return 0;
    return ihl + doff;
}

/* The position in the LRU order of the slot holding the connection (addresses
   and ports) of packet p, or -1. */
static int find(const Compressor *c, const uint8_t *p, int ihl)
{
    for (int i = c->slots - 1; i >= 0; i--) {
        const saved_header *s = &c->saved[c->lru[i]];
        if (s->len && memcmp(s->h + 12, p + 12, 8) == 0
            && memcmp(s->h + ihl_of(s->h), p + ihl, 4) == 0)
            return i;
    }
    return -1;
}

/* Make the slot at LRU position i the most recently used. */
static void touch(Compressor *c, int i)
{
    int last = c->slots - 1;
    if (i == last)
        return;
    uint8_t slot = c->lru[i];
    memmove(c->lru + i, c->lru + i + 1, (size_t)(last - i));
    c->lru[last] = slot;
}

/* A delta: one octet 1..255, else 0 and two octets (also for zero). */
static inline uint8_t *enc(uint8_t *q, unsigned v)
{
    if (v > 0 && v < 256) {
        *q++ = (uint8_t)v;
    } else {
        *q++ = 0;
        *q++ = (uint8_t)(v >> 8);
        *q++ = (uint8_t)v;
    }
    return q;
}

/* Whether the parts of packet p that the compressed format cannot change are
   as in the saved header o: version, IHL, TOS, fragment field, TTL, protocol,
   IP and TCP options, data offset, the TCP flags but PSH and URG. */
static int same_fixed_parts(const uint8_t *o, const uint8_t *p, int ihl, int hlen)
{
    const uint8_t *ot = o + ihl, *nt = p + ihl;
    int doff = hlen - ihl;
    return memcmp(o, p, 2) == 0 && memcmp(o + 6, p + 6, 4) == 0
        && ot[12] == nt[12]
        && (ihl <= 20 || memcmp(o + 20, p + 20, (size_t)(ihl - 20)) == 0)
        && (doff <= 20 || memcmp(ot + 20, nt + 20, (size_t)(doff - 20)) == 0)
        && ((ot[13] ^ nt[13]) & ~(TH_PUSH | TH_URG) & 0xFF) == 0;
}

/* The change mask (without C and P) of packet p against its connection's saved
   header o, its deltas written to d (*dlen octets); -1 if it must go
   uncompressed (RFC 1144 3.2.3; vj._delta_encode). */
static int delta_encode(const uint8_t *o, const uint8_t *p, int ihl, int hlen, uint8_t *d, int *dlen)
{
    if (!same_fixed_parts(o, p, ihl, hlen))
        return -1;
    const uint8_t *ot = o + ihl, *nt = p + ihl;
    int changes = 0;
    uint8_t *q = d;
    if (nt[13] & TH_URG) {
        q = enc(q, be16(nt + 18));
        changes |= NEW_U;
    } else if (be16(nt + 18) != be16(ot + 18)) {
        return -1;
    }
    unsigned dw = (be16(nt + 14) - be16(ot + 14)) & 0xFFFF;
    if (dw) {
        q = enc(q, dw);
        changes |= NEW_W;
    }
    uint32_t da = be32(nt + 8) - be32(ot + 8);
    uint32_t ds = be32(nt + 4) - be32(ot + 4);
    if (da > 0xFFFF || ds > 0xFFFF)
        return -1;
    if (da) {
        q = enc(q, da);
        changes |= NEW_A;
    }
    if (ds) {
        q = enc(q, ds);
        changes |= NEW_S;
    }
    long old_len = (long)be16(o + 2), new_len = (long)be16(p + 2);
    long old_data = old_len - hlen;
    int old_urg = ot[13] & TH_URG;
    if (changes == 0) {
        /* data after a bare ACK; anything else is a retransmission or probe */
        if (!(new_len != old_len && old_len == hlen))
            return -1;
    } else if (changes == SPECIAL_I || changes == SPECIAL_D) {
        return -1;
    } else if (changes == (NEW_S | NEW_A)) {
        if (ds == da && (long)ds == old_data && !old_urg) {
            changes = SPECIAL_I;
            q = d;
        }
    } else if (changes == NEW_S) {
        if ((long)ds == old_data && !old_urg) {
            changes = SPECIAL_D;
            q = d;
        }
    }
    unsigned did = (be16(p + 4) - be16(o + 4)) & 0xFFFF;
    if (did != 1) {
        q = enc(q, did);
        changes |= NEW_I;
    }
    *dlen = (int)(q - d);
    return changes;
}

static PyObject *kind_and(int kind, PyObject *data)
{
    if (data == NULL)
        return NULL;
    PyObject *k = PyLong_FromLong(kind);
    if (k == NULL) {
        Py_DECREF(data);
        return NULL;
    }
    PyObject *t = PyTuple_New(2);
    if (t == NULL) {
        Py_DECREF(k);
        Py_DECREF(data);
        return NULL;
    }
    PyTuple_SET_ITEM(t, 0, k);
    PyTuple_SET_ITEM(t, 1, data);
    return t;
}

/* UNCOMPRESSED_TCP: the datagram with the slot number as its protocol. */
static PyObject *send_uncompressed(Compressor *c, int pos, const uint8_t *p, Py_ssize_t n, int hlen)
{
    touch(c, pos);
    int slot = c->lru[c->slots - 1];
    save(&c->saved[slot], p, hlen);
    c->last_xmit = slot;
    c->uncompressed++;
    PyObject *data = PyBytes_FromStringAndSize((const char *)p, n);
    if (data != NULL)
        ((uint8_t *)PyBytes_AS_STRING(data))[9] = (uint8_t)slot;
    return kind_and(TYPE_UNCOMPRESSED_TCP, data);
}

/* COMPRESSED_TCP, or UNCOMPRESSED_TCP when the change cannot be said. */
static PyObject *send_compressed(Compressor *c, int pos, const uint8_t *p, Py_ssize_t n, int hlen)
{
    touch(c, pos);
    int slot = c->lru[c->slots - 1];
    int ihl = ihl_of(p), dlen;
    uint8_t deltas[MAX_DELTAS];
    int changes = delta_encode(c->saved[slot].h, p, ihl, hlen, deltas, &dlen);
    if (changes < 0)
        return send_uncompressed(c, c->slots - 1, p, n, hlen);
    if (p[ihl + 13] & TH_PUSH)
        changes |= TCP_PUSH_BIT;
    save(&c->saved[slot], p, hlen);
    uint8_t head[2];
    int head_len = 1;
    head[0] = (uint8_t)changes;
    if (!c->compress_slot_id || c->last_xmit != slot) {
        c->last_xmit = slot;
        head[0] |= NEW_C;
        head[1] = (uint8_t)slot;
        head_len = 2;
    }
    c->compressed++;
    Py_ssize_t payload = n - hlen;
    PyObject *data = PyBytes_FromStringAndSize(NULL, head_len + 2 + dlen + payload);
    if (data == NULL)
        return NULL;
    uint8_t *q = (uint8_t *)PyBytes_AS_STRING(data);
    memcpy(q, head, (size_t)head_len);
    q += head_len;
    memcpy(q, p + ihl + 16, 2); /* the TCP checksum, unchanged */
    q += 2;
    memcpy(q, deltas, (size_t)dlen);
    memcpy(q + dlen, p + hlen, (size_t)payload);
    return kind_and(TYPE_COMPRESSED_TCP, data);
}

/* compress(packet) -> (kind, data) */
static PyObject *compress(Compressor *c, PyObject *arg)
{
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    const uint8_t *p = view.buf;
    Py_ssize_t n = view.len;
    PyObject *result;
    c->packets++;
    int hlen = compressible(p, n);
    if (hlen == 0) {
        c->ip++;
        result = kind_and(TYPE_IP, as_bytes(arg, &view));
    } else {
        c->searches++;
        int pos = find(c, p, ihl_of(p));
        if (pos < 0) {
            c->misses++;
            result = send_uncompressed(c, 0, p, n, hlen);
        } else {
            result = send_compressed(c, pos, p, n, hlen);
        }
    }
    PyBuffer_Release(&view);
    return result;
}

static PyObject *Compressor_compress(Compressor *c, PyObject *const *args, Py_ssize_t nargs,
                                     PyObject *kwnames)
{
    static char *names[] = {"packet", NULL};
    PyObject *arg[2];
    if (method_args(args, nargs, kwnames, "O:compress", names, arg) < 0)
        return NULL;
    return compress(c, arg[0]);
}

static int Compressor_init(Compressor *c, PyObject *args, PyObject *kwds)
{
    static char *names[] = {"slots", "compress_slot_id", NULL};
    int slots = 16, compress_slot_id = 1;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|ip:VjCompressor", names, &slots,
                                     &compress_slot_id))
        return -1;
    if (check_slots(slots) < 0)
        return -1;
    c->slots = slots;
    c->compress_slot_id = (char)compress_slot_id;
    c->last_xmit = -1;
    c->packets = c->compressed = c->uncompressed = c->ip = c->searches = c->misses = 0;
    for (int i = 0; i < MAX_SLOTS; i++) {
        c->lru[i] = (uint8_t)i;
        c->saved[i].len = 0;
    }
    return 0;
}

static PyObject *Compressor_state(Compressor *c, PyObject *Py_UNUSED(ignored))
{
    PyObject *lru = PyTuple_New(c->slots);
    if (lru == NULL)
        return NULL;
    for (int i = 0; i < c->slots; i++) {
        PyObject *v = PyLong_FromLong(c->lru[i]);
        if (v == NULL) {
            Py_DECREF(lru);
            return NULL;
        }
        PyTuple_SET_ITEM(lru, i, v);
    }
    PyObject *last = c->last_xmit < 0 ? Py_NewRef(Py_None) : PyLong_FromLong(c->last_xmit);
    PyObject *saved = saved_tuple(c->saved, c->slots);
    if (last == NULL || saved == NULL) {
        Py_XDECREF(last);
        Py_XDECREF(saved);
        Py_DECREF(lru);
        return NULL;
    }
    return Py_BuildValue("(NNN)", saved, lru, last);
}

static PyMethodDef Compressor_methods[] = {
    {"compress", (PyCFunction)(void (*)(void))Compressor_compress, METH_FASTCALL | METH_KEYWORDS,
     "compress(ip_packet) -> (kind, data)."},
    {"state", (PyCFunction)Compressor_state, METH_NOARGS,
     "state() -> (saved headers (None: empty slot), slots least recently used first, "
     "last slot sent or None); for comparing with vj.VjCompressor."},
    {NULL, NULL, 0, NULL},
};

#define MEMBER(type, name, kind, flags) \
    {#name, kind, offsetof(type, name), flags, NULL}

static PyMemberDef Compressor_members[] = {
    MEMBER(Compressor, slots, T_INT, READONLY),
    MEMBER(Compressor, compress_slot_id, T_BOOL, READONLY),
    MEMBER(Compressor, packets, T_LONGLONG, 0),
    MEMBER(Compressor, compressed, T_LONGLONG, 0),
    MEMBER(Compressor, uncompressed, T_LONGLONG, 0),
    MEMBER(Compressor, ip, T_LONGLONG, 0),
    MEMBER(Compressor, searches, T_LONGLONG, 0),
    MEMBER(Compressor, misses, T_LONGLONG, 0),
    {NULL, 0, 0, 0, NULL},
};

static PyTypeObject CompressorType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "dialsim.proto._vj.VjCompressor",
    .tp_basicsize = sizeof(Compressor),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "VjCompressor(slots=16, compress_slot_id=True): transmit side of RFC 1144.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Compressor_init,
    .tp_methods = Compressor_methods,
    .tp_members = Compressor_members,
};

/* ---- the decompressor (RFC 1144 4, vj.VjDecompressor) ------------------- */

typedef struct {
    PyObject_HEAD
    int slots;
    int last_recv;
    int toss; /* discard COMPRESSED_TCP without a connection number */
    long long errors, tossed, packets;
    saved_header saved[MAX_SLOTS];
} Decompressor;

static PyObject *fail(Decompressor *s)
{
    s->errors++;
    s->toss = 1;
    Py_RETURN_NONE;
}

static PyObject *receive_uncompressed(Decompressor *s, const uint8_t *p, Py_ssize_t n)
{
    if (n < 40)
        return fail(s);
    int slot = p[9], ihl = ihl_of(p);
    if (slot >= s->slots || ihl < 20 || n < ihl + 20)
        return fail(s);
    int hlen = ihl + (p[ihl + 12] >> 4) * 4;
    if (hlen < ihl + 20 || n < hlen)
        return fail(s);
    PyObject *packet = PyBytes_FromStringAndSize((const char *)p, n);
    if (packet == NULL)
        return NULL;
    uint8_t *r = (uint8_t *)PyBytes_AS_STRING(packet);
    r[9] = 6;
    save(&s->saved[slot], r, hlen);
    s->last_recv = slot;
    s->toss = 0;
    s->packets++;
    return packet;
}

/* A delta at p[*i] (advancing *i); -1 if the packet ends first. */
static inline int dec(const uint8_t *p, Py_ssize_t n, Py_ssize_t *i, unsigned *v)
{
    if (*i >= n)
        return -1;
    if (p[*i]) {
        *v = p[(*i)++];
        return 0;
    }
    if (*i + 3 > n)
        return -1;
    *v = be16(p + *i + 1);
    *i += 3;
    return 0;
}

/* A header's fields that a compressed packet changes. */
typedef struct {
    unsigned flags, win, urg, ident;
    uint32_t seq, ack;
} changed_fields;

/* Apply the change mask and the deltas from p[*i] to f (from the saved header
   o of hlen octets); -1 if the packet ends before its deltas do. */
static int header_changes(int changes, const uint8_t *p, Py_ssize_t n, Py_ssize_t *i,
                          const uint8_t *o, int hlen, changed_fields *f)
{
    unsigned v;
    f->flags = changes & TCP_PUSH_BIT ? f->flags | TH_PUSH : f->flags & (0xFFu ^ TH_PUSH);
    int special = changes & SPECIALS_MASK;
    if (special == SPECIAL_I || special == SPECIAL_D) {
        uint32_t data = (uint32_t)((long)be16(o + 2) - hlen); /* the saved packet's data */
        if (special == SPECIAL_I)
            f->ack += data;
        f->seq += data;
    } else {
        if (changes & NEW_U) {
            if (dec(p, n, i, &v) < 0)
                return -1;
            f->flags |= TH_URG;
            f->urg = v;
        } else {
            f->flags &= 0xFFu ^ TH_URG;
        }
        if (changes & NEW_W) {
            if (dec(p, n, i, &v) < 0)
                return -1;
            f->win = (f->win + v) & 0xFFFF;
        }
        if (changes & NEW_A) {
            if (dec(p, n, i, &v) < 0)
                return -1;
            f->ack += v;
        }
        if (changes & NEW_S) {
            if (dec(p, n, i, &v) < 0)
                return -1;
            f->seq += v;
        }
    }
    v = 1;
    if ((changes & NEW_I) && dec(p, n, i, &v) < 0)
        return -1;
    f->ident = (f->ident + v) & 0xFFFF;
    return 0;
}

/* The datagram: the saved header o with the new fields and checksums, then the
   payload. */
static PyObject *rebuild(const uint8_t *o, int hlen, const changed_fields *f,
                         const uint8_t *checksum, const uint8_t *payload, Py_ssize_t len)
{
    PyObject *packet = PyBytes_FromStringAndSize(NULL, hlen + len);
    if (packet == NULL)
        return NULL;
    uint8_t *r = (uint8_t *)PyBytes_AS_STRING(packet);
    int ihl = ihl_of(o);
    uint8_t *t = r + ihl;
    memcpy(r, o, (size_t)hlen);
    put16(r + 2, (unsigned)(hlen + len));
    put16(r + 4, f->ident);
    put32(t + 4, f->seq);
    put32(t + 8, f->ack);
    t[13] = (uint8_t)f->flags;
    put16(t + 14, f->win);
    t[16] = checksum[0];
    t[17] = checksum[1];
    put16(t + 18, f->urg);
    r[10] = r[11] = 0;
    put16(r + 10, internet_checksum(r, ihl));
    memcpy(r + hlen, payload, (size_t)len);
    return packet;
}

static PyObject *receive_compressed(Decompressor *s, const uint8_t *p, Py_ssize_t n)
{
    if (n == 0)
        return fail(s);
    int changes = p[0];
    Py_ssize_t i = 1;
    if (changes & NEW_C) {
        if (n < 2)
            return fail(s);
        int slot = p[1];
        if (slot >= s->slots || !s->saved[slot].len)
            return fail(s);
        s->toss = 0;
        s->last_recv = slot;
        i = 2;
    } else if (s->toss) {
        s->tossed++;
        Py_RETURN_NONE;
    }
    saved_header *saved = &s->saved[s->last_recv];
    if (!saved->len || n < i + 2)
        return fail(s);
    const uint8_t *o = saved->h, *checksum = p + i;
    int hlen = saved->len;
    const uint8_t *ot = o + ihl_of(o);
    changed_fields f = {ot[13], be16(ot + 14), be16(ot + 18), be16(o + 4), be32(ot + 4), be32(ot + 8)};
    i += 2;
    if (header_changes(changes, p, n, &i, o, hlen, &f) < 0 || hlen + (n - i) > 0xFFFF)
        return fail(s);
    PyObject *packet = rebuild(o, hlen, &f, checksum, p + i, n - i);
    if (packet == NULL)
        return NULL;
    save(saved, (const uint8_t *)PyBytes_AS_STRING(packet), hlen);
    s->packets++;
    return packet;
}

/* The kind's value, or -1 for anything that is not one of the three kinds. */
static int kind_value(PyObject *kind)
{
    static const int kinds[] = {TYPE_IP, TYPE_UNCOMPRESSED_TCP, TYPE_COMPRESSED_TCP};
    if (PyLong_Check(kind)) {
        int overflow;
        long v = PyLong_AsLongAndOverflow(kind, &overflow);
        return overflow ? -1 : (int)(v == TYPE_IP || v == TYPE_UNCOMPRESSED_TCP
                                     || v == TYPE_COMPRESSED_TCP ? v : -1);
    }
    for (int k = 0; k < 3; k++) { /* as Python's ==, e.g. for 64.0 */
        PyObject *v = PyLong_FromLong(kinds[k]);
        if (v == NULL)
            return -2;
        int eq = PyObject_RichCompareBool(kind, v, Py_EQ);
        Py_DECREF(v);
        if (eq != 0)
            return eq < 0 ? -2 : kinds[k];
    }
    return -1;
}

static PyObject *Decompressor_decompress(Decompressor *s, PyObject *const *args, Py_ssize_t nargs,
                                         PyObject *kwnames)
{
    static char *names[] = {"kind", "data", NULL};
    PyObject *arg[2];
    if (method_args(args, nargs, kwnames, "OO:decompress", names, arg) < 0)
        return NULL;
    int kind = kind_value(arg[0]);
    if (kind == -2)
        return NULL;
    if (kind == -1) /* like vj.py, without looking at the data */
        return fail(s);
    Py_buffer view;
    if (PyObject_GetBuffer(arg[1], &view, PyBUF_SIMPLE) < 0)
        return NULL;
    const uint8_t *p = view.buf;
    PyObject *result;
    if (kind == TYPE_IP) {
        s->packets++;
        result = as_bytes(arg[1], &view);
    } else if (kind == TYPE_UNCOMPRESSED_TCP) {
        result = receive_uncompressed(s, p, view.len);
    } else {
        result = receive_compressed(s, p, view.len);
    }
    PyBuffer_Release(&view);
    return result;
}

static PyObject *Decompressor_toss(Decompressor *s, PyObject *Py_UNUSED(ignored))
{
    s->toss = 1;
    Py_RETURN_NONE;
}

static PyObject *Decompressor_state(Decompressor *s, PyObject *Py_UNUSED(ignored))
{
    PyObject *saved = saved_tuple(s->saved, s->slots);
    if (saved == NULL)
        return NULL;
    return Py_BuildValue("(NiO)", saved, s->last_recv, s->toss ? Py_True : Py_False);
}

static PyObject *Decompressor_tossing(Decompressor *s, void *Py_UNUSED(closure))
{
    return PyBool_FromLong(s->toss);
}

static int Decompressor_init(Decompressor *s, PyObject *args, PyObject *kwds)
{
    static char *names[] = {"slots", NULL};
    int slots = 16;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|i:VjDecompressor", names, &slots))
        return -1;
    if (check_slots(slots) < 0)
        return -1;
    s->slots = slots;
    s->last_recv = 0;
    s->toss = 1; /* nothing known yet: wait for an explicit connection */
    s->errors = s->tossed = s->packets = 0;
    for (int i = 0; i < MAX_SLOTS; i++)
        s->saved[i].len = 0;
    return 0;
}

static PyMethodDef Decompressor_methods[] = {
    {"decompress", (PyCFunction)(void (*)(void))Decompressor_decompress,
     METH_FASTCALL | METH_KEYWORDS,
     "decompress(kind, data) -> bytes | None: the IPv4 datagram, or None (tossed)."},
    {"toss", (PyCFunction)Decompressor_toss, METH_NOARGS,
     "toss(): the framing layer lost a frame: discard until resynchronised."},
    {"state", (PyCFunction)Decompressor_state, METH_NOARGS,
     "state() -> (saved headers (None: empty slot), last slot received, tossing); "
     "for comparing with vj.VjDecompressor."},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef Decompressor_members[] = {
    MEMBER(Decompressor, slots, T_INT, READONLY),
    MEMBER(Decompressor, errors, T_LONGLONG, 0),
    MEMBER(Decompressor, tossed, T_LONGLONG, 0),
    MEMBER(Decompressor, packets, T_LONGLONG, 0),
    {NULL, 0, 0, 0, NULL},
};

static PyGetSetDef Decompressor_getset[] = {
    {"tossing", (getter)Decompressor_tossing, NULL,
     "True while COMPRESSED_TCP packets without a connection number are discarded.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject DecompressorType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "dialsim.proto._vj.VjDecompressor",
    .tp_basicsize = sizeof(Decompressor),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "VjDecompressor(slots=16): receive side of RFC 1144.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Decompressor_init,
    .tp_methods = Decompressor_methods,
    .tp_members = Decompressor_members,
    .tp_getset = Decompressor_getset,
};

/* ---- the TCP payload a datagram carries (octets.py's tcp_payload_length) -- */

static PyObject *module_tcp_payload_length(PyObject *Py_UNUSED(m), PyObject *arg)
{
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    const uint8_t *p = view.buf;
    Py_ssize_t size = view.len, n = 0;
    if (size >= 20) {
        Py_ssize_t ihl = (p[0] & 0x0F) * 4, total = (p[2] << 8) | p[3];
        if (p[0] >> 4 == 4 && p[9] == 6 && size >= ihl + 20) {
            n = (total < size ? total : size) - ihl - (p[ihl + 12] >> 4) * 4;
            if (n < 0)
                n = 0;
        }
    }
    PyBuffer_Release(&view);
    return PyLong_FromSsize_t(n);
}

/* ---- the module -------------------------------------------------------- */

static PyMethodDef module_methods[] = {
    {"tcp_payload_length", module_tcp_payload_length, METH_O,
     "tcp_payload_length(packet) -> int: octets of TCP payload in an IPv4/TCP datagram, "
     "0 for anything else (dialsim.proto.octets.tcp_payload_length)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "dialsim.proto._vj",
    .m_doc = "RFC 1144 VJ header compressor and decompressor in C (the twin of vj.py's), "
             "and the TCP payload length the links count (the twin of octets.py's).",
    .m_size = -1,
    .m_methods = module_methods,
};

PyMODINIT_FUNC PyInit__vj(void)
{
    if (PyType_Ready(&CompressorType) < 0 || PyType_Ready(&DecompressorType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    Py_INCREF(&CompressorType);
    Py_INCREF(&DecompressorType);
    if (PyModule_AddObject(m, "VjCompressor", (PyObject *)&CompressorType) < 0
        || PyModule_AddObject(m, "VjDecompressor", (PyObject *)&DecompressorType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
