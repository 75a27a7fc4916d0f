/* The internal header of the compiled codec: what more than one of its C files needs.
 *
 * streamkit.formats._speedups is one extension module built from several C files (setup.py
 * lists them), one per concern, so that each stays small and a new codec loop can go in a file
 * of its own. Everything a file shares is declared here, once: the names with external linkage
 * carry the prefix sk_ and are defined in exactly one file (named next to each group below);
 * the tiny helpers of the hot loops are `static inline` here, so that splitting the module did
 * not turn them into calls. All the rest stays `static` in its file. The sk_ symbols are hidden
 * (not exported from the shared object): Python sees only PyInit__speedups, as before.
 */
#ifndef STREAMKIT_SPEEDUPS_H
#define STREAMKIT_SPEEDUPS_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#if defined(__GNUC__)
#pragma GCC visibility push(hidden)
#endif

/* ---------------------------------------------------------------- Message layout
 * (_speedups_module.c) The Message type and the offsets of its slots, learnt by configure(). */

extern PyTypeObject *sk_msg_type;
extern Py_ssize_t sk_off_stream_key, sk_off_shard, sk_off_seq, sk_off_ts, sk_off_payload,
    sk_off_key, sk_off_headers, sk_off_line;
extern PyObject *sk_broadcast_str; /* "broadcast" */
extern PyTypeObject *sk_read_time_type; /* message.ReadTime: a timestamp filled in at reading */

static inline void
set_slot(PyObject *obj, Py_ssize_t offset, PyObject *value) /* steals value */
{
    PyObject **slot = (PyObject **)((char *)obj + offset);
    PyObject *old = *slot;
    *slot = value;
    Py_XDECREF(old);
}

static inline PyObject *
get_slot(PyObject *obj, Py_ssize_t offset) /* borrowed, may be NULL */
{
    return *(PyObject **)((char *)obj + offset);
}

PyObject *sk_new_message(PyObject *key, uint64_t shard, uint64_t seq, int64_t ts,
                         const char *payload, Py_ssize_t payload_len, const char *line,
                         Py_ssize_t line_len);
PyObject *sk_new_message_at(PyObject *key, uint64_t shard, uint64_t seq, PyObject *ts_o,
                            const char *payload, Py_ssize_t payload_len, const char *line,
                            Py_ssize_t line_len);

/* Every entry point's first check (the Message type known; with_crc: the CRC table built). */
int sk_configured(int with_crc);

/* Raises the exception object `error` (a new reference, taken over; NULL: already failed with
 * an error set). Always NULL, to return. */
static inline PyObject *
sk_raise(PyObject *error)
{
    if (error != NULL) {
        PyErr_SetObject((PyObject *)Py_TYPE(error), error);
        Py_DECREF(error);
    }
    return NULL;
}

/* The Kafka produce loops' (_speedups_kafka_produce.c, _speedups_librdkafka_produce.c) shared
 * arguments: `start` (>= 0) and the `same_topic` flag; 0 with an error set. */
static inline int
sk_loop_arguments(const char *name, PyObject *start_o, PyObject *same_o, Py_ssize_t *start,
                  int *same_topic)
{
    *start = PyLong_AsSsize_t(start_o);
    if (*start == -1 && PyErr_Occurred())
        return 0;
    if (*start < 0) {
        PyErr_Format(PyExc_ValueError, "%s: start < 0", name);
        return 0;
    }
    *same_topic = PyObject_IsTrue(same_o);
    return *same_topic >= 0;
}

/* Whether Message `m` is for stream `topic` (a str): 1, 0 (another stream key, or none to
 * compare), or -1 with an error set. */
static inline int
sk_for_topic(PyObject *m, PyObject *topic)
{
    PyObject *stream = get_slot(m, sk_off_stream_key);
    if (stream == NULL || !PyUnicode_Check(stream))
        return 0;
    if (stream == topic)
        return 1;
    int order = PyUnicode_Compare(stream, topic);
    if (order == -1 && PyErr_Occurred())
        return -1;
    return order == 0;
}

/* ---------------------------------------------------------------- text helpers
 * (_speedups_text.c) */

int sk_valid_utf8(const unsigned char *s, Py_ssize_t n);

static inline int
is_ascii(const unsigned char *s, Py_ssize_t n)
{
    Py_ssize_t i = 0;
    uint64_t acc = 0;
    for (; i + 8 <= n; i += 8) { /* eight bytes at a time: the compiler vectorises this */
        uint64_t word;
        memcpy(&word, s + i, 8);
        acc |= word;
    }
    for (; i < n; i++)
        acc |= s[i];
    return (acc & 0x8080808080808080ull) == 0;
}

static inline int
is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

/* 1 for the bytes a stream key may hold (A-Z a-z 0-9 . _ -), 0 for the others. */
extern const unsigned char sk_key_char[256];

int sk_parse_seconds(const unsigned char *p, int64_t *out);

/* ---------------------------------------------------------------- output buffer
 * (sk_buf_reserve and sk_put_time: _speedups_text.c) */

typedef struct {
    char *data;
    Py_ssize_t len, cap;
} Buf;

/* Room for `extra` more bytes; -1 with MemoryError set. The put* below never check. */
int sk_buf_reserve(Buf *b, Py_ssize_t extra);

/* A message scan() leaves in its chunk, in spans mode (no Message object): the payload's bytes
 * chunk[start:start + len] and its time, -1 for one the line did not carry (a ReadTime). The
 * Kafka producer takes runs of these (LibrdkafkaProducer.produce_spans). */
typedef struct {
    Py_ssize_t start, len;
    int64_t ts;
} SkSpan;

static inline void
put(Buf *b, const void *src, Py_ssize_t n)
{
    memcpy(b->data + b->len, src, n);
    b->len += n;
}

static inline void
put_u64(Buf *b, uint64_t v)
{
    char tmp[20];
    int n = 0;
    do {
        tmp[19 - n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    put(b, tmp + 20 - n, n);
}

static inline void
put_digits(Buf *b, int64_t v, int width)
{
    char *out = b->data + b->len;
    for (int i = width - 1; i >= 0; i--) {
        out[i] = (char)('0' + v % 10);
        v /= 10;
    }
    b->len += width;
}

/* The rest of a canonical line after its "[timestamp": " | KEY | SEQ | SHARD] PAYLOAD\n" (the
 * caller has reserved room for it). */
static inline void
put_line_rest(Buf *b, const void *key, Py_ssize_t key_len, uint64_t seq, uint64_t shard,
              const void *payload, Py_ssize_t size)
{
    put(b, " | ", 3);
    put(b, key, key_len);
    put(b, " | ", 3);
    put_u64(b, seq);
    put(b, " | ", 3);
    put_u64(b, shard);
    put(b, "] ", 2);
    put(b, payload, size);
    b->data[b->len++] = '\n';
}

int sk_put_time(Buf *b, int64_t ms);

/* ---------------------------------------------------------------- key cache
 * (_speedups_text.c) key bytes → str, shared by the line scan and the .ss scan. */

typedef struct {
    Py_ssize_t len;
    char text[250];
    PyObject *str;
    PyObject *keep_for; /* the set `keep_result` was computed for (strong: its address
                           cannot be reused by another set while it is cached here) */
    int keep_result;
    /* Where this key's counter sat in the scan table, per shard & 3 (valid for one table
     * generation): skips the table search when many keys and shards interleave. */
    uint64_t hint_gen[4], hint_shard[4];
    int hint_index[4];
} KeySlot;

KeySlot *sk_key_slot(const unsigned char *p, Py_ssize_t n);

/* ---------------------------------------------------------------- CRC-16 (_speedups_ss.c) */

extern int sk_crc_ready;
void sk_crc_init(void);

/* ---------------------------------------------------------------- the module's functions
 * (each in the file named after it; the table is in _speedups_module.c) */

PyObject *sk_scan(PyObject *self, PyObject *const *args, Py_ssize_t nargs);
PyObject *sk_encode(PyObject *self, PyObject *const *args, Py_ssize_t nargs);
PyObject *sk_py_crc16(PyObject *self, PyObject *args);
PyObject *sk_ss_scan(PyObject *self, PyObject *const *args, Py_ssize_t nargs);
PyObject *sk_ss_encode(PyObject *self, PyObject *const *args, Py_ssize_t nargs);
PyObject *sk_kafka_records(PyObject *self, PyObject *const *args, Py_ssize_t nargs);
PyObject *sk_kafka_lines(PyObject *self, PyObject *const *args, Py_ssize_t nargs);
PyObject *sk_kafka_produce(PyObject *self, PyObject *const *args, Py_ssize_t nargs);
PyObject *sk_redis_pack_xadd(PyObject *self, PyObject *entries);
PyObject *sk_redis_convert_entries(PyObject *self, PyObject *const *args, Py_ssize_t nargs);
PyObject *sk_redis_skip_replies(PyObject *self, PyObject *const *args, Py_ssize_t nargs);
PyObject *sk_librdkafka_version(PyObject *self, PyObject *unused);
extern PyTypeObject sk_librdkafka_producer_type; /* _speedups_librdkafka.c */

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif /* STREAMKIT_SPEEDUPS_H */
