/*
 * The Redis path's per-message work (streamkit/backends/redis/resp.py is the reference):
 *
 * redis_pack_xadd(entries) -> bytes | None
 *   One buffer with the XADD command of every entry (key, payload, prefix, ms): `prefix`, the id
 *   `<ms>-*` (or `*` for ms == -1), the field `msg` and the payload, as RESP bulk strings. None
 *   for a batch it does not judge (an item that is not a 4-tuple with bytes payload and prefix
 *   and an int ms >= -1 that fits 64 bits): resp.py packs that one and raises what it raises.
 *
 * redis_convert_entries(entries, start, stream_key, shard_id, end_seq, until_ms, field_name,
 *                       out) -> (index, past)
 *   Messages for the plain XREAD entries [id, [field_name, payload, ...]] from `start` on,
 *   appended to `out`; stops at the first entry that is not plain (id N >= 65535 or MS >= 2^48,
 *   fields None or not led by `field_name`) or past the shard's end (`past` true), and also at
 *   anything it does not judge (an id that is not ASCII digits-digits, a value of another type):
 *   reading.py's per-entry rules take those, so every result and error is the pure code's.
 *
 * redis_skip_replies(buf, pos, count) -> (pos, skipped, why)
 *   Skips up to `count` plain replies ($n bulk strings, + and : lines) of `buf` from `pos`;
 *   why: 0 count reached, 1 the data ends within a reply, 2 the reply at pos is not plain.
 */
#include "_speedups.h"

#define REDIS_MAX_SUB 0xFFFFULL
#define REDIS_MAX_MS (1ULL << 48)

static const char redis_auto_id[] = "$1\r\n*\r\n$3\r\nmsg\r\n";
#define REDIS_AUTO_ID_LEN ((Py_ssize_t)sizeof(redis_auto_id) - 1)

static inline Py_ssize_t
redis_digits(unsigned long long v)
{
    Py_ssize_t n = 1;
    while (v >= 10) {
        v /= 10;
        n++;
    }
    return n;
}

static inline char *
redis_put_u64(char *p, unsigned long long v)
{
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        *p++ = tmp[--n];
    return p;
}

/* The length of the id and field part of one command: `$L\r\n<ms>-*\r\n$3\r\nmsg\r\n`. */
static inline Py_ssize_t
redis_id_len(long long ms)
{
    if (ms < 0)
        return REDIS_AUTO_ID_LEN;
    Py_ssize_t text = redis_digits((unsigned long long)ms) + 2;
    return 1 + redis_digits((unsigned long long)text) + 2 + text + 2 + 9;
}

PyObject *
sk_redis_pack_xadd(PyObject *self, PyObject *entries)
{
    if (!PyList_Check(entries) && !PyTuple_Check(entries))
        Py_RETURN_NONE;
    PyObject *seq = PySequence_Fast(entries, "entries");
    if (seq == NULL)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    PyObject **items = PySequence_Fast_ITEMS(seq);
    long long *ms_of = PyMem_Malloc((size_t)(n ? n : 1) * sizeof(long long));
    if (ms_of == NULL) {
        Py_DECREF(seq);
        return PyErr_NoMemory();
    }
    Py_ssize_t total = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = items[i];
        if (!PyTuple_CheckExact(item) || PyTuple_GET_SIZE(item) != 4)
            goto not_judged;
        PyObject *payload = PyTuple_GET_ITEM(item, 1), *prefix = PyTuple_GET_ITEM(item, 2),
                 *ms_o = PyTuple_GET_ITEM(item, 3);
        if (!PyBytes_CheckExact(payload) || !PyBytes_CheckExact(prefix) || !PyLong_Check(ms_o))
            goto not_judged;
        int overflow = 0;
        long long ms = PyLong_AsLongLongAndOverflow(ms_o, &overflow);
        if (overflow || ms < -1) {
            if (ms == -1 && PyErr_Occurred())
                PyErr_Clear();
            goto not_judged;
        }
        ms_of[i] = ms;
        Py_ssize_t size = PyBytes_GET_SIZE(payload);
        Py_ssize_t one = PyBytes_GET_SIZE(prefix) + redis_id_len(ms) + 1 +
                         redis_digits((unsigned long long)size) + 4 + size;
        if (total > PY_SSIZE_T_MAX - one) {
            PyMem_Free(ms_of);
            Py_DECREF(seq);
            return PyErr_NoMemory();
        }
        total += one;
    }
    PyObject *out = PyBytes_FromStringAndSize(NULL, total);
    if (out == NULL) {
        PyMem_Free(ms_of);
        Py_DECREF(seq);
        return NULL;
    }
    char *p = PyBytes_AS_STRING(out);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *payload = PyTuple_GET_ITEM(items[i], 1), *prefix = PyTuple_GET_ITEM(items[i], 2);
        Py_ssize_t size = PyBytes_GET_SIZE(prefix);
        memcpy(p, PyBytes_AS_STRING(prefix), (size_t)size);
        p += size;
        long long ms = ms_of[i];
        if (ms < 0) {
            memcpy(p, redis_auto_id, (size_t)REDIS_AUTO_ID_LEN);
            p += REDIS_AUTO_ID_LEN;
        }
        else {
            *p++ = '$';
            p = redis_put_u64(p, (unsigned long long)(redis_digits((unsigned long long)ms) + 2));
            *p++ = '\r';
            *p++ = '\n';
            p = redis_put_u64(p, (unsigned long long)ms);
            memcpy(p, "-*\r\n$3\r\nmsg\r\n", 13);
            p += 13;
        }
        size = PyBytes_GET_SIZE(payload);
        *p++ = '$';
        p = redis_put_u64(p, (unsigned long long)size);
        *p++ = '\r';
        *p++ = '\n';
        memcpy(p, PyBytes_AS_STRING(payload), (size_t)size);
        p += size;
        *p++ = '\r';
        *p++ = '\n';
    }
    PyMem_Free(ms_of);
    Py_DECREF(seq);
    if (p != PyBytes_AS_STRING(out) + total) { /* cannot happen: the sizes above are exact */
        Py_DECREF(out);
        PyErr_SetString(PyExc_SystemError, "redis_pack_xadd: size mismatch");
        return NULL;
    }
    return out;
not_judged:
    PyMem_Free(ms_of);
    Py_DECREF(seq);
    Py_RETURN_NONE;
}

/* A limit as this code compares it: below every value (-1), a 64-bit value (0), above every
 * value (1); 2 for a value that is not an int (left to Python); -2 with an error set. */
static int
redis_limit(PyObject *obj, unsigned long long *value)
{
    if (!PyLong_Check(obj))
        return 2;
    int overflow = 0;
    long long v = PyLong_AsLongLongAndOverflow(obj, &overflow);
    if (v == -1 && PyErr_Occurred())
        return -2;
    if (overflow < 0 || (!overflow && v < 0))
        return -1;
    if (!overflow) {
        *value = (unsigned long long)v;
        return 0;
    }
    unsigned long long u = PyLong_AsUnsignedLongLong(obj);
    if (u == (unsigned long long)-1 && PyErr_Occurred()) {
        if (!PyErr_ExceptionMatches(PyExc_OverflowError))
            return -2;
        PyErr_Clear();
        return 1;
    }
    *value = u;
    return 0;
}

static inline int
redis_past(int kind, unsigned long long limit, unsigned long long v)
{
    return kind < 0 || (kind == 0 && v > limit);
}

/* ASCII digits [p, end) → value, saturating at `cap` (any value >= cap reads as cap); 0 when
 * the text is empty or not all digits. */
static inline int
redis_digits_value(const char *p, const char *end, unsigned long long cap,
                   unsigned long long *out)
{
    if (p == end)
        return 0;
    unsigned long long v = 0;
    for (; p < end; p++) {
        unsigned char c = (unsigned char)*p;
        if (c < '0' || c > '9')
            return 0;
        if (v < cap) {
            v = v * 10 + (c - '0');
            if (v > cap)
                v = cap;
        }
    }
    *out = v;
    return 1;
}

PyObject *
sk_redis_convert_entries(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 8) {
        PyErr_SetString(PyExc_TypeError,
                        "redis_convert_entries(entries, start, stream_key, shard_id, end_seq, "
                        "until_ms, field_name, out)");
        return NULL;
    }
    if (!sk_configured(0))
        return NULL;
    PyObject *entries = args[0], *stream_key = args[2], *shard_id = args[3],
             *field_name = args[6], *out = args[7];
    Py_ssize_t start = PyLong_AsSsize_t(args[1]);
    if (start == -1 && PyErr_Occurred())
        return NULL;
    unsigned long long end_seq = 0, until_ms = 0;
    int end_kind = redis_limit(args[4], &end_seq);
    int until_kind = redis_limit(args[5], &until_ms);
    if (end_kind == -2 || until_kind == -2)
        return NULL;
    Py_ssize_t i = start;
    int past = 0;
    if ((!PyList_CheckExact(entries) && !PyTuple_CheckExact(entries)) || !PyList_Check(out) ||
        !PyBytes_CheckExact(field_name) || end_kind == 2 || until_kind == 2 || start < 0)
        goto done;
    const char *field = PyBytes_AS_STRING(field_name);
    Py_ssize_t field_len = PyBytes_GET_SIZE(field_name);
    for (;;) {
        /* the list may change size through nothing here, but read its size each time */
        Py_ssize_t n = PyList_CheckExact(entries) ? PyList_GET_SIZE(entries)
                                                  : PyTuple_GET_SIZE(entries);
        if (i >= n) {
            i = n;
            break;
        }
        PyObject *item = PyList_CheckExact(entries) ? PyList_GET_ITEM(entries, i)
                                                    : PyTuple_GET_ITEM(entries, i);
        PyObject *entry_id, *fields;
        if (PyList_CheckExact(item) && PyList_GET_SIZE(item) == 2) {
            entry_id = PyList_GET_ITEM(item, 0);
            fields = PyList_GET_ITEM(item, 1);
        }
        else if (PyTuple_CheckExact(item) && PyTuple_GET_SIZE(item) == 2) {
            entry_id = PyTuple_GET_ITEM(item, 0);
            fields = PyTuple_GET_ITEM(item, 1);
        }
        else
            break;
        if (!PyBytes_CheckExact(entry_id))
            break;
        const char *id = PyBytes_AS_STRING(entry_id);
        const char *id_end = id + PyBytes_GET_SIZE(entry_id);
        const char *dash = memchr(id, '-', (size_t)(id_end - id));
        unsigned long long ms, sub;
        if (dash == NULL || !redis_digits_value(id, dash, REDIS_MAX_MS, &ms) ||
            !redis_digits_value(dash + 1, id_end, REDIS_MAX_SUB, &sub))
            break;
        if (sub >= REDIS_MAX_SUB || ms >= REDIS_MAX_MS)
            break;
        unsigned long long seq = (ms << 16) | sub;
        if (redis_past(end_kind, end_seq, seq) || redis_past(until_kind, until_ms, ms)) {
            past = 1;
            break;
        }
        PyObject *name, *payload;
        if (PyList_CheckExact(fields) && PyList_GET_SIZE(fields) >= 2) {
            name = PyList_GET_ITEM(fields, 0);
            payload = PyList_GET_ITEM(fields, 1);
        }
        else if (PyTuple_CheckExact(fields) && PyTuple_GET_SIZE(fields) >= 2) {
            name = PyTuple_GET_ITEM(fields, 0);
            payload = PyTuple_GET_ITEM(fields, 1);
        }
        else
            break;
        if (!PyBytes_CheckExact(name) || PyBytes_GET_SIZE(name) != field_len ||
            memcmp(PyBytes_AS_STRING(name), field, (size_t)field_len) != 0)
            break;
        Py_INCREF(payload); /* held across the allocation (a collection may run there) */
        PyObject *msg = sk_msg_type->tp_alloc(sk_msg_type, 0);
        if (msg == NULL) {
            Py_DECREF(payload);
            return NULL;
        }
        PyObject *seq_o = PyLong_FromUnsignedLongLong(seq);
        PyObject *ts_o = PyLong_FromUnsignedLongLong(ms);
        PyObject *headers = PyTuple_New(0);
        set_slot(msg, sk_off_stream_key, Py_NewRef(stream_key));
        set_slot(msg, sk_off_shard, Py_NewRef(shard_id));
        set_slot(msg, sk_off_seq, seq_o);
        set_slot(msg, sk_off_ts, ts_o);
        set_slot(msg, sk_off_payload, payload);
        set_slot(msg, sk_off_key, Py_NewRef(Py_None));
        set_slot(msg, sk_off_headers, headers);
        set_slot(msg, sk_off_line, Py_NewRef(Py_None));
        if (!seq_o || !ts_o || !headers || PyList_Append(out, msg) < 0) {
            Py_DECREF(msg);
            return NULL;
        }
        Py_DECREF(msg);
        i++;
    }
done:
    return Py_BuildValue("(nO)", i, past ? Py_True : Py_False);
}

PyObject *
sk_redis_skip_replies(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3 || !PyBytes_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "redis_skip_replies(bytes, pos, count)");
        return NULL;
    }
    Py_ssize_t pos = PyLong_AsSsize_t(args[1]);
    if (pos == -1 && PyErr_Occurred())
        return NULL;
    Py_ssize_t count = PyLong_AsSsize_t(args[2]);
    if (count == -1 && PyErr_Occurred())
        return NULL;
    const char *buf = PyBytes_AS_STRING(args[0]);
    Py_ssize_t end = PyBytes_GET_SIZE(args[0]);
    if (pos < 0) {
        PyErr_SetString(PyExc_ValueError, "redis_skip_replies: negative position");
        return NULL;
    }
    Py_ssize_t skipped = 0;
    int why = 0;
    while (skipped < count) {
        if (pos >= end) {
            why = 1;
            break;
        }
        char kind = buf[pos];
        const char *eol = NULL;
        for (const char *p = buf + pos; p + 1 < buf + end; p++) {
            p = memchr(p, '\r', (size_t)(buf + end - 1 - p));
            if (p == NULL)
                break;
            if (p[1] == '\n') {
                eol = p;
                break;
            }
        }
        if (eol == NULL) {
            if (kind == '$' && end - pos >= 32)
                why = 2;
            else
                why = (kind == '$' || kind == '+' || kind == ':') ? 1 : 2;
            break;
        }
        if (kind == '$') {
            const char *d = buf + pos + 1;
            long long len = 0; /* at most 18 digits: fits */
            Py_ssize_t ndigits = eol - d;
            if (ndigits < 1 || ndigits > 18) {
                why = 2;
                break;
            }
            int ok = 1;
            for (; d < eol; d++) {
                if (*d < '0' || *d > '9') {
                    ok = 0;
                    break;
                }
                len = len * 10 + (*d - '0');
            }
            if (!ok) {
                why = 2;
                break;
            }
            Py_ssize_t head = eol + 2 - buf;
            if (len > (long long)(end - head - 2)) { /* the bulk and its \r\n: not all here */
                why = 1;
                break;
            }
            Py_ssize_t stop = head + (Py_ssize_t)len + 2;
            if (buf[stop - 2] != '\r' || buf[stop - 1] != '\n') {
                why = 2;
                break;
            }
            pos = stop;
        }
        else if (kind == '+' || kind == ':')
            pos = eol + 2 - buf;
        else {
            why = 2;
            break;
        }
        skipped++;
    }
    return Py_BuildValue("(nni)", pos, skipped, why);
}
