/*
 * The IPv4 (RFC 791) and TCP (RFC 9293 3.1) codecs of one segment, compiled:
 * the twin of the pure-Python references in dialsim/proto/ipv4.py and
 * dialsim/proto/tcp_segment.py, for the per-segment hot path.
 *
 * Functions (positional arguments only), each equal to its reference:
 *
 *   encode_segment(pseudo, src_port, dst_port, seq, ack, flags, window[, data[, mss]])
 *       == tcp_segment.encode_segment (the same octets, checksum included)
 *   parse_segment(segment) == tcp_segment.parse_segment
 *   checked_segment(pseudo, segment)
 *       == parse_segment(segment) if checksum_ok(pseudo, segment) else None
 *   build_datagram(src_octets, dst_octets, protocol, payload, ttl, ident, tos, flags_df)
 *       == ipv4.build_datagram
 *   parse_packet(data) == ipv4.parse_packet
 *   register_segment(TcpSegment), register_packet(IPv4Packet): the NamedTuple
 *       classes the parsers return (the loaders in tcp_segment.py and ipv4.py).
 *
 * Checksums: the one's complement sum of 16-bit words is the sum modulo
 * 0xFFFF (2**16 is 1 modulo 0xFFFF), as the references compute it
 * (octet_sum adds up eight octets at a time).  A sum of zero goes out as
 * checksum 0, as in the references.
 * tests/unit/test_tcpip_c.py holds the two to the same octets and fields.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#include "_octets.h"

#define TCP_HEADER 20
#define IP_HEADER 20

static PyObject *TcpSegmentType = NULL;
static PyObject *IPv4PacketType = NULL;

/* ---- sums -------------------------------------------------------------- */

/* The octets read as big-endian 16-bit words (odd length: padded with a zero),
 * summed modulo 0xFFFF: a value in [0, 0xFFFE].
 *
 * Eight octets at a time, as native 64-bit words with the end-around carry
 * (2**64 is 1 modulo 0xFFFF, so the carry adds 1).  On a little-endian host
 * every 16-bit word is read byte-swapped, and a swapped word is the word times
 * 256 modulo 0xFFFF (256 * 256 is 1): the sum of the swapped words times 256 is
 * the sum of the words (RFC 1071 2(B), byte order independence). */
static uint64_t octet_sum(const uint8_t *p, Py_ssize_t n)
{
    static const uint16_t probe = 1;
    uint64_t s = 0, w;
    Py_ssize_t i = 0;
    unsigned tail = 0;
    for (; i + 8 <= n; i += 8) {
        memcpy(&w, p + i, 8);
        s += w;
        s += s < w; /* end-around carry */
    }
    s %= 0xFFFF;
    if (*(const uint8_t *)&probe == 1) /* little-endian: back to big-endian words */
        s = (s << 8) % 0xFFFF;
    for (; i + 2 <= n; i += 2)
        tail += (unsigned)p[i] << 8 | p[i + 1];
    if (i < n)
        tail += (unsigned)p[i] << 8;
    return (s + tail) % 0xFFFF;
}

/* ---- arguments ---------------------------------------------------------- */

/* An int in [lo, hi] (OverflowError outside; TypeError for a non-int). */
static int int_in(PyObject *o, long long lo, long long hi, const char *what, long long *out)
{
    int overflow = 0;
    long long v = PyLong_AsLongLongAndOverflow(o, &overflow);
    if (v == -1 && PyErr_Occurred())
        return -1;
    if (overflow || v < lo || v > hi) {
        PyErr_Format(PyExc_OverflowError, "%s out of range", what);
        return -1;
    }
    *out = v;
    return 0;
}

/* Any int, reduced modulo 2**64 (two's complement for a negative one). */
static int int_mask(PyObject *o, uint64_t *out)
{
    unsigned long long v;
    if (!PyLong_Check(o)) {
        PyErr_SetString(PyExc_TypeError, "an integer is required");
        return -1;
    }
    v = PyLong_AsUnsignedLongLongMask(o);
    if (v == (unsigned long long)-1 && PyErr_Occurred())
        return -1;
    *out = v;
    return 0;
}

/* An int clamped to [0, 0xFFFF] (the window). */
static int int_clamp16(PyObject *o, unsigned *out)
{
    int overflow = 0;
    long long v = PyLong_AsLongLongAndOverflow(o, &overflow);
    if (v == -1 && PyErr_Occurred())
        return -1;
    if (overflow)
        v = overflow > 0 ? 0xFFFF : 0;
    *out = v < 0 ? 0 : v > 0xFFFF ? 0xFFFF : (unsigned)v;
    return 0;
}

/* ---- TCP ------------------------------------------------------------------ */

static PyObject *encode_segment(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    long long pseudo, sport, dport, mss = -1;
    uint64_t seq, ack, flags;
    unsigned window, hlen;
    Py_buffer data = {0};
    PyObject *out;
    uint8_t *p;
    uint64_t sum;
    (void)self;
    if (nargs < 7 || nargs > 9) {
        PyErr_SetString(PyExc_TypeError, "encode_segment takes 7 to 9 positional arguments");
        return NULL;
    }
    if (int_in(args[0], 0, 0xFFFFFFFFLL, "pseudo", &pseudo) < 0
        || int_in(args[1], 0, 0xFFFF, "src_port", &sport) < 0
        || int_in(args[2], 0, 0xFFFF, "dst_port", &dport) < 0
        || int_mask(args[3], &seq) < 0 || int_mask(args[4], &ack) < 0
        || int_mask(args[5], &flags) < 0 || int_clamp16(args[6], &window) < 0)
        return NULL;
    if (nargs > 8 && args[8] != Py_None && int_in(args[8], 0, 0xFFFF, "mss", &mss) < 0)
        return NULL;
    if (nargs > 7 && PyObject_GetBuffer(args[7], &data, PyBUF_SIMPLE) < 0)
        return NULL;
    hlen = mss < 0 ? TCP_HEADER : TCP_HEADER + 4;
    out = PyBytes_FromStringAndSize(NULL, hlen + data.len);
    if (out == NULL)
        goto done;
    p = (uint8_t *)PyBytes_AS_STRING(out);
    seq &= 0xFFFFFFFFu;
    ack &= 0xFFFFFFFFu;
    flags &= 0x3F;
    put16(p, (unsigned)sport);
    put16(p + 2, (unsigned)dport);
    put32(p + 4, (uint32_t)seq);
    put32(p + 8, (uint32_t)ack);
    put16(p + 12, (hlen / 4) << 12 | (unsigned)flags);
    put16(p + 14, window);
    put16(p + 16, 0);
    put16(p + 18, 0);
    if (mss >= 0) {
        p[20] = 2;
        p[21] = 4;
        put16(p + 22, (unsigned)mss);
    }
    if (data.len)
        memcpy(p + hlen, data.buf, data.len);
    sum = (uint64_t)pseudo + hlen + (uint64_t)data.len + octet_sum(p, hlen + data.len);
    sum %= 0xFFFF;
    put16(p + 16, sum ? (unsigned)(0xFFFF - sum) : 0);
done:
    if (nargs > 7)
        PyBuffer_Release(&data);
    return out;
}

/* The value of the last MSS option (kind 2, length 4), -1 if none; the
 * option list is read as tcp_segment._mss_option does. */
static long mss_option(const uint8_t *o, Py_ssize_t n)
{
    long mss = -1;
    Py_ssize_t i = 0;
    while (i < n) {
        unsigned kind = o[i];
        if (kind == 0)
            break;
        if (kind == 1) {
            i += 1;
            continue;
        }
        if (i + 1 >= n || o[i + 1] < 2 || i + o[i + 1] > n)
            break; /* malformed option list: ignore the rest */
        if (kind == 2 && o[i + 1] == 4)
            mss = (long)be16(o + i + 2);
        i += o[i + 1];
    }
    return mss;
}

/* A NamedTuple instance of ``cls`` holding ``n`` new references (stolen). */
static PyObject *make_record(PyObject *cls, PyObject **items, Py_ssize_t n)
{
    Py_ssize_t i;
    PyObject *rec;
    for (i = 0; i < n; i++)
        if (items[i] == NULL)
            goto fail;
    rec = ((PyTypeObject *)cls)->tp_alloc((PyTypeObject *)cls, n);
    if (rec == NULL)
        goto fail;
    for (i = 0; i < n; i++)
        PyTuple_SET_ITEM(rec, i, items[i]);
    return rec;
fail:
    for (i = 0; i < n; i++)
        Py_XDECREF(items[i]);
    return NULL;
}

static PyObject *segment_record(const uint8_t *p, Py_ssize_t size)
{
    unsigned hlen;
    long mss = -1;
    PyObject *items[9];
    if (TcpSegmentType == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "_tcpip.register_segment() was not called");
        return NULL;
    }
    if (size < TCP_HEADER)
        Py_RETURN_NONE;
    hlen = (p[12] >> 4) * 4;
    if (hlen < TCP_HEADER || hlen > size)
        Py_RETURN_NONE;
    if (hlen > TCP_HEADER)
        mss = mss_option(p + TCP_HEADER, hlen - TCP_HEADER);
    items[0] = PyLong_FromLong(be16(p));
    items[1] = PyLong_FromLong(be16(p + 2));
    items[2] = PyLong_FromUnsignedLong(be32(p + 4));
    items[3] = PyLong_FromUnsignedLong(be32(p + 8));
    items[4] = PyLong_FromLong(p[13] & 0x3F);
    items[5] = PyLong_FromLong(be16(p + 14));
    items[6] = PyBytes_FromStringAndSize((const char *)p + hlen, size - hlen);
    items[7] = mss < 0 ? Py_NewRef(Py_None) : PyLong_FromLong(mss);
    items[8] = PyLong_FromLong(hlen);
    return make_record(TcpSegmentType, items, 9);
}

static PyObject *parse_segment(PyObject *self, PyObject *arg)
{
    Py_buffer b;
    PyObject *r;
    (void)self;
    if (PyObject_GetBuffer(arg, &b, PyBUF_SIMPLE) < 0)
        return NULL;
    r = segment_record(b.buf, b.len);
    PyBuffer_Release(&b);
    return r;
}

static PyObject *checked_segment(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    long long pseudo;
    Py_buffer b;
    PyObject *r;
    (void)self;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "checked_segment takes 2 positional arguments");
        return NULL;
    }
    if (int_in(args[0], 0, 0xFFFFFFFFLL, "pseudo", &pseudo) < 0)
        return NULL;
    if (PyObject_GetBuffer(args[1], &b, PyBUF_SIMPLE) < 0)
        return NULL;
    if (((uint64_t)pseudo + (uint64_t)b.len + octet_sum(b.buf, b.len)) % 0xFFFF)
        r = Py_NewRef(Py_None);
    else
        r = segment_record(b.buf, b.len);
    PyBuffer_Release(&b);
    return r;
}

/* ---- IPv4 ----------------------------------------------------------------- */

static PyObject *build_datagram(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer src = {0}, dst = {0}, payload = {0};
    uint64_t protocol, ttl, ident, tos;
    int df;
    PyObject *out = NULL;
    uint8_t *p;
    uint64_t sum;
    Py_ssize_t total;
    (void)self;
    if (nargs != 8) {
        PyErr_SetString(PyExc_TypeError, "build_datagram takes 8 positional arguments");
        return NULL;
    }
    if (int_mask(args[2], &protocol) < 0 || int_mask(args[4], &ttl) < 0
        || int_mask(args[5], &ident) < 0 || int_mask(args[6], &tos) < 0)
        return NULL;
    if ((df = PyObject_IsTrue(args[7])) < 0)
        return NULL;
    if (PyObject_GetBuffer(args[0], &src, PyBUF_SIMPLE) < 0)
        return NULL;
    if (PyObject_GetBuffer(args[1], &dst, PyBUF_SIMPLE) < 0)
        goto done;
    if (PyObject_GetBuffer(args[3], &payload, PyBUF_SIMPLE) < 0)
        goto done;
    if (src.len != 4 || dst.len != 4) {
        PyErr_SetString(PyExc_ValueError, "IPv4 addresses are 4 octets");
        goto done;
    }
    total = IP_HEADER + payload.len;
    if (total > 0xFFFF) {
        PyErr_SetString(PyExc_ValueError, "IPv4 datagram longer than 65535 octets");
        goto done;
    }
    out = PyBytes_FromStringAndSize(NULL, total);
    if (out == NULL)
        goto done;
    p = (uint8_t *)PyBytes_AS_STRING(out);
    p[0] = 0x45;
    p[1] = (uint8_t)tos;
    put16(p + 2, (unsigned)total);
    put16(p + 4, (unsigned)(ident & 0xFFFF));
    put16(p + 6, df ? 0x4000 : 0);
    p[8] = (uint8_t)ttl;
    p[9] = (uint8_t)protocol;
    put16(p + 10, 0);
    memcpy(p + 12, src.buf, 4);
    memcpy(p + 16, dst.buf, 4);
    sum = octet_sum(p, IP_HEADER) % 0xFFFF;
    put16(p + 10, sum ? (unsigned)(0xFFFF - sum) : 0);
    if (payload.len)
        memcpy(p + IP_HEADER, payload.buf, payload.len);
done:
    PyBuffer_Release(&src);
    if (dst.obj)
        PyBuffer_Release(&dst);
    if (payload.obj)
        PyBuffer_Release(&payload);
    return out;
}

/* Dotted quads of the addresses seen, direct-mapped (ipv4.ip_to_str's cache). */
#define QUADS 64
static uint32_t quad_key[QUADS];
static PyObject *quad_str[QUADS];

static PyObject *dotted_quad(const uint8_t *a)
{
    uint32_t key = be32(a);
    unsigned slot = (key ^ key >> 8 ^ key >> 16 ^ key >> 24) & (QUADS - 1);
    PyObject *s;
    if (quad_str[slot] != NULL && quad_key[slot] == key)
        return Py_NewRef(quad_str[slot]);
    s = PyUnicode_FromFormat("%u.%u.%u.%u", a[0], a[1], a[2], a[3]);
    if (s == NULL)
        return NULL;
    Py_XSETREF(quad_str[slot], Py_NewRef(s));
    quad_key[slot] = key;
    return s;
}

static PyObject *packet_record(const uint8_t *p, Py_ssize_t size)
{
    unsigned hlen, total, frag;
    PyObject *items[11];
    if (IPv4PacketType == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "_tcpip.register_packet() was not called");
        return NULL;
    }
    if (size < IP_HEADER || p[0] >> 4 != 4)
        Py_RETURN_NONE;
    hlen = (p[0] & 0x0F) * 4;
    if (hlen < IP_HEADER || size < hlen)
        Py_RETURN_NONE;
    total = be16(p + 2);
    if (total < hlen || total > size)
        Py_RETURN_NONE;
    if (octet_sum(p, hlen) % 0xFFFF) /* the header checksum */
        Py_RETURN_NONE;
    frag = be16(p + 6);
    items[0] = dotted_quad(p + 12);
    items[1] = dotted_quad(p + 16);
    items[2] = PyLong_FromLong(p[9]);
    items[3] = PyBytes_FromStringAndSize((const char *)p + hlen, total - hlen);
    items[4] = PyLong_FromLong(p[8]);
    items[5] = PyLong_FromLong(be16(p + 4));
    items[6] = PyLong_FromLong(p[1]);
    items[7] = PyBool_FromLong(frag & 0x4000);
    items[8] = PyLong_FromLong(hlen);
    items[9] = PyBool_FromLong(frag & 0x2000);
    items[10] = PyLong_FromLong((frag & 0x1FFF) * 8);
    return make_record(IPv4PacketType, items, 11);
}

static PyObject *parse_packet(PyObject *self, PyObject *arg)
{
    Py_buffer b;
    PyObject *r;
    (void)self;
    if (PyObject_GetBuffer(arg, &b, PyBUF_SIMPLE) < 0)
        return NULL;
    r = packet_record(b.buf, b.len);
    PyBuffer_Release(&b);
    return r;
}

/* ---- module ----------------------------------------------------------------- */

/* register_segment(cls) / register_packet(cls): the tuple class a parser returns. */
static PyObject *set_record(PyObject **slot, PyObject *cls)
{
    if (!PyType_Check(cls) || !PyType_IsSubtype((PyTypeObject *)cls, &PyTuple_Type)) {
        PyErr_SetString(PyExc_TypeError, "a tuple class (NamedTuple) is required");
        return NULL;
    }
    Py_XSETREF(*slot, Py_NewRef(cls));
    Py_RETURN_NONE;
}

static PyObject *register_segment(PyObject *self, PyObject *cls)
{
    (void)self;
    return set_record(&TcpSegmentType, cls);
}

static PyObject *register_packet(PyObject *self, PyObject *cls)
{
    (void)self;
    return set_record(&IPv4PacketType, cls);
}

static PyMethodDef module_methods[] = {
    {"encode_segment", (PyCFunction)(void (*)(void))encode_segment, METH_FASTCALL,
     "encode_segment(pseudo, src_port, dst_port, seq, ack, flags, window[, data[, mss]]) -> bytes"},
    {"parse_segment", parse_segment, METH_O, "parse_segment(segment) -> TcpSegment | None"},
    {"checked_segment", (PyCFunction)(void (*)(void))checked_segment, METH_FASTCALL,
     "checked_segment(pseudo, segment) -> TcpSegment | None (None also for a bad checksum)"},
    {"build_datagram", (PyCFunction)(void (*)(void))build_datagram, METH_FASTCALL,
     "build_datagram(src_octets, dst_octets, protocol, payload, ttl, ident, tos, flags_df) -> bytes"},
    {"parse_packet", parse_packet, METH_O, "parse_packet(data) -> IPv4Packet | None"},
    {"register_segment", register_segment, METH_O,
     "register_segment(TcpSegment): the record class parse_segment returns"},
    {"register_packet", register_packet, METH_O,
     "register_packet(IPv4Packet): the record class parse_packet returns"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    "dialsim.proto._tcpip",
    "The IPv4 and TCP segment codecs, compiled (references: ipv4.py, tcp_segment.py).",
    -1,
    module_methods,
    NULL,
    NULL,
    NULL,
    NULL,
};

PyMODINIT_FUNC PyInit__tcpip(void)
{
    return PyModule_Create(&module);
}
