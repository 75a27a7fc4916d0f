/* The line encoder's loop in C (see _speedups_module.c for the whole).
 *
 * encode() formats a batch of Message objects; it returns None for any batch the pure encoder
 * must see (a payload that needs a look, a newline, bytes that are not UTF-8), so the errors
 * also stay in one place.
 */
#include "_speedups.h"

/* ---------------------------------------------------------------- encode */

/* encode(messages, stream_key[, other]) → bytes, or None when the pure encoder must take the
 * batch. `other(item)` gives the bytes of an item that is not a Message (decode's beacons).
 * Mirrors encode_lines: every message still holding its line and no renaming → the lines;
 * otherwise 16 or more messages are all formatted from their fields, fewer copy a kept line
 * (when its key is not renamed) and format the rest. */
PyObject *
sk_encode(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 2 || nargs > 3 || !PyList_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "encode(list, stream_key[, other]) expected");
        return NULL;
    }
    PyObject *other = nargs == 3 && args[2] != Py_None ? args[2] : NULL;
    if (!sk_configured(0))
        return NULL;
    PyObject *messages = args[0];
    PyObject *forced = args[1] == Py_None ? NULL : args[1];
    const char *forced_text = NULL;
    Py_ssize_t forced_len = 0;
    if (forced != NULL) {
        if (!PyUnicode_Check(forced) || !PyUnicode_IS_ASCII(forced))
            Py_RETURN_NONE;
        forced_text = PyUnicode_AsUTF8AndSize(forced, &forced_len);
        if (forced_text == NULL)
            return NULL;
    }
    Py_ssize_t count = PyList_GET_SIZE(messages);
    int all_lines = forced == NULL && other == NULL;
    Py_ssize_t total = 0;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *m = PyList_GET_ITEM(messages, i);
        if (!Py_IS_TYPE(m, sk_msg_type)) {
            if (other == NULL)
                Py_RETURN_NONE;
            continue; /* other(item) gives its bytes in the second pass */
        }
        PyObject *line = get_slot(m, sk_off_line);
        PyObject *payload = get_slot(m, sk_off_payload);
        if (line == NULL || payload == NULL)
            Py_RETURN_NONE;
        if (line == Py_None)
            all_lines = 0;
        else if (!PyBytes_CheckExact(line))
            Py_RETURN_NONE;
        if (!PyBytes_CheckExact(payload))
            Py_RETURN_NONE;
        total += (line != Py_None ? PyBytes_GET_SIZE(line) : 0) + PyBytes_GET_SIZE(payload);
    }
    Buf b = {NULL, 0, 0};
    if (sk_buf_reserve(&b, total + count * (forced_len + 80) + 1) < 0)
        return NULL;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *m = PyList_GET_ITEM(messages, i);
        if (!Py_IS_TYPE(m, sk_msg_type)) {
            PyObject *text = PyObject_CallOneArg(other, m);
            if (text == NULL)
                goto error;
            if (!PyBytes_Check(text)) {
                Py_DECREF(text);
                PyErr_SetString(PyExc_TypeError, "encode(): other() must return bytes");
                goto error;
            }
            if (sk_buf_reserve(&b, PyBytes_GET_SIZE(text)) < 0) {
                Py_DECREF(text);
                goto error;
            }
            put(&b, PyBytes_AS_STRING(text), PyBytes_GET_SIZE(text));
            Py_DECREF(text);
            continue;
        }
        PyObject *line = get_slot(m, sk_off_line);
        if (line != Py_None && !is_ascii((const unsigned char *)PyBytes_AS_STRING(line),
                                         PyBytes_GET_SIZE(line)) &&
            !sk_valid_utf8((const unsigned char *)PyBytes_AS_STRING(line), PyBytes_GET_SIZE(line)))
            goto fallback;
        if (all_lines) {
            put(&b, PyBytes_AS_STRING(line), PyBytes_GET_SIZE(line));
            b.data[b.len++] = '\n';
            continue;
        }
        PyObject *key = get_slot(m, sk_off_stream_key);
        if (key == NULL || !PyUnicode_Check(key) || !PyUnicode_IS_ASCII(key))
            goto fallback;
        if (count < 16 && line != Py_None &&
            (forced == NULL || PyUnicode_Compare(key, forced) == 0)) {
            if (PyErr_Occurred())
                goto error;
            put(&b, PyBytes_AS_STRING(line), PyBytes_GET_SIZE(line));
            b.data[b.len++] = '\n';
            continue;
        }
        PyObject *payload = get_slot(m, sk_off_payload);
        const unsigned char *text = (const unsigned char *)PyBytes_AS_STRING(payload);
        Py_ssize_t size = PyBytes_GET_SIZE(payload);
        if (size == 0 || !(text[0] > 32 && text[0] < 128) || memchr(text, '\n', size) != NULL ||
            (!is_ascii(text, size) && !sk_valid_utf8(text, size)))
            goto fallback;
        PyObject *ts_o = get_slot(m, sk_off_ts), *seq_o = get_slot(m, sk_off_seq),
                 *shard_o = get_slot(m, sk_off_shard);
        if (!ts_o || !seq_o || !shard_o || !PyLong_Check(ts_o) || !PyLong_CheckExact(seq_o) ||
            !PyLong_CheckExact(shard_o))
            goto fallback;
        int overflow = 0;
        long long ts = PyLong_AsLongLongAndOverflow(ts_o, &overflow);
        if (overflow || (ts == -1 && PyErr_Occurred()))
            goto fallback;
        unsigned long long seq = PyLong_AsUnsignedLongLong(seq_o);
        if (seq == (unsigned long long)-1 && PyErr_Occurred())
            goto fallback;
        unsigned long long shard = PyLong_AsUnsignedLongLong(shard_o);
        if (shard == (unsigned long long)-1 && PyErr_Occurred())
            goto fallback;
        Py_ssize_t key_len;
        const char *key_text = forced_text;
        key_len = forced_len;
        if (key_text == NULL) {
            key_text = PyUnicode_AsUTF8AndSize(key, &key_len);
            if (key_text == NULL)
                goto error;
        }
        if (sk_buf_reserve(&b, key_len + size + 80) < 0)
            goto error;
        if (!sk_put_time(&b, ts))
            goto fallback;
        put_line_rest(&b, key_text, key_len, seq, shard, text, size);
    }
    PyObject *out = PyBytes_FromStringAndSize(b.data, b.len);
    PyMem_Free(b.data);
    return out;
fallback:
    PyErr_Clear();
    PyMem_Free(b.data);
    Py_RETURN_NONE;
error:
    PyMem_Free(b.data);
    return NULL;
}
