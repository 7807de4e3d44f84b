/*
 * RFC 1662 asynchronous HDLC-like framing: the compiled twin of the encoder
 * and the decoder of dialsim/proto/hdlc.py.
 *
 * Scope: encode(frame, accm, *, fcs_size, leading_flag) is hdlc_encode (FCS
 * appended least significant octet first, 0x7D, 0x7E and the control
 * characters flagged in the transmit ACCM escaped, flags); Decoder is
 * HdlcDecoder (frame_ended / feed / receive_frames / receive, the receive ACCM,
 * the abort, runt, too-long and FCS checks with the LCP-with-a-16-bit-FCS rule
 * of 32-bit mode, the same counters) and it hands back the same DecodedFrame
 * records; fcs16 / fcs32 are the FCS registers of RFC 1662 appendix C.
 * hdlc.py describes the framing and is the reference: this file must give the
 * same bytes, records and counters for any input (the property tests of
 * tests/unit/test_hdlc_c.py compare the two).  What differs is only how:
 * one pass that drops received ACCM characters and un-escapes (memchr and
 * memcpy between escapes when no ACCM character is dropped), FCS tables
 * eight octets at a time, and the octets of a partly received frame kept here
 * instead of in a bytearray.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <stdint.h>
#include <string.h>

#define FLAG 0x7E
#define ESCAPE 0x7D
#define INITFCS16 0xFFFFu
#define GOODFCS16 0xF0B8u
#define INITFCS32 0xFFFFFFFFu
#define GOODFCS32 0xDEBB20E3u
#define DEFAULT_ACCM 0xFFFFFFFFu

static const uint8_t LCP_HEADER[4] = {0xFF, 0x03, 0xC0, 0x21};

static PyTypeObject *DecodedFrame; /* dialsim.proto.hdlc.DecodedFrame */

/* ---- the Frame Check Sequences (RFC 1662 C.2, C.3) ---------------------- */

/* fcs16_table[k][b], fcs32_table[k][b]: the register change of octet b
   followed by k zero octets (k = 0: RFC 1662's fcstab), so that eight octets
   go in one step. */
static uint16_t fcs16_table[8][256];
static uint32_t fcs32_table[8][256];

static void make_tables(void)
{
    for (unsigned b = 0; b < 256; b++) {
        uint32_t v16 = b, v32 = b;
        for (int i = 0; i < 8; i++) {
            v16 = (v16 & 1) ? (v16 >> 1) ^ 0x8408u : v16 >> 1;
            v32 = (v32 & 1) ? (v32 >> 1) ^ 0xEDB88320u : v32 >> 1;
        }
        fcs16_table[0][b] = (uint16_t)v16;
        fcs32_table[0][b] = v32;
    }
    for (int k = 1; k < 8; k++)
        for (unsigned b = 0; b < 256; b++) {
            uint16_t p16 = fcs16_table[k - 1][b];
            uint32_t p32 = fcs32_table[k - 1][b];
            fcs16_table[k][b] = (uint16_t)((p16 >> 8) ^ fcs16_table[0][p16 & 0xFF]);
            fcs32_table[k][b] = (p32 >> 8) ^ fcs32_table[0][p32 & 0xFF];
        }
}

static uint16_t fcs16(uint16_t fcs, const uint8_t *p, Py_ssize_t n)
{
    const uint16_t (*t)[256] = fcs16_table;
    for (; n >= 8; n -= 8, p += 8) {
        fcs ^= (uint16_t)(p[0] | (p[1] << 8));
        fcs = t[7][fcs & 0xFF] ^ t[6][fcs >> 8] ^ t[5][p[2]] ^ t[4][p[3]]
              ^ t[3][p[4]] ^ t[2][p[5]] ^ t[1][p[6]] ^ t[0][p[7]];
    }
    while (n-- > 0)
        fcs = (uint16_t)((fcs >> 8) ^ t[0][(fcs ^ *p++) & 0xFF]);
    return fcs;
}

static uint32_t fcs32(uint32_t fcs, const uint8_t *p, Py_ssize_t n)
{
    const uint32_t (*t)[256] = fcs32_table;
    for (; n >= 8; n -= 8, p += 8) {
        fcs ^= (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16)
               | ((uint32_t)p[3] << 24);
        fcs = t[7][fcs & 0xFF] ^ t[6][(fcs >> 8) & 0xFF] ^ t[5][(fcs >> 16) & 0xFF]
              ^ t[4][fcs >> 24] ^ t[3][p[4]] ^ t[2][p[5]] ^ t[1][p[6]] ^ t[0][p[7]];
    }
    while (n-- > 0)
        fcs = (fcs >> 8) ^ t[0][(fcs ^ *p++) & 0xFF];
    return fcs;
}

/* fcs16(data, fcs=0xFFFF) / fcs32(data, fcs=0xFFFFFFFF): the register after data. */
static PyObject *module_fcs(PyObject *args, int bits)
{
    Py_buffer view;
    unsigned long long init = bits == 32 ? INITFCS32 : INITFCS16;
    if (!PyArg_ParseTuple(args, bits == 32 ? "y*|K:fcs32" : "y*|K:fcs16", &view, &init))
        return NULL;
    unsigned long r = bits == 32
        ? fcs32((uint32_t)init, view.buf, view.len)
        : fcs16((uint16_t)init, view.buf, view.len);
    PyBuffer_Release(&view);
    return PyLong_FromUnsignedLong(r);
}

static PyObject *module_fcs16(PyObject *Py_UNUSED(m), PyObject *args)
{
    return module_fcs(args, 16);
}

static PyObject *module_fcs32(PyObject *Py_UNUSED(m), PyObject *args)
{
    return module_fcs(args, 32);
}

/* ---- the encoder (RFC 1662 4.2, 7.1) ------------------------------------ */

/* The octets to escape for a transmit ACCM: a bit per octet value. */
typedef struct {
    uint32_t word[8];
} escape_set;

static void escape_set_of(escape_set *s, uint32_t accm)
{
    memset(s, 0, sizeof *s);
    s->word[0] = accm;
    s->word[ESCAPE >> 5] |= 1u << (ESCAPE & 31);
    s->word[FLAG >> 5] |= 1u << (FLAG & 31);
}

static inline int escaped(const escape_set *s, uint8_t c)
{
    return (s->word[c >> 5] >> (c & 31)) & 1;
}

/* One octet, escaped or not, without a branch (escapes in data are not
   predictable); out must have room for two octets either way. */
static inline uint8_t *put(const escape_set *s, uint8_t c, uint8_t *out)
{
    int e = escaped(s, c);
    out[0] = e ? ESCAPE : c;
    out[1] = c ^ 0x20;
    return out + 1 + e;
}

#define OCTETS(c) (0x0101010101010101ull * (c))

/* Whether some octet of w is c, is below 0x20 (exact: "hasless" of the Bit
   Twiddling Hacks, for n <= 128). */
static inline uint64_t has_octet(uint64_t w, uint8_t c)
{
    uint64_t x = w ^ OCTETS(c);
    return (x - OCTETS(0x01)) & ~x & OCTETS(0x80);
}

static inline uint64_t has_control(uint64_t w)
{
    return (w - OCTETS(0x20)) & ~w & OCTETS(0x80);
}

/* Octet stuffing, eight octets at a time where none of them needs an escape
   (with a zero ACCM: unless a 0x7D or 0x7E is among them). */
static uint8_t *stuff(const escape_set *s, const uint8_t *p, Py_ssize_t n, uint8_t *out)
{
    int controls = s->word[0] != 0;
    Py_ssize_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        if (!(has_octet(w, ESCAPE) | has_octet(w, FLAG) | (controls ? has_control(w) : 0))) {
            memcpy(out, &w, 8);
            out += 8;
            continue;
        }
        for (int k = 0; k < 8; k++)
            out = put(s, p[i + k], out);
    }
    for (; i < n; i++)
        out = put(s, p[i], out);
    return out;
}

/* One frame as it goes on the line: [flag], escaped frame + FCS, flag.
   Written to a buffer of the longest it can be, then copied to its bytes. */
static PyObject *encode_frame(const uint8_t *frame, Py_ssize_t n, uint32_t accm,
                              int fcs_size, int leading_flag)
{
    uint8_t fcs[4];
    Py_ssize_t n_fcs = fcs_size == 32 ? 4 : 2;
    if (n_fcs == 4) {
        uint32_t v = fcs32(INITFCS32, frame, n) ^ 0xFFFFFFFFu;
        for (int i = 0; i < 4; i++)
            fcs[i] = (uint8_t)(v >> (8 * i));
    } else {
        uint16_t v = fcs16(INITFCS16, frame, n) ^ 0xFFFFu;
        fcs[0] = (uint8_t)v;
        fcs[1] = (uint8_t)(v >> 8);
    }
    escape_set s;
    escape_set_of(&s, accm);
    uint8_t local[4096], *start = local;
    if (n > ((Py_ssize_t)sizeof local - 2 - 2 * 4) / 2) {
        if (n > (PY_SSIZE_T_MAX - 2 - 2 * 4) / 2 || (start = PyMem_Malloc(2 * n + 2 + 2 * 4)) == NULL)
            return PyErr_NoMemory();
    }
    uint8_t *out = start;
    if (leading_flag)
        *out++ = FLAG;
    out = stuff(&s, fcs, n_fcs, stuff(&s, frame, n, out));
    *out++ = FLAG;
    PyObject *wire = PyBytes_FromStringAndSize((const char *)start, out - start);
    if (start != local)
        PyMem_Free(start);
    return wire;
}

static PyObject *str_fcs_size, *str_leading_flag, *str_accm;

static inline int same(PyObject *key, PyObject *name)
{
    return key == name || PyUnicode_Compare(key, name) == 0;
}

/* encode(frame, accm=0xFFFFFFFF, *, fcs_size=16, leading_flag=True): the
   signature of hdlc_encode, parsed by hand (this is called once a frame). */
static PyObject *module_encode(PyObject *Py_UNUSED(m), PyObject *const *args,
                               Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *accm_obj = nargs > 1 ? args[1] : NULL, *fcs_obj = NULL, *lead_obj = NULL;
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    if (nargs < 1 || nargs > 2) {
        PyErr_Format(PyExc_TypeError, "encode() takes 1 or 2 positional arguments (%zd given)", nargs);
        return NULL;
    }
    for (Py_ssize_t i = 0; i < nkw; i++) {
        PyObject *key = PyTuple_GET_ITEM(kwnames, i), *value = args[nargs + i];
        if (same(key, str_fcs_size))
            fcs_obj = value;
        else if (same(key, str_leading_flag))
            lead_obj = value;
        else if (same(key, str_accm) && accm_obj == NULL)
            accm_obj = value;
        else {
            PyErr_Format(PyExc_TypeError, "encode() got an unexpected keyword argument %R", key);
            return NULL;
        }
    }
    uint32_t accm = DEFAULT_ACCM;
    if (accm_obj != NULL) {
        accm = (uint32_t)PyLong_AsUnsignedLongLongMask(accm_obj);
        if (accm == (uint32_t)-1 && PyErr_Occurred())
            return NULL;
    }
    long fcs_size = 16;
    if (fcs_obj != NULL && (fcs_size = PyLong_AsLong(fcs_obj)) == -1 && PyErr_Occurred())
        return NULL;
    int lead = lead_obj == NULL ? 1 : PyObject_IsTrue(lead_obj);
    if (lead < 0)
        return NULL;
    Py_buffer view;
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0)
        return NULL;
    PyObject *wire = encode_frame(view.buf, view.len, accm, fcs_size == 32 ? 32 : 16, lead);
    PyBuffer_Release(&view);
    return wire;
}

/* ---- the decoder (RFC 1662 4.3, 4.4, 7.1) ------------------------------- */

typedef struct {
    PyObject_HEAD
    Py_ssize_t max_frame; /* longest frame (address .. FCS) accepted */
    int fcs_size;
    PyObject *accm;       /* the receive ACCM as set_accm was given it */
    uint32_t drop;        /* its 32 bits: control characters dropped */
    Py_ssize_t frames, lcp_fcs16_accepted, bad_fcs, runts, aborts, too_long, losses;
    Py_ssize_t octets_discarded;
    int discarding;       /* a too-long frame is being skipped until the next flag */
    uint8_t *buf;         /* octets of a frame not yet closed by a flag */
    Py_ssize_t len, cap;
    uint8_t *body;        /* scratch: the frame un-escaped */
    Py_ssize_t body_cap;
} Decoder;

static int grow(uint8_t **p, Py_ssize_t *cap, Py_ssize_t need)
{
    if (need <= *cap)
        return 0;
    Py_ssize_t size = *cap ? *cap : 256;
    while (size < need)
        size *= 2;
    uint8_t *q = PyMem_Realloc(*p, size);
    if (q == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    *p = q;
    *cap = size;
    return 0;
}

/* A frame lost on the line: its counter, losses and the octets thrown away
   (those before the flag and the flag). */
static PyObject *lost(Decoder *d, Py_ssize_t *counter, Py_ssize_t raw)
{
    (*counter)++;
    d->losses++;
    d->octets_discarded += raw + 1;
    Py_RETURN_NONE;
}

/* The state of dropping received ACCM characters and un-escaping, carried
   from one piece of the raw octets to the next. */
typedef struct {
    uint8_t *out;
    Py_ssize_t len;     /* octets written to out */
    Py_ssize_t dropped; /* ACCM characters dropped */
    int escape;         /* the last octet kept was a Control Escape */
} unstuffing;

static void unstuff(unstuffing *u, uint32_t drop, const uint8_t *p, Py_ssize_t n)
{
    uint8_t *out = u->out + u->len;
    if (drop) {
        for (Py_ssize_t i = 0; i < n; i++) {
            uint8_t c = p[i];
            if (c < 32 && (drop >> c & 1))
                u->dropped++;
            else if (u->escape) {
                *out++ = c ^ 0x20;
                u->escape = 0;
            } else if (c == ESCAPE)
                u->escape = 1;
            else
                *out++ = c;
        }
    } else {
        const uint8_t *end = p + n;
        while (p < end) {
            if (u->escape) {
                *out++ = *p++ ^ 0x20;
                u->escape = 0;
                continue;
            }
            const uint8_t *e = memchr(p, ESCAPE, end - p);
            Py_ssize_t span = (e ? e : end) - p;
            memcpy(out, p, span);
            out += span;
            p += span;
            if (e) {
                u->escape = 1;
                p++;
            }
        }
    }
    u->len = out - u->out;
}

/* An odd run of 0x7D at the end of a + b: 0x7D 0x7E, the abort sequence. */
static int aborted(const uint8_t *a, Py_ssize_t na, const uint8_t *b, Py_ssize_t nb)
{
    Py_ssize_t run = 0;
    while (nb > 0 && b[nb - 1] == ESCAPE) {
        nb--;
        run++;
    }
    if (nb == 0)
        while (na > 0 && a[na - 1] == ESCAPE) {
            na--;
            run++;
        }
    return run & 1;
}

/* The FCS octets of a good frame (in 32-bit mode 2 for an LCP frame with a good
   16-bit FCS), or 0: HdlcDecoder._frame's checks in its order. */
static Py_ssize_t fcs_octets(Decoder *d, const uint8_t *body, Py_ssize_t n)
{
    if (d->fcs_size == 32 && fcs32(INITFCS32, body, n) != GOODFCS32) {
        /* the peer's LCP may already be back on the default FCS */
        if (memcmp(body, LCP_HEADER, 4) == 0 && fcs16(INITFCS16, body, n) == GOODFCS16) {
            d->lcp_fcs16_accepted++;
            return 2;
        }
        return 0;
    }
    if (d->fcs_size == 16 && fcs16(INITFCS16, body, n) != GOODFCS16)
        return 0;
    return d->fcs_size == 32 ? 4 : 2;
}

static PyObject *decoded_frame(const uint8_t *frame, Py_ssize_t n, Py_ssize_t wire,
                               Py_ssize_t escapes, Py_ssize_t n_fcs)
{
    PyObject *item[4] = {
        PyBytes_FromStringAndSize((const char *)frame, n), PyLong_FromSsize_t(wire),
        PyLong_FromSsize_t(escapes), PyLong_FromSsize_t(n_fcs),
    };
    /* a tuple subclass without __dict__ (checked at import): built as
       tuple.__new__(DecodedFrame, items) builds it */
    PyObject *f = DecodedFrame->tp_alloc(DecodedFrame, 4);
    int ok = f != NULL;
    for (int i = 0; i < 4; i++)
        ok = ok && item[i] != NULL;
    if (!ok) {
        for (int i = 0; i < 4; i++)
            Py_XDECREF(item[i]);
        Py_XDECREF(f);
        return NULL;
    }
    for (int i = 0; i < 4; i++)
        PyTuple_SET_ITEM(f, i, item[i]);
    return f;
}

/* HdlcDecoder._frame for the raw octets a + b between two flags (not empty). */
static PyObject *decode_frame(Decoder *d, const uint8_t *a, Py_ssize_t na,
                              const uint8_t *b, Py_ssize_t nb)
{
    Py_ssize_t raw = na + nb;
    if (aborted(a, na, b, nb))
        return lost(d, &d->aborts, raw);
    if (grow(&d->body, &d->body_cap, raw) < 0)
        return NULL;
    unstuffing u = {d->body, 0, 0, 0};
    unstuff(&u, d->drop, a, na);
    unstuff(&u, d->drop, b, nb);
    Py_ssize_t n = u.len;
    if (n < (d->fcs_size == 32 ? 4 : 2) + 2)
        return lost(d, &d->runts, raw);
    if (n > d->max_frame)
        return lost(d, &d->too_long, raw);
    Py_ssize_t n_fcs = fcs_octets(d, d->body, n);
    if (n_fcs == 0)
        return lost(d, &d->bad_fcs, raw);
    d->frames++;
    /* escapes: what un-escaping removed from the octets the ACCM left */
    return decoded_frame(d->body, n - n_fcs, raw + 1, raw - u.dropped - n, n_fcs);
}

static PyObject *frame_ended(Decoder *d, const uint8_t *p, Py_ssize_t n)
{
    if (d->discarding) { /* the rest of a too-long frame */
        d->octets_discarded += n;
        d->discarding = 0;
        d->len = 0;
        Py_RETURN_NONE;
    }
    Py_ssize_t held = d->len;
    d->len = 0;
    if (held + n == 0)
        Py_RETURN_NONE;
    return decode_frame(d, d->buf, held, p, n);
}

static int feed(Decoder *d, const uint8_t *p, Py_ssize_t n)
{
    if (d->discarding) {
        d->octets_discarded += n;
        return 0;
    }
    if (d->len + n > 2 * d->max_frame + 2) {
        d->too_long++;
        d->losses++;
        d->octets_discarded += d->len + n;
        d->len = 0;
        d->discarding = 1;
        return 0;
    }
    if (grow(&d->buf, &d->cap, d->len + n) < 0)
        return -1;
    memcpy(d->buf + d->len, p, n);
    d->len += n;
    return 0;
}

static PyObject *Decoder_frame_ended(Decoder *d, PyObject *arg)
{
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    PyObject *f = frame_ended(d, view.buf, view.len);
    PyBuffer_Release(&view);
    return f;
}

static PyObject *Decoder_feed(Decoder *d, PyObject *arg)
{
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    int r = feed(d, view.buf, view.len);
    PyBuffer_Release(&view);
    if (r < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* receive_frames(data) (frames_only = 0) or receive(data) (1): split at the
   flags, end a frame at each, feed what follows the last. */
static PyObject *receive(Decoder *d, PyObject *arg, int frames_only)
{
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    const uint8_t *p = view.buf, *end = p + view.len, *flag;
    PyObject *out = PyList_New(0);
    while (out != NULL && (flag = memchr(p, FLAG, end - p)) != NULL) {
        PyObject *f = frame_ended(d, p, flag - p);
        p = flag + 1;
        if (f == NULL || (f != Py_None
                          && PyList_Append(out, frames_only ? PyTuple_GET_ITEM(f, 0) : f) < 0))
            Py_CLEAR(out);
        Py_XDECREF(f);
    }
    if (out != NULL && feed(d, p, end - p) < 0)
        Py_CLEAR(out);
    PyBuffer_Release(&view);
    return out;
}

static PyObject *Decoder_receive_frames(Decoder *d, PyObject *arg)
{
    return receive(d, arg, 0);
}

static PyObject *Decoder_receive(Decoder *d, PyObject *arg)
{
    return receive(d, arg, 1);
}

static PyObject *Decoder_clear(Decoder *d, PyObject *Py_UNUSED(ignored))
{
    d->len = 0;
    d->discarding = 0;
    Py_RETURN_NONE;
}

static PyObject *Decoder_set_accm(Decoder *d, PyObject *accm)
{
    uint32_t drop = (uint32_t)PyLong_AsUnsignedLongLongMask(accm);
    if (drop == (uint32_t)-1 && PyErr_Occurred())
        return NULL;
    Py_INCREF(accm);
    Py_XSETREF(d->accm, accm);
    d->drop = drop;
    Py_RETURN_NONE;
}

static PyObject *Decoder_set_fcs_size(Decoder *d, PyObject *bits)
{
    long v = PyLong_Check(bits) ? PyLong_AsLong(bits) : 0;
    if (v == -1 && PyErr_Occurred())
        PyErr_Clear();
    if (v != 16 && v != 32) {
        PyErr_Format(PyExc_ValueError, "FCS size must be 16 or 32 bits, not %R", bits);
        return NULL;
    }
    d->fcs_size = (int)v;
    Py_RETURN_NONE;
}

static PyObject *Decoder_pending(Decoder *d, void *Py_UNUSED(closure))
{
    return PyLong_FromSsize_t(d->len);
}

static int Decoder_init(Decoder *d, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"accm", "max_frame", "fcs_size", NULL};
    PyObject *accm = NULL, *fcs_size = NULL;
    Py_ssize_t max_frame = 1500 + 8;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|$OnO:Decoder", kwlist,
                                     &accm, &max_frame, &fcs_size))
        return -1;
    d->max_frame = max_frame;
    d->fcs_size = 16;
    PyObject *r = fcs_size != NULL ? Decoder_set_fcs_size(d, fcs_size) : Py_NewRef(Py_None);
    if (r == NULL)
        return -1;
    Py_DECREF(r);
    d->frames = d->lcp_fcs16_accepted = d->bad_fcs = d->runts = 0;
    d->aborts = d->too_long = d->losses = d->octets_discarded = 0;
    d->len = 0;
    d->discarding = 0;
    accm = accm != NULL ? Py_NewRef(accm) : PyLong_FromUnsignedLong(DEFAULT_ACCM);
    if (accm == NULL)
        return -1;
    r = Decoder_set_accm(d, accm);
    Py_DECREF(accm);
    if (r == NULL)
        return -1;
    Py_DECREF(r);
    return 0;
}

static void Decoder_dealloc(Decoder *d)
{
    Py_XDECREF(d->accm);
    PyMem_Free(d->buf);
    PyMem_Free(d->body);
    Py_TYPE(d)->tp_free((PyObject *)d);
}

static PyMethodDef Decoder_methods[] = {
    {"frame_ended", (PyCFunction)Decoder_frame_ended, METH_O,
     "frame_ended(data) -> DecodedFrame | None: octets up to a flag end the frame."},
    {"feed", (PyCFunction)Decoder_feed, METH_O,
     "feed(data): octets with no flag in them, the middle of a frame."},
    {"receive_frames", (PyCFunction)Decoder_receive_frames, METH_O,
     "receive_frames(data) -> list[DecodedFrame]: the good frames data completes."},
    {"receive", (PyCFunction)Decoder_receive, METH_O,
     "receive(data) -> list[bytes]: the good frames (without FCS) data completes."},
    {"clear", (PyCFunction)Decoder_clear, METH_NOARGS,
     "Forget a partly received frame (the line dropped); counters are kept."},
    {"set_accm", (PyCFunction)Decoder_set_accm, METH_O,
     "Receive ACCM: control chars flagged here are dropped if they arrive un-escaped."},
    {"set_fcs_size", (PyCFunction)Decoder_set_fcs_size, METH_O,
     "The FCS the peer sends: 16 or 32 bits."},
    {NULL, NULL, 0, NULL},
};

#define COUNTER(name) {#name, T_PYSSIZET, offsetof(Decoder, name), 0, NULL}

static PyMemberDef Decoder_members[] = {
    {"max_frame", T_PYSSIZET, offsetof(Decoder, max_frame), 0,
     "longest frame (address .. FCS) accepted"},
    {"fcs_size", T_INT, offsetof(Decoder, fcs_size), READONLY, "16 or 32 (set_fcs_size)"},
    {"accm", T_OBJECT, offsetof(Decoder, accm), READONLY, "the receive ACCM (set_accm)"},
    COUNTER(frames),
    COUNTER(lcp_fcs16_accepted),
    COUNTER(bad_fcs),
    COUNTER(runts),
    COUNTER(aborts),
    COUNTER(too_long),
    COUNTER(losses),
    COUNTER(octets_discarded),
    {NULL, 0, 0, 0, NULL},
};

static PyGetSetDef Decoder_getset[] = {
    {"pending", (getter)Decoder_pending, NULL,
     "Octets held of a frame not yet closed by a flag.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject DecoderType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "dialsim.proto._hdlc.Decoder",
    .tp_basicsize = sizeof(Decoder),
    .tp_dealloc = (destructor)Decoder_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "Decoder(*, accm=0xFFFFFFFF, max_frame=1508, fcs_size=16): "
              "the compiled HdlcDecoder (never raises on line input).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Decoder_init,
    .tp_methods = Decoder_methods,
    .tp_members = Decoder_members,
    .tp_getset = Decoder_getset,
};

/* ---- the module -------------------------------------------------------- */

static PyMethodDef module_methods[] = {
    {"encode", (PyCFunction)(void (*)(void))module_encode, METH_FASTCALL | METH_KEYWORDS,
     "encode(frame, accm=0xFFFFFFFF, *, fcs_size=16, leading_flag=True) -> bytes: "
     "one frame as it goes on the line (hdlc_encode)."},
    {"fcs16", module_fcs16, METH_VARARGS,
     "fcs16(data, fcs=0xFFFF) -> int: the 16-bit FCS register after data."},
    {"fcs32", module_fcs32, METH_VARARGS,
     "fcs32(data, fcs=0xFFFFFFFF) -> int: the 32-bit FCS register after data."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "dialsim.proto._hdlc",
    .m_doc = "RFC 1662 async-HDLC encoder and decoder in C (the twin of dialsim.proto.hdlc).",
    .m_size = -1,
    .m_methods = module_methods,
};

/* DecodedFrame from the reference: a tuple subclass without a __dict__, so
   that decoded_frame can fill one in place. */
static int import_decoded_frame(void)
{
    PyObject *ref = PyImport_ImportModule("dialsim.proto.hdlc");
    if (ref == NULL)
        return -1;
    PyObject *t = PyObject_GetAttrString(ref, "DecodedFrame");
    Py_DECREF(ref);
    if (t == NULL)
        return -1;
    if (!PyType_Check(t) || !PyType_IsSubtype((PyTypeObject *)t, &PyTuple_Type)
        || ((PyTypeObject *)t)->tp_dictoffset != 0
        || ((PyTypeObject *)t)->tp_basicsize != PyTuple_Type.tp_basicsize) {
        PyErr_SetString(PyExc_ImportError,
                        "dialsim.proto.hdlc.DecodedFrame is not a plain NamedTuple");
        Py_DECREF(t);
        return -1;
    }
    DecodedFrame = (PyTypeObject *)t;
    return 0;
}

PyMODINIT_FUNC PyInit__hdlc(void)
{
    make_tables();
    if (import_decoded_frame() < 0)
        return NULL;
    str_fcs_size = PyUnicode_InternFromString("fcs_size");
    str_leading_flag = PyUnicode_InternFromString("leading_flag");
    str_accm = PyUnicode_InternFromString("accm");
    if (str_fcs_size == NULL || str_leading_flag == NULL || str_accm == NULL)
        return NULL;
    if (PyType_Ready(&DecoderType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    Py_INCREF(&DecoderType);
    if (PyModule_AddObject(m, "Decoder", (PyObject *)&DecoderType) < 0) {
        Py_DECREF(&DecoderType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
