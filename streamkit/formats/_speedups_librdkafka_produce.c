/* LibrdkafkaProducer.produce(), .produce_messages() and .produce_spans(): records to
 * librdkafka's rd_kafka_producev(), one call per record with the bytes copied
 * (RD_KAFKA_MSG_F_COPY), as kcat does; no Python object is made per record.
 */
#include "_speedups_librdkafka.h"

/* A value or key: bytes, str (as UTF-8) or None (no value); 0 for any other type, -1 with an
 * error set. */
static inline int
bytes_of(PyObject *obj, const char **data, Py_ssize_t *len)
{
    if (PyBytes_Check(obj)) {
        *data = PyBytes_AS_STRING(obj);
        *len = PyBytes_GET_SIZE(obj);
        return 1;
    }
    if (obj == Py_None) {
        *data = NULL;
        *len = 0;
        return 1;
    }
    if (PyUnicode_Check(obj)) {
        *data = PyUnicode_AsUTF8AndSize(obj, len);
        return *data != NULL ? 1 : -1;
    }
    return 0;
}

/* Headers for librdkafka from a sequence of (name: str, value: bytes | str | None) pairs.
 * *out is NULL for no headers. Returns 1, 0 for a shape it does not take (nothing set), or -1
 * with an error. */
static int
headers_of(PyObject *pairs, rd_kafka_headers_t **out)
{
    *out = NULL;
    if (pairs == Py_None)
        return 1;
    if (!PyList_Check(pairs) && !PyTuple_Check(pairs))
        return 0;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(pairs);
    if (n == 0)
        return 1;
    rd_kafka_headers_t *headers = sk_rdk.headers_new((size_t)n);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *pair = PySequence_Fast_GET_ITEM(pairs, i);
        if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2 ||
            !PyUnicode_Check(PyTuple_GET_ITEM(pair, 0))) {
            sk_rdk.headers_destroy(headers);
            return 0;
        }
        Py_ssize_t name_len, value_len;
        const char *name = PyUnicode_AsUTF8AndSize(PyTuple_GET_ITEM(pair, 0), &name_len);
        const char *value;
        int ok = name != NULL ? bytes_of(PyTuple_GET_ITEM(pair, 1), &value, &value_len) : -1;
        if (ok != 1) {
            sk_rdk.headers_destroy(headers);
            return ok;
        }
        sk_rdk.header_add(headers, name, name_len, value, value == NULL ? 0 : value_len);
    }
    *out = headers;
    return 1;
}

/* One record to librdkafka; takes over `headers` (freed here when the record is refused). */
static inline int
produce_record(SkProducer *self, rd_kafka_topic_t *rkt, const char *value, Py_ssize_t value_len,
               const char *key, Py_ssize_t key_len, int32_t partition, int64_t timestamp,
               rd_kafka_headers_t *headers)
{
    int err = sk_rdk.producev(self->rk, V_RKT, rkt, V_PARTITION, partition, V_MSGFLAGS,
                              RDK_MSG_F_COPY, V_VALUE, (void *)value, (size_t)value_len, V_KEY,
                              (void *)key, (size_t)key_len, V_TIMESTAMP, timestamp, V_HEADERS,
                              headers, V_END);
    if (err != 0 && headers != NULL)
        sk_rdk.headers_destroy(headers);
    return err;
}

/* The exception a refused record raises: BufferError for a full queue (the caller waits for
 * room), else make_error(code, text). A new reference, never NULL unless out of memory. */
static PyObject *
refusal(SkProducer *self, int err)
{
    if (err == RDK_ERR_QUEUE_FULL)
        return PyObject_CallFunction(PyExc_BufferError, "s", sk_rdk.err2str(err));
    return sk_producer_error(self, err);
}

/* A loop's answer when librdkafka refused its `index`th record: (index, the exception). */
static PyObject *
stopped_at(SkProducer *self, Py_ssize_t index, int err)
{
    PyObject *error = refusal(self, err);
    return error != NULL ? Py_BuildValue("(nN)", index, error) : NULL;
}

/* produce(topic, value, key=None, partition=-1, on_delivery=None, callback=None, timestamp=0,
 * headers=None): confluent-kafka's positional signature, minus per-message callbacks (failures
 * come back through failures()). */
PyObject *
sk_producer_produce(SkProducer *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 2 || nargs > 8 || !PyUnicode_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError,
                        "produce(topic: str, value, key=None, partition=-1, on_delivery=None, "
                        "callback=None, timestamp=0, headers=None)");
        return NULL;
    }
    if (!sk_producer_open(self))
        return NULL;
    if ((nargs > 4 && args[4] != Py_None) || (nargs > 5 && args[5] != Py_None)) {
        PyErr_SetString(PyExc_TypeError, "produce(): per-message callbacks are not supported");
        return NULL;
    }
    const char *value, *key = NULL;
    Py_ssize_t value_len, key_len = 0;
    int ok = bytes_of(args[1], &value, &value_len);
    if (ok == 1 && nargs > 2)
        ok = bytes_of(args[2], &key, &key_len);
    if (ok != 1) {
        if (ok == 0)
            PyErr_SetString(PyExc_TypeError, "produce(): value and key must be bytes, str or None");
        return NULL;
    }
    long partition = RDK_PARTITION_UA;
    if (nargs > 3 && (partition = PyLong_AsLong(args[3])) == -1 && PyErr_Occurred())
        return NULL;
    long long timestamp = 0;
    if (nargs > 6 && (timestamp = PyLong_AsLongLong(args[6])) == -1 && PyErr_Occurred())
        return NULL;
    rd_kafka_headers_t *headers = NULL;
    if (nargs > 7 && (ok = headers_of(args[7], &headers)) != 1) {
        if (ok == 0)
            PyErr_SetString(PyExc_TypeError,
                            "produce(): headers must be a list of (str, bytes | str | None)");
        return NULL;
    }
    rd_kafka_topic_t *rkt = sk_topic_handle(self, args[0]);
    if (rkt == NULL) {
        if (headers != NULL)
            sk_rdk.headers_destroy(headers);
        return NULL;
    }
    int err = produce_record(self, rkt, value, value_len, key, key_len, (int32_t)partition,
                             (int64_t)timestamp, headers);
    if (err != 0)
        return sk_raise(refusal(self, err));
    Py_RETURN_NONE;
}

/*
 * produce_messages(topic, messages, start, same_topic) -> (index, error): the contract of
 * kafka_produce() (_speedups_kafka_produce.c), on librdkafka directly. Produces messages[start:]
 * (a list or tuple of Messages) to `topic`, a time streamkit filled in (ReadTime) as 0 for
 * librdkafka to stamp. Stops at the first item it leaves to the caller's Python loop (not
 * exactly a Message, a field of a type it does not take, a timestamp out of range, or with
 * `same_topic` another stream key) with `index` that item's, else len(messages); a record
 * librdkafka refuses stops it with `error` the exception produce() would have raised.
 */
PyObject *
sk_producer_produce_messages(SkProducer *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4 || !PyUnicode_Check(args[0]) ||
        !(PyList_Check(args[1]) || PyTuple_Check(args[1]))) {
        PyErr_SetString(PyExc_TypeError,
                        "produce_messages(topic: str, messages: list | tuple, start: int, "
                        "same_topic: bool)");
        return NULL;
    }
    if (!sk_configured(0) || !sk_producer_open(self))
        return NULL;
    PyObject *topic = args[0], *seq = args[1];
    Py_ssize_t i;
    int same_topic;
    if (!sk_loop_arguments("produce_messages", args[2], args[3], &i, &same_topic))
        return NULL;
    rd_kafka_topic_t *rkt = sk_topic_handle(self, topic);
    if (rkt == NULL)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq); /* nothing here runs Python code */
    PyObject **items = PySequence_Fast_ITEMS(seq);
    for (; i < n; i++) {
        PyObject *m = items[i];
        if (!Py_IS_TYPE(m, sk_msg_type))
            break;
        PyObject *value_o = get_slot(m, sk_off_payload), *key_o = get_slot(m, sk_off_key),
                 *ts_o = get_slot(m, sk_off_ts), *headers_o = get_slot(m, sk_off_headers);
        if (value_o == NULL || key_o == NULL || ts_o == NULL || headers_o == NULL ||
            !PyBytes_CheckExact(value_o) || !PyLong_Check(ts_o))
            break;
        if (same_topic) {
            int ours = sk_for_topic(m, topic);
            if (ours < 0)
                return NULL;
            if (!ours)
                break;
        }
        const char *key = NULL;
        Py_ssize_t key_len = 0;
        if (key_o != Py_None) {
            if (!PyBytes_CheckExact(key_o))
                break;
            key = PyBytes_AS_STRING(key_o);
            key_len = PyBytes_GET_SIZE(key_o);
        }
        int64_t timestamp = 0;
        if (!Py_IS_TYPE(ts_o, sk_read_time_type)) {
            int overflow;
            timestamp = PyLong_AsLongLongAndOverflow(ts_o, &overflow);
            if (overflow || timestamp < 0)
                break; /* the Python path says what is wrong with it */
        }
        rd_kafka_headers_t *headers = NULL;
        if (!(PyTuple_CheckExact(headers_o) && PyTuple_GET_SIZE(headers_o) == 0)) {
            int ok = headers_of(headers_o, &headers);
            if (ok < 0)
                return NULL;
            if (ok == 0)
                break;
        }
        int err = produce_record(self, rkt, PyBytes_AS_STRING(value_o), PyBytes_GET_SIZE(value_o),
                                 key, key_len, RDK_PARTITION_UA, timestamp, headers);
        if (err != 0)
            return stopped_at(self, i, err);
    }
    return Py_BuildValue("(nO)", i, Py_None);
}


/*
 * produce_spans(topic, chunk, spans, start) -> (index, error): the records scan() left in
 * `chunk` in spans mode (SkSpan: payload place and time, -1 for a time the line did not carry,
 * which librdkafka stamps), from the `start`th span, to `topic` without key or headers. `index`
 * is the number of spans, or the refused record's with `error` what produce() would have raised
 * (BufferError: wait for room and go on from there).
 */
PyObject *
sk_producer_produce_spans(SkProducer *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4 || !PyUnicode_Check(args[0]) || !PyBytes_Check(args[1]) ||
        !PyByteArray_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError,
                        "produce_spans(topic: str, chunk: bytes, spans: bytearray, start: int)");
        return NULL;
    }
    if (!sk_producer_open(self))
        return NULL;
    Py_ssize_t i = PyLong_AsSsize_t(args[3]);
    if (i == -1 && PyErr_Occurred())
        return NULL;
    Py_ssize_t n = PyByteArray_GET_SIZE(args[2]) / (Py_ssize_t)sizeof(SkSpan);
    if (i < 0 || i > n) {
        PyErr_SetString(PyExc_ValueError, "produce_spans: start out of range");
        return NULL;
    }
    const char *chunk = PyBytes_AS_STRING(args[1]);
    Py_ssize_t size = PyBytes_GET_SIZE(args[1]);
    const char *raw = PyByteArray_AS_STRING(args[2]);
    rd_kafka_topic_t *rkt = sk_topic_handle(self, args[0]);
    if (rkt == NULL)
        return NULL;
    for (; i < n; i++) {
        SkSpan span;
        memcpy(&span, raw + i * (Py_ssize_t)sizeof span, sizeof span);
        if (span.start < 0 || span.len < 0 || span.start > size - span.len) {
            PyErr_SetString(PyExc_ValueError, "produce_spans: a span outside the chunk");
            return NULL;
        }
        int err = produce_record(self, rkt, chunk + span.start, span.len, NULL, 0,
                                 RDK_PARTITION_UA, span.ts < 0 ? 0 : span.ts, NULL);
        if (err != 0)
            return stopped_at(self, i, err);
    }
    return Py_BuildValue("(nO)", i, Py_None);
}
