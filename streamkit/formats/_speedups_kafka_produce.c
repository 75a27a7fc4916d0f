/* Messages → confluent-kafka's Producer.produce() in C: the column-wise loop of
 * backends/kafka/producer.py (_produce_column_wise, the pure reference) without an attribute
 * getter per field, a pass over the headers or zip() between the messages and the calls.
 * Producers run on LibrdkafkaProducer (_speedups_librdkafka*.c) where they can; this loop serves
 * confluent-kafka's Producer where they cannot (backends/kafka/librdkafka.py says when).
 */
#include "_speedups.h"

/* The eight positional arguments of produce(): (topic, value, key, partition, on_delivery,
 * callback, timestamp, headers). Positional because keyword arguments make produce() twice as
 * slow; the four that change per message are these indexes. */
enum { A_TOPIC, A_VALUE, A_KEY, A_PARTITION, A_ON_DELIVERY, A_CALLBACK, A_TIMESTAMP, A_HEADERS,
       A_COUNT };

static PyObject *
new_arguments(PyObject *topic, PyObject *minus_one)
{
    PyObject *args = PyTuple_New(A_COUNT);
    if (args == NULL)
        return NULL;
    for (int k = 0; k < A_COUNT; k++) {
        PyObject *fixed = k == A_TOPIC ? topic : k == A_PARTITION ? minus_one : Py_None;
        PyTuple_SET_ITEM(args, k, Py_NewRef(fixed));
    }
    return args;
}

static inline void
set_argument(PyObject *args, int k, PyObject *value) /* steals value */
{
    PyObject **item = &((PyTupleObject *)args)->ob_item[k];
    PyObject *old = *item;
    *item = value;
    Py_DECREF(old);
}

/* What produce() raised, as an exception object with its traceback (works on 3.10 too). */
static PyObject *
take_exception(void)
{
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    if (tb != NULL && value != NULL)
        PyException_SetTraceback(value, tb);
    Py_XDECREF(type);
    Py_XDECREF(tb);
    return value != NULL ? value : Py_NewRef(Py_None);
}

/*
 * kafka_produce(produce, topic, messages, start, same_topic) -> (index, error): calls
 * produce(topic, payload, key, -1, None, None, timestamp, headers) for messages[start:] (a list
 * or a tuple), headers None when a Message has none, else a list of its pairs (what the Python
 * path passes). A timestamp streamkit filled in (a ReadTime) is left to the client to stamp:
 * timestamp 0, and for a Message with no key and no headers (every line read from stdio) the
 * short call produce(topic, payload), which parses two arguments instead of eight. Stops at
 * the first item it leaves to the caller's Python loop: not exactly a
 * Message, a slot not set, or (with `same_topic`) a Message whose stream key is not `topic`;
 * `index` is then that item's, else len(messages). When produce() raises, the exception is not
 * raised but returned as `error`, with `index` the refused message's: the caller decides between
 * waiting for room (BufferError) and failing (KafkaException), and resumes from exactly there.
 * Errors of the loop itself (bad arguments, no memory) raise.
 *
 * One argument tuple serves every call (produce() is a METH_VARARGS function: PyObject_Call
 * hands it the tuple as it is); it is refilled only while nobody else holds it (a produce()
 * that kept its arguments would leave the refcount above 1: a new tuple is made then).
 */
PyObject *
sk_kafka_produce(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 5 || !PyCallable_Check(args[0]) || !PyUnicode_Check(args[1]) ||
        !(PyList_Check(args[2]) || PyTuple_Check(args[2]))) {
        PyErr_SetString(PyExc_TypeError,
                        "kafka_produce(produce, topic: str, messages: list | tuple, start: int, "
                        "same_topic: bool)");
        return NULL;
    }
    if (!sk_configured(0))
        return NULL;
    PyObject *produce = args[0], *topic = args[1], *seq = args[2];
    Py_ssize_t i;
    int same_topic;
    if (!sk_loop_arguments("kafka_produce", args[3], args[4], &i, &same_topic))
        return NULL;
    PyObject *minus_one = PyLong_FromLong(-1);
    if (minus_one == NULL)
        return NULL;
    PyObject *call = new_arguments(topic, minus_one);
    PyObject *short_call = PyTuple_Pack(2, topic, Py_None); /* (topic, payload) */
    PyObject *zero = PyLong_FromLong(0);
    PyObject *error = NULL;
    if (call == NULL || short_call == NULL || zero == NULL)
        goto fail;
    /* The size is read on every turn: produce() may run Python code (delivery reports) that
     * changes a list; PySequence_Fast_ITEMS is not cached for the same reason. */
    for (; i < PySequence_Fast_GET_SIZE(seq); i++) {
        PyObject *m = PySequence_Fast_GET_ITEM(seq, i);
        if (!Py_IS_TYPE(m, sk_msg_type))
            break;
        PyObject *value = get_slot(m, sk_off_payload), *key = get_slot(m, sk_off_key),
                 *ts = get_slot(m, sk_off_ts), *headers = get_slot(m, sk_off_headers);
        if (value == NULL || key == NULL || ts == NULL || headers == NULL)
            break; /* the Python path raises the AttributeError */
        if (same_topic) {
            int ours = sk_for_topic(m, topic);
            if (ours < 0)
                goto fail;
            if (!ours)
                break;
        }
        int read_time = Py_IS_TYPE(ts, sk_read_time_type);
        if (read_time && key == Py_None && PyTuple_CheckExact(headers) &&
            PyTuple_GET_SIZE(headers) == 0) {
            if (Py_REFCNT(short_call) != 1) {
                Py_SETREF(short_call, PyTuple_Pack(2, topic, Py_None));
                if (short_call == NULL)
                    goto fail;
            }
            set_argument(short_call, A_VALUE, Py_NewRef(value));
            PyObject *result = PyObject_Call(produce, short_call, NULL);
            if (result == NULL) {
                error = take_exception();
                break;
            }
            Py_DECREF(result);
            continue;
        }
        PyObject *header_arg;
        if (PyTuple_CheckExact(headers) && PyTuple_GET_SIZE(headers) == 0)
            header_arg = Py_NewRef(Py_None);
        else {
            int any = PyObject_IsTrue(headers);
            if (any < 0)
                goto fail;
            header_arg = any ? PySequence_List(headers) : Py_NewRef(Py_None);
            if (header_arg == NULL)
                goto fail;
        }
        if (Py_REFCNT(call) != 1) {
            Py_SETREF(call, new_arguments(topic, minus_one));
            if (call == NULL) {
                Py_DECREF(header_arg);
                goto fail;
            }
        }
        /* The message's fields are held by the tuple while produce() runs, so a delivery
         * report that drops the Message cannot free them under it. */
        set_argument(call, A_VALUE, Py_NewRef(value));
        set_argument(call, A_KEY, Py_NewRef(key));
        set_argument(call, A_TIMESTAMP, Py_NewRef(read_time ? zero : ts));
        set_argument(call, A_HEADERS, header_arg);
        PyObject *result = PyObject_Call(produce, call, NULL);
        if (result == NULL) {
            error = take_exception();
            break;
        }
        Py_DECREF(result);
    }
    Py_XDECREF(call);
    Py_XDECREF(short_call);
    Py_XDECREF(zero);
    Py_DECREF(minus_one);
    return Py_BuildValue("(nN)", i, error != NULL ? error : Py_NewRef(Py_None));
fail:
    Py_XDECREF(call);
    Py_XDECREF(short_call);
    Py_XDECREF(zero);
    Py_DECREF(minus_one);
    return NULL;
}
