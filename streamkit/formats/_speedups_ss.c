/* The .ss file format's loops in C, the compiled twin of SsDecoder._scan and SsEncoder.encode
 * (formats/ss_decoder.py, ss_encoder.py): CRC-16, frames → Messages, Messages → frames. Like
 * the line loops, they stop at anything unusual and leave it to the pure code.
 */
#include "_speedups.h"

/* ---------------------------------------------------------------- .ss frames */

/* CRC-16/CDMA2000: poly 0xC867, init 0xFFFF, no reflection, no xorout (formats/crc16.py). */
/* Slicing by 8: crc_tables[k][b] is the CRC register after byte b and then k zero bytes, so
 * eight bytes cost eight independent lookups instead of a chain of eight. */
static uint16_t crc_tables[8][256];
int sk_crc_ready = 0;

void
sk_crc_init(void)
{
    for (int byte = 0; byte < 256; byte++) {
        uint16_t crc = (uint16_t)(byte << 8);
        for (int bit = 0; bit < 8; bit++)
            crc = (crc & 0x8000) ? (uint16_t)((crc << 1) ^ 0xC867) : (uint16_t)(crc << 1);
        crc_tables[0][byte] = crc;
    }
    for (int k = 1; k < 8; k++)
        for (int byte = 0; byte < 256; byte++) {
            uint16_t prev = crc_tables[k - 1][byte];
            crc_tables[k][byte] = (uint16_t)((prev << 8) ^ crc_tables[0][prev >> 8]);
        }
    sk_crc_ready = 1;
}

static inline uint16_t
crc16(const unsigned char *p, Py_ssize_t n, uint16_t crc)
{
    Py_ssize_t i = 0;
    for (; i + 8 <= n; i += 8) {
        crc = crc_tables[7][p[i] ^ (crc >> 8)] ^ crc_tables[6][p[i + 1] ^ (crc & 0xFF)] ^
              crc_tables[5][p[i + 2]] ^ crc_tables[4][p[i + 3]] ^ crc_tables[3][p[i + 4]] ^
              crc_tables[2][p[i + 5]] ^ crc_tables[1][p[i + 6]] ^ crc_tables[0][p[i + 7]];
    }
    for (; i < n; i++)
        crc = (uint16_t)((crc << 8) ^ crc_tables[0][(crc >> 8) ^ p[i]]);
    return crc;
}

/* crc16(data, crc=0xFFFF): exposed for the tests (the same values as formats/crc16.py). */
PyObject *
sk_py_crc16(PyObject *self, PyObject *args)
{
    Py_buffer view;
    unsigned int crc = 0xFFFF;
    if (!PyArg_ParseTuple(args, "y*|I", &view, &crc))
        return NULL;
    if (!sk_crc_ready)
        sk_crc_init();
    uint16_t value = crc16(view.buf, view.len, (uint16_t)crc);
    PyBuffer_Release(&view);
    return PyLong_FromLong(value);
}

static inline uint64_t
be64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

static inline uint32_t
be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

#define MAX_TIMESTAMP 253402300799999ULL /* 9999-12-31T23:59:59.999 */

/* ss_scan(buf, i, lim, limit, out, verify) -> (i, frame_start, ended, stopped)
 *
 * The frames of `buf` from index `i` that end before index `lim` (the next beacon offset or
 * the end of the data), at most `limit` of them, appended to `out` as Message objects: the C
 * twin of SsDecoder._scan. `verify`: check each frame's 0x0D trailer, timestamp range and
 * CRC. At a frame that fails a check or has an invalid key it stops (`stopped` true, `i` at
 * that frame) so that the pure scan can name the damage. `frame_start` is the index of the
 * last frame decoded (-1: none); `ended` is true after the EOS frame.
 */
PyObject *
sk_ss_scan(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 6 || !PyBytes_Check(args[0]) || !PyList_Check(args[4])) {
        PyErr_SetString(PyExc_TypeError, "ss_scan(bytes, i, lim, limit, list, verify)");
        return NULL;
    }
    if (!sk_configured(1))
        return NULL;
    const unsigned char *buf = (const unsigned char *)PyBytes_AS_STRING(args[0]);
    Py_ssize_t size_of_buf = PyBytes_GET_SIZE(args[0]);
    Py_ssize_t i = PyLong_AsSsize_t(args[1]);
    Py_ssize_t lim = PyLong_AsSsize_t(args[2]);
    Py_ssize_t limit = PyLong_AsSsize_t(args[3]);
    if (PyErr_Occurred())
        return NULL;
    PyObject *out = args[4];
    int verify = PyObject_IsTrue(args[5]);
    if (lim > size_of_buf)
        lim = size_of_buf;
    if (i < 0)
        i = lim;
    Py_ssize_t frame_start = -1, n = 0;
    int ended = 0, stopped = 0;
    while (n < limit && i < lim) {
        Py_ssize_t klen = buf[i];
        Py_ssize_t h = i + 1 + klen;
        if (h + 28 > lim)
            break;
        uint64_t shard = be64(buf + h), seq = be64(buf + h + 8), ts = be64(buf + h + 16);
        Py_ssize_t size = be32(buf + h + 24);
        Py_ssize_t ps = h + 28, pe = ps + size;
        if (pe + 3 > lim)
            break;
        const unsigned char *key = buf + i + 1;
        int key_ok = klen >= 1 && klen <= 249;
        for (Py_ssize_t k = 0; key_ok && k < klen; k++)
            key_ok = sk_key_char[key[k]];
        if (!key_ok) {
            stopped = 1;
            break;
        }
        if (verify) {
            uint16_t stored = (uint16_t)(buf[pe] << 8 | buf[pe + 1]);
            if (buf[pe + 2] != 13 || ts > MAX_TIMESTAMP || crc16(buf + ps, size, 0xFFFF) != stored) {
                stopped = 1;
                break;
            }
        }
        KeySlot *slot = sk_key_slot(key, klen);
        if (slot == NULL)
            return NULL;
        PyObject *message = sk_msg_type->tp_alloc(sk_msg_type, 0);
        if (message == NULL)
            return NULL;
        Py_INCREF(slot->str);
        set_slot(message, sk_off_stream_key, slot->str);
        set_slot(message, sk_off_shard, PyLong_FromUnsignedLongLong(shard));
        set_slot(message, sk_off_seq, PyLong_FromUnsignedLongLong(seq));
        set_slot(message, sk_off_ts, PyLong_FromUnsignedLongLong(ts));
        set_slot(message, sk_off_payload, PyBytes_FromStringAndSize((const char *)buf + ps, size));
        set_slot(message, sk_off_key, Py_NewRef(Py_None));
        set_slot(message, sk_off_headers, PyTuple_New(0));
        set_slot(message, sk_off_line, Py_NewRef(Py_None));
        if (!get_slot(message, sk_off_shard) || !get_slot(message, sk_off_seq) ||
            !get_slot(message, sk_off_ts) || !get_slot(message, sk_off_payload) ||
            !get_slot(message, sk_off_headers)) {
            Py_DECREF(message);
            return NULL;
        }
        int status = PyList_Append(out, message);
        Py_DECREF(message);
        if (status < 0)
            return NULL;
        n++;
        frame_start = i;
        i = pe + 3;
        if (klen == 21 && size == 3 && memcmp(key, "SEA_STREAMER_INTERNAL", 21) == 0 &&
            memcmp(buf + ps, "EOS", 3) == 0) {
            ended = 1;
            break;
        }
    }
    return Py_BuildValue("(nnOO)", i, frame_start, ended ? Py_True : Py_False,
                         stopped ? Py_True : Py_False);
}

/* ss_encode(messages, start, key, position, interval, streams, StreamState)
 *     -> (bytes, next, position, new_streams)
 *
 * The C twin of SsEncoder.encode for Message objects: frames appended back to back from
 * messages[start], each stream's StreamState (seq, timestamp, running CRC) updated as the pure
 * loop does. It stops before a frame that would reach the next beacon offset (the pure encoder
 * splices it and writes the beacon) and before anything the pure encoder must judge (an
 * invalid key, a number that does not fit, a time past 9999, a payload that is not bytes):
 * `next` is then that message's index. `new_streams`: a StreamState was created (the beacon
 * order must be rebuilt).
 */
typedef struct {
    PyObject *key;   /* str, strong */
    uint64_t shard;
    PyObject *state; /* StreamState, strong */
    uint64_t seq, ts;
    uint16_t running;
} EncState;

static int
enc_flush(EncState *t, int n)
{
    int status = 0;
    for (int k = 0; k < n; k++) {
        EncState *e = &t[k];
        if (status == 0) {
            PyObject *seq = PyLong_FromUnsignedLongLong(e->seq);
            PyObject *ts = PyLong_FromUnsignedLongLong(e->ts);
            PyObject *running = PyLong_FromLong(e->running);
            if (!seq || !ts || !running || PyObject_SetAttrString(e->state, "seq", seq) < 0 ||
                PyObject_SetAttrString(e->state, "timestamp", ts) < 0 ||
                PyObject_SetAttrString(e->state, "running", running) < 0)
                status = -1;
            Py_XDECREF(seq);
            Py_XDECREF(ts);
            Py_XDECREF(running);
        }
        Py_DECREF(e->key);
        Py_DECREF(e->state);
    }
    return status;
}

static int
attr_u64(PyObject *obj, const char *name, uint64_t *out)
{
    PyObject *value = PyObject_GetAttrString(obj, name);
    if (value == NULL)
        return -1;
    unsigned long long v = PyLong_Check(value) ? PyLong_AsUnsignedLongLong(value) : (unsigned long long)-1;
    Py_DECREF(value);
    if (PyErr_Occurred()) {
        PyErr_Clear();
        return 0; /* not representable: the pure encoder takes it */
    }
    *out = v;
    return 1;
}

#define ENC_STATES 64

PyObject *
sk_ss_encode(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 7 || !PyList_Check(args[0]) || !PyDict_Check(args[5])) {
        PyErr_SetString(PyExc_TypeError,
                        "ss_encode(list, start, key, position, interval, dict, StreamState)");
        return NULL;
    }
    if (!sk_configured(1))
        return NULL;
    PyObject *messages = args[0], *forced = args[2] == Py_None ? NULL : args[2];
    PyObject *streams = args[5], *state_type = args[6];
    Py_ssize_t index = PyLong_AsSsize_t(args[1]);
    long long position = PyLong_AsLongLong(args[3]);
    long long interval = PyLong_AsLongLong(args[4]);
    if (PyErr_Occurred())
        return NULL;
    if (interval <= 0 || position < 0 || index < 0) {
        PyErr_SetString(PyExc_ValueError, "ss_encode(): bad position or interval");
        return NULL;
    }
    long long boundary = (position / interval + 1) * interval;
    Py_ssize_t count = PyList_GET_SIZE(messages);
    EncState states[ENC_STATES];
    int nstates = 0, new_streams = 0, failed = 0;
    Buf b = {NULL, 0, 0};
    for (; index < count; index++) {
        PyObject *m = PyList_GET_ITEM(messages, index);
        if (!Py_IS_TYPE(m, sk_msg_type))
            break;
        PyObject *key = forced ? forced : get_slot(m, sk_off_stream_key);
        PyObject *payload = get_slot(m, sk_off_payload);
        PyObject *shard_o = get_slot(m, sk_off_shard), *seq_o = get_slot(m, sk_off_seq),
                 *ts_o = get_slot(m, sk_off_ts);
        if (!key || !payload || !shard_o || !seq_o || !ts_o || !PyUnicode_Check(key) ||
            !PyUnicode_IS_ASCII(key) || !PyBytes_CheckExact(payload) || !PyLong_Check(shard_o) ||
            !PyLong_Check(seq_o) || !PyLong_Check(ts_o))
            break;
        Py_ssize_t klen = PyUnicode_GET_LENGTH(key);
        const unsigned char *ktext = PyUnicode_1BYTE_DATA(key);
        int key_ok = klen >= 1 && klen <= 249;
        for (Py_ssize_t k = 0; key_ok && k < klen; k++)
            key_ok = sk_key_char[ktext[k]];
        if (!key_ok)
            break;
        uint64_t shard = PyLong_AsUnsignedLongLong(shard_o);
        if (shard == (uint64_t)-1 && PyErr_Occurred())
            break;
        uint64_t seq = PyLong_AsUnsignedLongLong(seq_o);
        if (seq == (uint64_t)-1 && PyErr_Occurred())
            break;
        uint64_t ts = PyLong_AsUnsignedLongLong(ts_o);
        if ((ts == (uint64_t)-1 && PyErr_Occurred()) || ts > MAX_TIMESTAMP)
            break;
        Py_ssize_t size = PyBytes_GET_SIZE(payload);
        if ((uint64_t)size > 0xFFFFFFFFull)
            break;
        Py_ssize_t frame = 1 + klen + 28 + size + 3;
        if (position + frame >= boundary)
            break; /* this frame meets a beacon offset: the pure encoder splices it */
        /* the stream's state */
        EncState *e = NULL;
        for (int k = 0; k < nstates; k++)
            if (states[k].shard == shard &&
                (states[k].key == key || PyUnicode_Compare(states[k].key, key) == 0)) {
                e = &states[k];
                break;
            }
        if (e == NULL) {
            if (nstates == ENC_STATES) {
                if (enc_flush(states, nstates) < 0) {
                    nstates = 0;
                    failed = 1;
                    break;
                }
                nstates = 0;
            }
            PyObject *dict_key = Py_BuildValue("(OK)", key, (unsigned long long)shard);
            if (dict_key == NULL) {
                failed = 1;
                break;
            }
            PyObject *state = PyDict_GetItemWithError(streams, dict_key);
            if (state == NULL && PyErr_Occurred()) {
                Py_DECREF(dict_key);
                failed = 1;
                break;
            }
            uint64_t sseq = seq, sts = ts, srunning = 0xFFFF;
            if (state == NULL) {
                state = PyObject_CallFunction(state_type, "OO", seq_o, ts_o);
                if (state == NULL || PyDict_SetItem(streams, dict_key, state) < 0) {
                    Py_XDECREF(state);
                    Py_DECREF(dict_key);
                    failed = 1;
                    break;
                }
                new_streams = 1;
            }
            else {
                Py_INCREF(state);
                int ok = attr_u64(state, "seq", &sseq);
                if (ok > 0)
                    ok = attr_u64(state, "timestamp", &sts);
                if (ok > 0)
                    ok = attr_u64(state, "running", &srunning);
                if (ok <= 0 || srunning > 0xFFFF) {
                    Py_DECREF(state);
                    Py_DECREF(dict_key);
                    if (ok < 0)
                        failed = 1;
                    break;
                }
            }
            Py_DECREF(dict_key);
            e = &states[nstates++];
            e->key = Py_NewRef(key);
            e->shard = shard;
            e->state = state; /* the reference taken above */
            e->seq = sseq;
            e->ts = sts;
            e->running = (uint16_t)srunning;
        }
        const unsigned char *data = (const unsigned char *)PyBytes_AS_STRING(payload);
        uint16_t crc = size ? crc16(data, size, 0xFFFF) : 0xFFFF;
        if (seq > e->seq)
            e->seq = seq;
        if (ts > e->ts)
            e->ts = ts;
        unsigned char word[2] = {(unsigned char)(crc >> 8), (unsigned char)(crc & 0xFF)};
        e->running = crc16(word, 2, e->running);
        if (sk_buf_reserve(&b, frame) < 0) {
            failed = 1;
            break;
        }
        unsigned char *out = (unsigned char *)b.data + b.len;
        out[0] = (unsigned char)klen;
        memcpy(out + 1, ktext, klen);
        unsigned char *h = out + 1 + klen;
        for (int k = 0; k < 8; k++) {
            h[k] = (unsigned char)(shard >> (56 - 8 * k));
            h[8 + k] = (unsigned char)(seq >> (56 - 8 * k));
            h[16 + k] = (unsigned char)(ts >> (56 - 8 * k));
        }
        h[24] = (unsigned char)(size >> 24);
        h[25] = (unsigned char)(size >> 16);
        h[26] = (unsigned char)(size >> 8);
        h[27] = (unsigned char)size;
        memcpy(h + 28, data, size);
        unsigned char *tail = h + 28 + size;
        tail[0] = word[0];
        tail[1] = word[1];
        tail[2] = 13;
        b.len += frame;
        position += frame;
    }
    PyObject *etype = NULL, *evalue = NULL, *etb = NULL;
    if (failed)
        PyErr_Fetch(&etype, &evalue, &etb);
    else
        PyErr_Clear(); /* a value the pure encoder must judge stopped the loop, nothing more */
    int flush_failed = enc_flush(states, nstates) < 0;
    if (failed || flush_failed) {
        PyMem_Free(b.data);
        if (failed)
            PyErr_Restore(etype, evalue, etb);
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_RuntimeError, "ss_encode() failed");
        return NULL;
    }
    PyObject *bytes = PyBytes_FromStringAndSize(b.data ? b.data : "", b.len);
    PyMem_Free(b.data);
    if (bytes == NULL)
        return NULL;
    return Py_BuildValue("(NnLO)", bytes, index, position, new_streams ? Py_True : Py_False);
}
