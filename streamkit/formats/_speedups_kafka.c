/* Kafka records → Messages in C: _convert_plain of backends/kafka/consumer.py over
 * confluent-kafka's message objects, without a Python call per field or a Message __init__ per
 * record.
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
            return NULL;
        }
    }
    PyObject *raw = args[0], *topic = args[2], *last = args[3], *out = args[4];
    if (PyList_GET_SIZE(raw) > 0 && !Py_IS_TYPE(PyList_GET_ITEM(raw, 0), k_type)) {
        PyObject *names[K_COUNT] = {kn_error,  kn_headers, kn_value,     kn_key,
                                    kn_partition, kn_offset, kn_timestamp, kn_topic};
        learn_kafka_type(Py_TYPE(PyList_GET_ITEM(raw, 0)), names);
    }
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
