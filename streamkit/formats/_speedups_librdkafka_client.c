/* LibrdkafkaProducer's life and everything but producing (_speedups_librdkafka_produce.c):
 * creating the client from settings, failed deliveries, log lines, poll, flush, metadata, close.
 *
 * Delivery reports come back only for failures (delivery.report.only.error is librdkafka's own
 * setting here), to a C callback that counts them and keeps the first three as text: it runs
 * inside poll()/flush(), on whichever thread called them, with or without the GIL, so it
 * touches no Python object. librdkafka's log lines are queued (log.queue) and handed to a
 * Python callable, with the GIL taken, from the thread that polls.
 */
#include "_speedups_librdkafka.h"

#include <stdio.h>

static void
on_delivery(rd_kafka_t *rk, const rdk_message *m, void *opaque)
{
    (void)rk;
    SkProducer *self = opaque;
    if (m->err == 0) /* delivery.report.only.error: never, but cheap to be sure */
        return;
    const char *topic = m->rkt != NULL ? sk_rdk.topic_name(m->rkt) : "?";
    PyThread_acquire_lock(self->lock, WAIT_LOCK);
    self->failed++;
    if (m->err == RDK_ERR_UNKNOWN_TOPIC || m->err == RDK_ERR_UNKNOWN_TOPIC_OR_PART)
        snprintf(self->unknown_topic, sizeof self->unknown_topic, "%s", topic);
    if (self->kept < KEPT_FAILURES)
        snprintf(self->failures[self->kept++], FAILURE_TEXT, "topic '%s' partition %d: %s", topic,
                 (int)m->partition, sk_rdk.err2str(m->err));
    PyThread_release_lock(self->lock);
}

/* syslog level → logging level, as confluent-kafka maps them */
static int
python_level(int level)
{
    return level <= 2 ? 50 : level == 3 ? 40 : level == 4 ? 30 : level <= 6 ? 20 : 10;
}

static void
on_log(const rd_kafka_t *rk, int level, const char *facility, const char *text)
{
    SkProducer *self = sk_rdk.opaque(rk);
    if (self == NULL || self->log == NULL || self->log == Py_None)
        return;
    PyGILState_STATE gil = PyGILState_Ensure();
    PyObject *result = PyObject_CallFunction(self->log, "issss", python_level(level),
                                             "%s [%s] %s", facility, sk_rdk.name(rk), text);
    if (result == NULL)
        PyErr_WriteUnraisable(self->log);
    Py_XDECREF(result);
    PyGILState_Release(gil);
}

static int
producer_init(SkProducer *self, PyObject *args, PyObject *kwargs)
{
    PyObject *settings, *log, *make_error;
    static char *names[] = {"settings", "log", "make_error", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O!OO:LibrdkafkaProducer", names,
                                     &PyDict_Type, &settings, &log, &make_error))
        return -1;
    if (self->rk != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "LibrdkafkaProducer is already initialised");
        return -1;
    }
    if (!sk_rdk_load())
        return -1;
    char errstr[512];
    rd_kafka_conf_t *conf = sk_rdk.conf_new();
    PyObject *name, *value;
    Py_ssize_t pos = 0;
    while (PyDict_Next(settings, &pos, &name, &value)) {
        const char *n = PyUnicode_Check(name) ? PyUnicode_AsUTF8(name) : NULL;
        const char *v = PyUnicode_Check(value) ? PyUnicode_AsUTF8(value) : NULL;
        if (n == NULL || v == NULL) {
            sk_rdk.conf_destroy(conf);
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_TypeError, "settings: names and values must be str");
            return -1;
        }
        if (sk_rdk.conf_set(conf, n, v, errstr, sizeof errstr) != RDK_CONF_OK) {
            sk_rdk.conf_destroy(conf);
            PyErr_SetString(PyExc_ValueError, errstr);
            return -1;
        }
    }
    int logging = log != Py_None;
    if (logging &&
        sk_rdk.conf_set(conf, "log.queue", "true", errstr, sizeof errstr) != RDK_CONF_OK) {
        sk_rdk.conf_destroy(conf);
        PyErr_SetString(PyExc_ValueError, errstr);
        return -1;
    }
    Py_XSETREF(self->log, Py_NewRef(log));
    Py_XSETREF(self->make_error, Py_NewRef(make_error));
    Py_XSETREF(self->topics, PyDict_New());
    if (self->topics == NULL) {
        sk_rdk.conf_destroy(conf);
        return -1;
    }
    sk_rdk.conf_set_dr_msg_cb(conf, on_delivery);
    if (logging)
        sk_rdk.conf_set_log_cb(conf, on_log);
    sk_rdk.conf_set_opaque(conf, self);
    rd_kafka_t *rk = sk_rdk.new_(RDK_PRODUCER, conf, errstr, sizeof errstr);
    if (rk == NULL) { /* conf is still ours */
        sk_rdk.conf_destroy(conf);
        PyErr_SetString(PyExc_ValueError, errstr);
        return -1;
    }
    if (logging)
        sk_rdk.set_log_queue(rk, NULL); /* log lines are served by poll(), on its caller's thread */
    self->rk = rk;
    return 0;
}

static PyObject *
producer_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    (void)args;
    (void)kwargs;
    SkProducer *self = (SkProducer *)type->tp_alloc(type, 0);
    if (self != NULL && ((self->lock = PyThread_allocate_lock()) == NULL ||
                         (self->busy = PyThread_allocate_lock()) == NULL)) {
        Py_DECREF(self);
        return PyErr_NoMemory();
    }
    return (PyObject *)self;
}

/* Destroys the topic handles, then the client (which waits for its threads), without the GIL
 * and under `busy`, so never under a poll, flush or metadata request running in another
 * thread; calls after this one find `rk` NULL. */
static void
producer_destroy(SkProducer *self)
{
    rd_kafka_t *rk = self->rk;
    if (rk == NULL)
        return;
    self->rk = NULL;
    Py_ssize_t count = self->topics != NULL ? PyDict_GET_SIZE(self->topics) : 0, n = 0;
    rd_kafka_topic_t **handles = PyMem_Calloc((size_t)count + 1, sizeof *handles);
    if (count > 0) {
        PyObject *name, *handle;
        Py_ssize_t pos = 0;
        while (handles != NULL && PyDict_Next(self->topics, &pos, &name, &handle))
            handles[n++] = PyLong_AsVoidPtr(handle);
        PyDict_Clear(self->topics);
    }
    Py_BEGIN_ALLOW_THREADS
    PyThread_acquire_lock(self->busy, WAIT_LOCK);
    for (Py_ssize_t i = 0; i < n; i++)
        sk_rdk.topic_destroy(handles[i]);
    sk_rdk.destroy(rk); /* without memory for the list, the handles are left to it */
    PyThread_release_lock(self->busy);
    Py_END_ALLOW_THREADS
    PyMem_Free(handles);
}

static void
producer_dealloc(SkProducer *self)
{
    producer_destroy(self);
    Py_XDECREF(self->topics);
    Py_XDECREF(self->log);
    Py_XDECREF(self->make_error);
    if (self->lock != NULL)
        PyThread_free_lock(self->lock);
    if (self->busy != NULL)
        PyThread_free_lock(self->busy);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* make_error(err, librdkafka's text for it): the exception for a failed request or record. */
PyObject *
sk_producer_error(SkProducer *self, int err)
{
    return PyObject_CallFunction(self->make_error, "is", err, sk_rdk.err2str(err));
}

int
sk_producer_open(SkProducer *self)
{
    if (self->rk == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "the Kafka producer is closed");
        return 0;
    }
    return 1;
}

/* The topic handle of `topic` (made once per topic, kept until close), or NULL with an error. */
rd_kafka_topic_t *
sk_topic_handle(SkProducer *self, PyObject *topic)
{
    PyObject *known = PyDict_GetItemWithError(self->topics, topic);
    if (known != NULL)
        return PyLong_AsVoidPtr(known);
    if (PyErr_Occurred())
        return NULL;
    const char *name = PyUnicode_AsUTF8(topic);
    if (name == NULL)
        return NULL;
    rd_kafka_topic_t *rkt = sk_rdk.topic_new(self->rk, name, NULL);
    if (rkt == NULL) {
        sk_raise(sk_producer_error(self, sk_rdk.last_error()));
        return NULL;
    }
    PyObject *handle = PyLong_FromVoidPtr(rkt);
    if (handle == NULL || PyDict_SetItem(self->topics, topic, handle) < 0) {
        Py_XDECREF(handle);
        sk_rdk.topic_destroy(rkt);
        return NULL;
    }
    Py_DECREF(handle);
    return rkt;
}
static int
timeout_ms(PyObject *arg, int *ms)
{
    double seconds = PyFloat_AsDouble(arg);
    if (seconds == -1.0 && PyErr_Occurred())
        return 0;
    *ms = seconds <= 0 ? 0 : seconds > 2e6 ? 2000000000 : (int)(seconds * 1000.0 + 0.5);
    return 1;
}

/* poll(timeout) -> events served: failed deliveries and log lines. */
static PyObject *
producer_poll(SkProducer *self, PyObject *arg)
{
    int ms, served;
    if (!timeout_ms(arg, &ms) || !sk_producer_open(self))
        return NULL;
    if (ms == 0) { /* with the GIL; skipped while another thread runs the client */
        served = 0;
        if (PyThread_acquire_lock(self->busy, NOWAIT_LOCK)) {
            served = sk_rdk.poll(self->rk, 0);
            PyThread_release_lock(self->busy);
        }
    }
    else {
        Py_BEGIN_ALLOW_THREADS
        PyThread_acquire_lock(self->busy, WAIT_LOCK);
        served = self->rk != NULL ? sk_rdk.poll(self->rk, ms) : 0;
        PyThread_release_lock(self->busy);
        Py_END_ALLOW_THREADS
    }
    return PyLong_FromLong(served);
}

/* flush(timeout) -> records still undelivered (0: all delivered or failed). */
static PyObject *
producer_flush(SkProducer *self, PyObject *arg)
{
    int ms, left;
    if (!timeout_ms(arg, &ms) || !sk_producer_open(self))
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    PyThread_acquire_lock(self->busy, WAIT_LOCK);
    left = 0;
    if (self->rk != NULL) {
        sk_rdk.flush(self->rk, ms);
        left = sk_rdk.outq_len(self->rk);
    }
    PyThread_release_lock(self->busy);
    Py_END_ALLOW_THREADS
    return PyLong_FromLong(left);
}

/* failures() -> (count, first texts, unknown topic or None), and forgets them. */
static PyObject *
producer_failures(SkProducer *self, PyObject *unused)
{
    (void)unused;
    PyThread_acquire_lock(self->lock, WAIT_LOCK);
    long long failed = self->failed;
    int kept = self->kept;
    char texts[KEPT_FAILURES][FAILURE_TEXT], unknown[sizeof self->unknown_topic];
    memcpy(texts, self->failures, sizeof texts);
    memcpy(unknown, self->unknown_topic, sizeof unknown);
    self->failed = 0;
    self->kept = 0;
    self->unknown_topic[0] = '\0';
    PyThread_release_lock(self->lock);
    PyObject *list = PyList_New(kept);
    if (list == NULL)
        return NULL;
    for (int k = 0; k < kept; k++) {
        PyObject *text = PyUnicode_DecodeUTF8(texts[k], (Py_ssize_t)strlen(texts[k]), "replace");
        if (text == NULL) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, k, text);
    }
    if (unknown[0] == '\0')
        return Py_BuildValue("(LNO)", failed, list, Py_None);
    return Py_BuildValue("(LNs)", failed, list, unknown);
}

/* topic_partitions(topic, timeout) -> (error code, error text or None, partition ids): the
 * broker's metadata for one topic, asked by this producer (so a broker that creates topics on
 * first use creates it); a request that fails or times out raises make_error(). */
static PyObject *
producer_topic_partitions(SkProducer *self, PyObject *const *args, Py_ssize_t nargs)
{
    int ms;
    if (nargs != 2 || !PyUnicode_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "topic_partitions(topic: str, timeout: float)");
        return NULL;
    }
    if (!timeout_ms(args[1], &ms) || !sk_producer_open(self))
        return NULL;
    rd_kafka_topic_t *rkt = sk_topic_handle(self, args[0]);
    if (rkt == NULL)
        return NULL;
    const rdk_metadata *metadata = NULL;
    int err;
    Py_BEGIN_ALLOW_THREADS
    PyThread_acquire_lock(self->busy, WAIT_LOCK);
    /* -172 (__DESTROY): closed meanwhile (its topic handles went with it) */
    err = self->rk != NULL ? sk_rdk.metadata(self->rk, 0, rkt, &metadata, ms) : -172;
    PyThread_release_lock(self->busy);
    Py_END_ALLOW_THREADS
    if (err != 0)
        return sk_raise(sk_producer_error(self, err));
    const char *name = PyUnicode_AsUTF8(args[0]);
    PyObject *result = NULL, *ids = PyList_New(0);
    int topic_err = RDK_ERR_UNKNOWN_TOPIC_OR_PART;
    for (int t = 0; ids != NULL && name != NULL && t < metadata->topic_cnt; t++) {
        const rdk_topic_metadata *info = &metadata->topics[t];
        if (strcmp(info->topic, name) != 0)
            continue;
        topic_err = info->err;
        for (int p = 0; p < info->partition_cnt; p++) {
            PyObject *id = PyLong_FromLong(info->partitions[p].id);
            if (id == NULL || PyList_Append(ids, id) < 0) {
                Py_XDECREF(id);
                Py_CLEAR(ids);
                break;
            }
            Py_DECREF(id);
        }
        break;
    }
    sk_rdk.metadata_destroy(metadata);
    if (ids == NULL || name == NULL) {
        Py_XDECREF(ids);
        return NULL;
    }
    if (topic_err == 0)
        result = Py_BuildValue("(iON)", 0, Py_None, ids);
    else
        result = Py_BuildValue("(isN)", topic_err, sk_rdk.err2str(topic_err), ids);
    return result;
}

/* close(): destroys the client now (flush first: what it still holds is dropped). */
static PyObject *
producer_close(SkProducer *self, PyObject *unused)
{
    (void)unused;
    producer_destroy(self);
    Py_RETURN_NONE;
}

static PyObject *
producer_name(SkProducer *self, void *closure)
{
    (void)closure;
    if (self->rk == NULL)
        Py_RETURN_NONE;
    return PyUnicode_FromString(sk_rdk.name(self->rk));
}

static PyMethodDef producer_methods[] = {
    {"produce", (PyCFunction)(void (*)(void))sk_producer_produce, METH_FASTCALL,
     "produce(topic, value, key=None, partition=-1, on_delivery=None, callback=None, "
     "timestamp=0, headers=None)"},
    {"produce_messages", (PyCFunction)(void (*)(void))sk_producer_produce_messages, METH_FASTCALL,
     "produce_messages(topic, messages, start, same_topic) -> (index, error)"},
    {"produce_spans", (PyCFunction)(void (*)(void))sk_producer_produce_spans, METH_FASTCALL,
     "produce_spans(topic, chunk, spans, start) -> (index, error)"},
    {"poll", (PyCFunction)producer_poll, METH_O, "poll(timeout) -> events served"},
    {"flush", (PyCFunction)producer_flush, METH_O, "flush(timeout) -> records not yet delivered"},
    {"failures", (PyCFunction)producer_failures, METH_NOARGS,
     "failures() -> (count, first texts, unknown topic or None)"},
    {"topic_partitions", (PyCFunction)(void (*)(void))producer_topic_partitions, METH_FASTCALL,
     "topic_partitions(topic, timeout) -> (error code, error text, partition ids)"},
    {"close", (PyCFunction)producer_close, METH_NOARGS, "close(): destroy the client"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef producer_getset[] = {
    {"name", (getter)producer_name, NULL, "librdkafka's name of this client", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyTypeObject sk_librdkafka_producer_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "streamkit.formats._speedups.LibrdkafkaProducer",
    .tp_basicsize = sizeof(SkProducer),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "LibrdkafkaProducer(settings: dict[str, str], log, make_error): a Kafka producer "
              "on librdkafka's C API",
    .tp_new = producer_new,
    .tp_init = (initproc)producer_init,
    .tp_dealloc = (destructor)producer_dealloc,
    .tp_methods = producer_methods,
    .tp_getset = producer_getset,
};
