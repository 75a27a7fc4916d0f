/* Kafka records in C, over confluent-kafka's message objects without a Python call per field:
 * kafka_records() makes Messages (_convert_plain of backends/kafka/consumer.py) without a
 * Message __init__ per record; kafka_lines() writes the line format of the Messages it would
 * make (the relay's direct path, KafkaConsumer.next_lines) without making them.
 */
#include "_speedups.h"

/* ---------------------------------------------------------------- Kafka records */

static PyObject *kn_error, *kn_headers, *kn_value, *kn_key, *kn_partition, *kn_offset,
    *kn_timestamp, *kn_topic;

/* The method descriptors of confluent-kafka's message type, looked up once: calling them
 * directly skips the attribute lookup per call (seven calls per record). */
enum { K_ERROR, K_HEADERS, K_VALUE, K_KEY, K_PARTITION, K_OFFSET, K_TIMESTAMP, K_TOPIC, K_COUNT };
static PyTypeObject *k_type = NULL;
static PyObject *k_methods[K_COUNT];

static int
learn_kafka_type(PyTypeObject *type, PyObject *const *names)
{
    PyObject *found[K_COUNT];
    for (int k = 0; k < K_COUNT; k++) {
        found[k] = PyObject_GetAttr((PyObject *)type, names[k]);
        if (found[k] == NULL || !PyCallable_Check(found[k])) {
            for (int j = 0; j <= k; j++)
                Py_XDECREF(found[j]);
            PyErr_Clear();
            return 0;
        }
    }
    for (int k = 0; k < K_COUNT; k++)
        Py_XSETREF(k_methods[k], found[k]);
    Py_INCREF(type);
    Py_XSETREF(k_type, type);
    return 1;
}

static inline PyObject *
call_method0(PyObject *obj, PyObject *name, int which)
{
    if (Py_IS_TYPE(obj, k_type))
        return PyObject_Vectorcall(k_methods[which], &obj, 1, NULL);
    return PyObject_VectorcallMethod(name, &obj, 1 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
}

/* The method names interned (once), and the methods of raw[first]'s type learnt when it is
 * not the type already learnt (a list of another type's records still works, more slowly). 0
 * with an exception set. */
static int
kafka_ready(PyObject *raw, Py_ssize_t first)
{
    if (kn_topic == NULL) { /* all or none: kn_topic is made last */
        kn_error = PyUnicode_InternFromString("error");
        kn_headers = PyUnicode_InternFromString("headers");
        kn_value = PyUnicode_InternFromString("value");
        kn_key = PyUnicode_InternFromString("key");
        kn_partition = PyUnicode_InternFromString("partition");
        kn_offset = PyUnicode_InternFromString("offset");
        kn_timestamp = PyUnicode_InternFromString("timestamp");
        kn_topic = PyUnicode_InternFromString("topic");
        if (!kn_error || !kn_headers || !kn_value || !kn_key || !kn_partition || !kn_offset ||
            !kn_timestamp || !kn_topic) {
            Py_CLEAR(kn_topic);
            return 0;
        }
    }
    if (first < PyList_GET_SIZE(raw) && !Py_IS_TYPE(PyList_GET_ITEM(raw, first), k_type)) {
        PyObject *names[K_COUNT] = {kn_error,  kn_headers, kn_value,     kn_key,
                                    kn_partition, kn_offset, kn_timestamp, kn_topic};
        learn_kafka_type(Py_TYPE(PyList_GET_ITEM(raw, first)), names);
    }
    return 1;
}

/*
 * kafka_records(raw, i, topic, last, out) -> index: confluent-kafka's messages raw[i:] as
 * Messages appended to `out`, without a Python loop or __init__. Stops at the first record it
 * leaves to the caller's Python loop (the reference): an error or partition EOF, a null value,
 * headers, a value that is not bytes, or (with `last`, a dict partition -> last offset to
 * deliver) an offset at or past its partition's last (or of a partition not in it). `topic`:
 * the stream key of every record (one topic), None to ask each record.
 */
PyObject *
sk_kafka_records(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 5 || !PyList_Check(args[0]) || !PyList_Check(args[4]) ||
        (args[3] != Py_None && !PyDict_Check(args[3]))) {
        PyErr_SetString(PyExc_TypeError, "kafka_records(list, i, topic, last, list)");
        return NULL;
    }
    if (!sk_configured(0))
        return NULL;
    if (!kafka_ready(args[0], 0))
        return NULL;
    PyObject *raw = args[0], *topic = args[2], *last = args[3], *out = args[4];
    Py_ssize_t i = PyLong_AsSsize_t(args[1]);
    if (i == -1 && PyErr_Occurred())
        return NULL;
    PyObject *empty = PyTuple_New(0);
    if (empty == NULL)
        return NULL;
    for (; i < PyList_GET_SIZE(raw); i++) {
        PyObject *m = PyList_GET_ITEM(raw, i);
        PyObject *value = NULL, *part = NULL, *offset = NULL, *ts = NULL, *key = NULL,
                 *stream = NULL, *obj = NULL;
        PyObject *probe = call_method0(m, kn_error, K_ERROR);
        if (probe == NULL)
            goto fail;
        Py_DECREF(probe);
        if (probe != Py_None)
            break;
        probe = call_method0(m, kn_headers, K_HEADERS);
        if (probe == NULL)
            goto fail;
        Py_DECREF(probe);
        if (probe != Py_None)
            break;
        value = call_method0(m, kn_value, K_VALUE);
        if (value == NULL)
            goto fail;
        if (!PyBytes_CheckExact(value)) {
            Py_DECREF(value);
            break;
        }
        part = call_method0(m, kn_partition, K_PARTITION);
        offset = call_method0(m, kn_offset, K_OFFSET);
        if (part == NULL || offset == NULL)
            goto fail_record;
        if (last != Py_None) {
            PyObject *bound = PyDict_GetItemWithError(last, part); /* borrowed */
            if (bound == NULL && PyErr_Occurred())
                goto fail_record;
            int past = bound == NULL ? 1 : PyObject_RichCompareBool(offset, bound, Py_GE);
            if (past < 0)
                goto fail_record;
            if (past) {
                Py_DECREF(value);
                Py_DECREF(part);
                Py_DECREF(offset);
                break;
            }
        }
        PyObject *stamp = call_method0(m, kn_timestamp, K_TIMESTAMP);
        if (stamp == NULL)
            goto fail_record;
        if (!PyTuple_Check(stamp) || PyTuple_GET_SIZE(stamp) != 2) {
            Py_DECREF(stamp);
            PyErr_SetString(PyExc_TypeError, "Kafka message timestamp() is not a pair");
            goto fail_record;
        }
        ts = Py_NewRef(PyTuple_GET_ITEM(stamp, 1));
        Py_DECREF(stamp);
        key = call_method0(m, kn_key, K_KEY);
        stream = topic == Py_None ? call_method0(m, kn_topic, K_TOPIC) : Py_NewRef(topic);
        if (key == NULL || stream == NULL)
            goto fail_record;
        obj = sk_msg_type->tp_alloc(sk_msg_type, 0);
        if (obj == NULL)
            goto fail_record;
        set_slot(obj, sk_off_stream_key, stream);
        set_slot(obj, sk_off_shard, part);
        set_slot(obj, sk_off_seq, offset);
        set_slot(obj, sk_off_ts, ts);
        set_slot(obj, sk_off_payload, value);
        set_slot(obj, sk_off_key, key);
        set_slot(obj, sk_off_headers, Py_NewRef(empty));
        set_slot(obj, sk_off_line, Py_NewRef(Py_None));
        int appended = PyList_Append(out, obj);
        Py_DECREF(obj);
        if (appended < 0)
            goto fail;
        continue;
    fail_record:
        Py_XDECREF(value);
        Py_XDECREF(part);
        Py_XDECREF(offset);
        Py_XDECREF(ts);
        Py_XDECREF(key);
        Py_XDECREF(stream);
        goto fail;
    }
    Py_DECREF(empty);
    return PyLong_FromSsize_t(i);
fail:
    Py_DECREF(empty);
    return NULL;
}

/* ---------------------------------------------------------------- Kafka records → lines */

#define FIRST_MS (-62135596800000LL) /* 0001-01-01T00:00:00.000Z */
#define LAST_MS 253402300799999LL     /* 9999-12-31T23:59:59.999Z */
#define TIME_PREFIX 21                /* "[YYYY-MM-DDTHH:MM:SS." */

/* The written key of one record: `fixed` (the output key or the one topic) or its topic(),
 * which must be an ASCII str. 0: leave the record to the reference; -1: an exception. */
static int
record_key(PyObject *m, PyObject *fixed, PyObject **topic, const char **text, Py_ssize_t *len)
{
    PyObject *key = fixed;
    if (key == NULL) {
        *topic = call_method0(m, kn_topic, K_TOPIC);
        if (*topic == NULL)
            return -1;
        key = *topic;
    }
    if (!PyUnicode_Check(key) || !PyUnicode_IS_ASCII(key))
        return 0;
    *text = PyUnicode_AsUTF8AndSize(key, len);
    return *text == NULL ? -1 : 1;
}

/*
 * kafka_lines(raw, i, topic, last, out_key, sink) -> index: the line format of the Messages
 * that kafka_records and encode() would make of raw[i:], appended to the bytearray `sink`
 * with no Message in between (the relay's direct path; formats/kafka_lines.py is its pure
 * twin and says which records it leaves to the caller's reference path: the first of those
 * stops it, and its index is returned). `out_key`: the output's stream key, None to write
 * each record's topic (`topic` when there is one). Nothing is appended on an exception.
 */
PyObject *
sk_kafka_lines(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 6 || !PyList_Check(args[0]) || (args[2] != Py_None && !PyUnicode_Check(args[2])) ||
        (args[3] != Py_None && !PyDict_Check(args[3])) ||
        (args[4] != Py_None && !PyUnicode_Check(args[4])) || !PyByteArray_Check(args[5])) {
        PyErr_SetString(PyExc_TypeError,
                        "kafka_lines(list, i, topic | None, dict | None, out_key | None, "
                        "bytearray)");
        return NULL;
    }
    PyObject *raw = args[0], *last = args[3], *sink = args[5];
    PyObject *fixed = args[4] != Py_None ? args[4] : args[2] != Py_None ? args[2] : NULL;
    Py_ssize_t i = PyLong_AsSsize_t(args[1]);
    if (i == -1 && PyErr_Occurred())
        return NULL;
    if (i < 0) {
        PyErr_SetString(PyExc_ValueError, "kafka_lines(): i must not be negative");
        return NULL;
    }
    if (!kafka_ready(raw, i))
        return NULL;
    Buf b = {NULL, 0, 0};
    PyObject *bound_of = NULL;        /* the partition whose bound is bound_seq */
    unsigned long long bound_seq = 0; /* the first offset past its last to deliver */
    long long second = LLONG_MIN;     /* the second whose text is second_text */
    char second_text[TIME_PREFIX];
    for (; i < PyList_GET_SIZE(raw); i++) {
        PyObject *m = Py_NewRef(PyList_GET_ITEM(raw, i)); /* its methods might change raw */
        PyObject *value = NULL, *part = NULL, *offset = NULL, *stamp = NULL, *topic = NULL;
        int take = 0;
        PyObject *probe = call_method0(m, kn_error, K_ERROR);
        if (probe == NULL)
            goto fail;
        Py_DECREF(probe);
        if (probe != Py_None)
            goto stop;
        value = call_method0(m, kn_value, K_VALUE);
        if (value == NULL)
            goto fail;
        if (!PyBytes_CheckExact(value))
            goto stop;
        const unsigned char *text = (const unsigned char *)PyBytes_AS_STRING(value);
        Py_ssize_t size = PyBytes_GET_SIZE(value);
        if (size == 0 || !(text[0] > 32 && text[0] < 128) || memchr(text, '\n', size) != NULL ||
            (!is_ascii(text, size) && !sk_valid_utf8(text, size)))
            goto stop;
        part = call_method0(m, kn_partition, K_PARTITION);
        offset = call_method0(m, kn_offset, K_OFFSET);
        if (part == NULL || offset == NULL)
            goto fail;
        if (!PyLong_CheckExact(part) || !PyLong_CheckExact(offset))
            goto stop;
        unsigned long long seq = PyLong_AsUnsignedLongLong(offset);
        if (seq == (unsigned long long)-1 && PyErr_Occurred())
            goto stop_clear;
        unsigned long long shard = PyLong_AsUnsignedLongLong(part);
        if (shard == (unsigned long long)-1 && PyErr_Occurred())
            goto stop_clear;
        if (last != Py_None) {
            if (part != bound_of) { /* records come in runs of one partition: look up once */
                PyObject *bound = PyDict_GetItemWithError(last, part); /* borrowed */
                if (bound == NULL && PyErr_Occurred())
                    goto fail;
                if (bound == NULL || !PyLong_CheckExact(bound))
                    goto stop; /* a partition with no bound is past it; the reference compares */
                unsigned long long limit = PyLong_AsUnsignedLongLong(bound);
                if (limit == (unsigned long long)-1 && PyErr_Occurred())
                    goto stop_clear; /* below 0 or past 2^64: the reference compares */
                bound_seq = limit;
                Py_XSETREF(bound_of, Py_NewRef(part));
            }
            if (seq >= bound_seq)
                goto stop;
        }
        stamp = call_method0(m, kn_timestamp, K_TIMESTAMP);
        if (stamp == NULL)
            goto fail;
        if (!PyTuple_Check(stamp) || PyTuple_GET_SIZE(stamp) != 2) {
            PyErr_SetString(PyExc_TypeError, "Kafka message timestamp() is not a pair");
            goto fail;
        }
        PyObject *ts_o = PyTuple_GET_ITEM(stamp, 1);
        if (!PyLong_CheckExact(ts_o))
            goto stop;
        int overflow = 0;
        long long ts = PyLong_AsLongLongAndOverflow(ts_o, &overflow);
        if (overflow || (ts == -1 && PyErr_Occurred()))
            goto stop_clear;
        if (ts < FIRST_MS || ts > LAST_MS) /* years 1..9999: what the line format writes */
            goto stop;
        const char *key_text = NULL;
        Py_ssize_t key_len = 0;
        int keyed = record_key(m, fixed, &topic, &key_text, &key_len);
        if (keyed < 0)
            goto fail;
        if (keyed == 0)
            goto stop;
        if (key_len > PY_SSIZE_T_MAX / 2 - size - 80) {
            PyErr_NoMemory();
            goto fail;
        }
        if (b.len + key_len + size + 80 > b.cap && sk_buf_reserve(&b, key_len + size + 80) < 0)
            goto fail;
        long long seconds = ts >= 0 ? ts / 1000 : -((-ts + 999) / 1000);
        if (seconds == second) { /* the same second as the last record: its text again */
            put(&b, second_text, TIME_PREFIX);
            put_digits(&b, ts - seconds * 1000, 3);
        }
        else {
            sk_put_time(&b, ts); /* "[YYYY-MM-DDTHH:MM:SS.mmm", in range (checked above) */
            memcpy(second_text, b.data + b.len - TIME_PREFIX - 3, TIME_PREFIX);
            second = seconds;
        }
        put_line_rest(&b, key_text, key_len, seq, shard, text, size);
        take = 1;
        goto next;
    stop_clear:
        PyErr_Clear();
    stop:
        take = 0;
    next:
        Py_XDECREF(value);
        Py_XDECREF(part);
        Py_XDECREF(offset);
        Py_XDECREF(stamp);
        Py_XDECREF(topic);
        Py_DECREF(m);
        if (!take)
            break;
        continue;
    fail:
        Py_XDECREF(value);
        Py_XDECREF(part);
        Py_XDECREF(offset);
        Py_XDECREF(stamp);
        Py_XDECREF(topic);
        Py_DECREF(m);
        Py_XDECREF(bound_of);
        PyMem_Free(b.data);
        return NULL;
    }
    Py_XDECREF(bound_of);
    if (b.len > 0) {
        Py_ssize_t had = PyByteArray_GET_SIZE(sink);
        if (b.len > PY_SSIZE_T_MAX - had || PyByteArray_Resize(sink, had + b.len) < 0) {
            if (!PyErr_Occurred())
                PyErr_NoMemory();
            PyMem_Free(b.data);
            return NULL;
        }
        memcpy(PyByteArray_AS_STRING(sink) + had, b.data, b.len);
    }
    PyMem_Free(b.data);
    return PyLong_FromSsize_t(i);
}
