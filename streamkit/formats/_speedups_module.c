/* The compiled codec (streamkit.formats._speedups): the line format's and the .ss format's hot
 * loops in C, the compiled twin of streamkit/formats/line.py and ss.py.
 *
 * Only the shapes that streamkit and SeaStreamer write are handled here:
 *   [YYYY-MM-DDTHH:MM:SS[.f{1,9}] | key | seq | shard] payload
 *   [YYYY-MM-DDTHH:MM:SS[.f{1,9}] | key | seq] payload
 *   payload                                  (a plain line: a broadcast)
 * with exact " | " separators and a payload whose first byte is 0x21..0x7f. Every other line
 * (and every line that would need a check these files do not make) is handed back to Python,
 * which runs the general parser of line.py on it: errors, their text, line numbers and the
 * --on-invalid policies therefore come from one place, the pure codec.
 *
 * One module, one file per concern (shared declarations: _speedups.h):
 *   _speedups_module.c  this file: the Message layout (configure), new Messages, the module table
 *   _speedups_text.c    UTF-8 check, key characters, timestamps, output buffer growth, key cache
 *   _speedups_scan.c    scan(): lines → Messages (decode) or canonical lines (transcode)
 *   _speedups_encode.c  encode(): Messages → lines
 *   _speedups_ss.c      CRC-16 and the .ss frames: ss_scan(), ss_encode(), crc16()
 *   _speedups_kafka.c   confluent-kafka's records → Messages (kafka_records) or lines (kafka_lines)
 *   _speedups_kafka_produce.c  kafka_produce(): Messages → confluent-kafka's produce()
 *   _speedups_librdkafka.c  LibrdkafkaProducer: Messages → librdkafka's C API, past confluent-kafka
 *   _speedups_redis.c   redis_pack_xadd(), redis_convert_entries(), redis_skip_replies(): the
 *                       Redis backend's XADD packing, XREAD entries → Messages, XADD acks
 */
#include "_speedups.h"
#include <structmember.h>

/* ---------------------------------------------------------------- Message layout */

PyTypeObject *sk_msg_type = NULL;
Py_ssize_t sk_off_stream_key, sk_off_shard, sk_off_seq, sk_off_ts, sk_off_payload, sk_off_key,
    sk_off_headers, sk_off_line;
PyObject *sk_broadcast_str = NULL; /* "broadcast" */
PyTypeObject *sk_read_time_type = NULL;

static int
member_offset(PyObject *type, const char *name, Py_ssize_t *offset)
{
    PyObject *descr = PyObject_GetAttrString(type, name);
    if (descr == NULL)
        return -1;
    if (!Py_IS_TYPE(descr, &PyMemberDescr_Type)) {
        Py_DECREF(descr);
        PyErr_Format(PyExc_TypeError, "Message.%s is not a slot", name);
        return -1;
    }
    PyMemberDef *member = ((PyMemberDescrObject *)descr)->d_member;
    if (member->type != T_OBJECT_EX && member->type != T_OBJECT) {
        Py_DECREF(descr);
        PyErr_Format(PyExc_TypeError, "Message.%s is not an object slot", name);
        return -1;
    }
    *offset = member->offset;
    Py_DECREF(descr);
    return 0;
}

/* configure(Message, "broadcast", ReadTime): learn where the slots of Message live. */
static PyObject *
configure(PyObject *self, PyObject *args)
{
    PyObject *type, *broadcast, *read_time;
    if (!PyArg_ParseTuple(args, "O!UO!", &PyType_Type, &type, &broadcast, &PyType_Type,
                          &read_time))
        return NULL;
    if (member_offset(type, "stream_key", &sk_off_stream_key) < 0 ||
        member_offset(type, "shard_id", &sk_off_shard) < 0 ||
        member_offset(type, "seq", &sk_off_seq) < 0 ||
        member_offset(type, "timestamp", &sk_off_ts) < 0 ||
        member_offset(type, "payload", &sk_off_payload) < 0 ||
        member_offset(type, "key", &sk_off_key) < 0 ||
        member_offset(type, "headers", &sk_off_headers) < 0 ||
        member_offset(type, "line", &sk_off_line) < 0)
        return NULL;
    Py_INCREF(type);
    Py_XSETREF(sk_msg_type, (PyTypeObject *)type);
    Py_INCREF(broadcast);
    Py_XSETREF(sk_broadcast_str, broadcast);
    Py_INCREF(read_time);
    Py_XSETREF(sk_read_time_type, (PyTypeObject *)read_time);
    Py_RETURN_NONE;
}

/* The timestamp object of the last Message made: the plain lines of one read and a burst in
 * one millisecond share a time, so they share one int (an allocation and a free fewer per
 * message: -150 instructions per line of a relay into Kafka) rather than equal copies. */
static PyObject *last_ts_obj = NULL;
static int64_t last_ts;

static PyObject *
timestamp_object(int64_t ts)
{
    if (last_ts_obj != NULL && ts == last_ts)
        return Py_NewRef(last_ts_obj);
    PyObject *obj = PyLong_FromLongLong(ts);
    if (obj != NULL) {
        Py_XSETREF(last_ts_obj, Py_NewRef(obj));
        last_ts = ts;
    }
    return obj;
}

/* A Message without running its Python __init__ (the same fields the dataclass sets). */
PyObject *
sk_new_message(PyObject *key, uint64_t shard, uint64_t seq, int64_t ts, const char *payload,
               Py_ssize_t payload_len, const char *line, Py_ssize_t line_len)
{
    PyObject *ts_o = timestamp_object(ts);
    if (ts_o == NULL)
        return NULL;
    return sk_new_message_at(key, shard, seq, ts_o, payload, payload_len, line, line_len);
}

/* The same with the timestamp object given (a new reference, which this takes over). */
PyObject *
sk_new_message_at(PyObject *key, uint64_t shard, uint64_t seq, PyObject *ts_o,
                  const char *payload, Py_ssize_t payload_len, const char *line,
                  Py_ssize_t line_len)
{
    PyObject *obj = sk_msg_type->tp_alloc(sk_msg_type, 0);
    if (obj == NULL) {
        Py_DECREF(ts_o);
        return NULL;
    }
    PyObject *shard_o = PyLong_FromUnsignedLongLong(shard);
    PyObject *seq_o = PyLong_FromUnsignedLongLong(seq);
    PyObject *payload_o = PyBytes_FromStringAndSize(payload, payload_len);
    PyObject *line_o = line ? PyBytes_FromStringAndSize(line, line_len) : Py_NewRef(Py_None);
    PyObject *headers = PyTuple_New(0);
    Py_INCREF(key);
    set_slot(obj, sk_off_stream_key, key);
    set_slot(obj, sk_off_shard, shard_o);
    set_slot(obj, sk_off_seq, seq_o);
    set_slot(obj, sk_off_ts, ts_o);
    set_slot(obj, sk_off_payload, payload_o);
    set_slot(obj, sk_off_key, Py_NewRef(Py_None));
    set_slot(obj, sk_off_headers, headers);
    set_slot(obj, sk_off_line, line_o);
    if (!shard_o || !seq_o || !ts_o || !payload_o || !line_o || !headers) {
        Py_DECREF(obj);
        return NULL;
    }
    return obj;
}

/* Every entry point needs the Message type from configure(); the .ss ones (`with_crc`) also
 * the CRC table, built on first use. 0 with RuntimeError set when configure() was not called. */
int
sk_configured(int with_crc)
{
    if (sk_msg_type == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "_speedups.configure() was not called");
        return 0;
    }
    if (with_crc && !sk_crc_ready)
        sk_crc_init();
    return 1;
}

/* ---------------------------------------------------------------- module */

static PyMethodDef methods[] = {
    {"configure", configure, METH_VARARGS, "configure(Message, broadcast_key, ReadTime)"},
    {"scan", (PyCFunction)(void (*)(void))sk_scan, METH_FASTCALL,
     "scan(chunk, pos, number, now, no_meta, counters, out, flags, clock, sink, keep, out_key, "
     "left_out)"},
    {"encode", (PyCFunction)(void (*)(void))sk_encode, METH_FASTCALL,
     "encode(messages, stream_key[, other]) -> bytes | None"},
    {"crc16", sk_py_crc16, METH_VARARGS, "crc16(data, crc=0xFFFF) -> CRC-16/CDMA2000"},
    {"ss_encode", (PyCFunction)(void (*)(void))sk_ss_encode, METH_FASTCALL,
     "ss_encode(messages, start, key, position, interval, streams, StreamState)"},
    {"ss_scan", (PyCFunction)(void (*)(void))sk_ss_scan, METH_FASTCALL,
     "ss_scan(buf, i, lim, limit, out, verify) -> (i, frame_start, ended, stopped)"},
    {"kafka_records", (PyCFunction)(void (*)(void))sk_kafka_records, METH_FASTCALL,
     "kafka_records(raw, i, topic, last, out) -> index of the first record left to Python"},
    {"kafka_lines", (PyCFunction)(void (*)(void))sk_kafka_lines, METH_FASTCALL,
     "kafka_lines(raw, i, topic, last, out_key, sink) -> index of the first record left to "
     "Python"},
    {"kafka_produce", (PyCFunction)(void (*)(void))sk_kafka_produce, METH_FASTCALL,
     "kafka_produce(produce, topic, messages, start, same_topic) -> (index, error)"},
    {"librdkafka_version", sk_librdkafka_version, METH_NOARGS,
     "librdkafka_version() -> (version, path) of the librdkafka loaded; ImportError if none"},
    {"redis_pack_xadd", sk_redis_pack_xadd, METH_O, "redis_pack_xadd(entries) -> bytes | None"},
    {"redis_convert_entries", (PyCFunction)(void (*)(void))sk_redis_convert_entries,
     METH_FASTCALL,
     "redis_convert_entries(entries, start, stream_key, shard_id, end_seq, until_ms, "
     "field_name, out) -> (index, past)"},
    {"redis_skip_replies", (PyCFunction)(void (*)(void))sk_redis_skip_replies, METH_FASTCALL,
     "redis_skip_replies(buf, pos, count) -> (pos, skipped, why)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "streamkit.formats._speedups",
    "The line format's hot loops in C (see streamkit/formats/line.py for the reference).", -1,
    methods,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    if (PyType_Ready(&sk_librdkafka_producer_type) < 0 ||
        PyModule_AddObjectRef(m, "LibrdkafkaProducer", (PyObject *)&sk_librdkafka_producer_type) <
            0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
