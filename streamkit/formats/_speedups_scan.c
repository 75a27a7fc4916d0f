/* The line decoder's loop in C (see _speedups_module.c for the shapes it takes).
 *
 * scan() walks a chunk of complete lines from an offset and either appends Message objects
 * (decode), or appends the canonical output lines to a buffer (transcode: a stdio relay without
 * one Python object per message), or records where each message's payload lies in the chunk
 * and its time (spans: a stdin → Kafka relay, also without an object per message). It stops at
 * the first line it does not handle and says where.
 */
#include "_speedups.h"

/* Decimal digits [p, p+n) (1..20 of them) → value; 0 on overflow of 64 bits. */
static int
parse_u64(const unsigned char *p, Py_ssize_t n, uint64_t *out)
{
    uint64_t v = 0;
    Py_ssize_t i = 0;
    for (; i < n && i < 19; i++) /* 19 digits cannot overflow: no check per digit */
        v = v * 10 + (uint64_t)(p[i] - '0');
    for (; i < n; i++) {
        uint64_t digit = p[i] - '0';
        if (v > (UINT64_MAX - digit) / 10)
            return 0;
        v = v * 10 + digit;
    }
    *out = v;
    return 1;
}

/* ---------------------------------------------------------------- sequence counters */

/* The decoder's counters dict ({(key, shard): next seq}) is updated in one go when scan()
 * returns; meanwhile the (key, shard) pairs of the chunk live in this small table. */
#define COUNTERS 32
typedef struct {
    PyObject *key; /* str, strong */
    uint64_t shard, next;
} Counter;
typedef struct {
    Counter c[COUNTERS];
    int n;
    PyObject *dict;
} Counters;

/* Bumped whenever a scan table is emptied, so hints from an earlier table are never used. */
static uint64_t table_generation = 1;

static int
counters_flush(Counters *t)
{
    int status = 0;
    for (int i = 0; i < t->n; i++) {
        Counter *c = &t->c[i];
        if (status == 0) {
            PyObject *key = Py_BuildValue("(OK)", c->key, (unsigned long long)c->shard);
            PyObject *next = PyLong_FromUnsignedLongLong(c->next);
            if (key == NULL || next == NULL || PyDict_SetItem(t->dict, key, next) < 0)
                status = -1;
            Py_XDECREF(key);
            Py_XDECREF(next);
        }
        Py_DECREF(c->key);
    }
    t->n = 0;
    table_generation++;
    return status;
}

/* Equal ASCII keys (the decoder's keys are ASCII str; no function call per comparison). */
static inline int
same_key(PyObject *a, PyObject *b)
{
    if (a == b)
        return 1;
    Py_ssize_t n = PyUnicode_GET_LENGTH(a);
    if (n != PyUnicode_GET_LENGTH(b))
        return 0;
    if (PyUnicode_IS_ASCII(a) && PyUnicode_IS_ASCII(b))
        return memcmp(PyUnicode_1BYTE_DATA(a), PyUnicode_1BYTE_DATA(b), n) == 0;
    return PyUnicode_Compare(a, b) == 0;
}

/* The entry of (key, shard), loaded from the dict when new; NULL with an error set, or NULL
 * without one when the stored value does not fit (the Python path then takes the line). */
static Counter *
counters_get(Counters *t, PyObject *key, uint64_t shard, int load)
{
    for (int i = 0; i < t->n; i++) {
        Counter *c = &t->c[i];
        if (c->shard == shard && same_key(c->key, key))
            return c;
    }
    if (t->n == COUNTERS && counters_flush(t) < 0)
        return NULL;
    uint64_t next = 0;
    if (load) {
        PyObject *dict_key = Py_BuildValue("(OK)", key, (unsigned long long)shard);
        if (dict_key == NULL)
            return NULL;
        PyObject *value = PyDict_GetItemWithError(t->dict, dict_key);
        Py_DECREF(dict_key);
        if (value == NULL && PyErr_Occurred())
            return NULL;
        if (value != NULL) {
            if (!PyLong_Check(value))
                return NULL;
            next = PyLong_AsUnsignedLongLong(value);
            if (next == (uint64_t)-1 && PyErr_Occurred()) {
                PyErr_Clear();
                return NULL;
            }
        }
    }
    Counter *c = &t->c[t->n++];
    Py_INCREF(key);
    c->key = key;
    c->shard = shard;
    c->next = next;
    return c;
}

/* ---------------------------------------------------------------- scan */

/* The key filter's left-out lines per key during one scan() call. */
#define LEFT_OUT_KEYS 16
typedef struct {
    PyObject *key[LEFT_OUT_KEYS]; /* str, strong */
    Py_ssize_t count[LEFT_OUT_KEYS];
    int n;
} LeftOut;

enum { LINE_DONE = 0, LINE_SLOW = 1, LINE_ERROR = -1 };

typedef struct {
    int no_meta;
    PyObject *out;   /* list of Message, or NULL (transcode, spans) */
    Buf *spans;      /* SkSpan records (spans mode), or NULL */
    const unsigned char *base; /* the chunk: spans are offsets into it */
    PyObject *flags; /* list of bool */
    PyObject *clock;
    int64_t now;     /* -1: not read yet */
    PyObject *now_obj; /* the clock's object for `now` (a ReadTime), owned, or NULL */
    Buf *sink;       /* transcode output, or NULL */
    PyObject *keep;  /* set of str: keys that pass (transcode), or NULL for all */
    PyObject *left_out; /* dict str -> count of the lines `keep` dropped, or NULL */
    const unsigned char *out_key;
    Py_ssize_t out_key_len;
    Counters counters;
    LeftOut left;
    Py_ssize_t emitted;
} Scan;

/* Adds the counts of `t` to the `left_out` dict and empties `t`; -1 with an error set. With an
 * error already set (scan() failing) it only lets go of the keys: that call's output is dropped
 * too. */
static int
left_out_flush(LeftOut *t, PyObject *left_out)
{
    int status = PyErr_Occurred() ? -1 : 0;
    for (int i = 0; i < t->n; i++) {
        if (status == 0) {
            PyObject *old = PyDict_GetItemWithError(left_out, t->key[i]);
            Py_ssize_t before = 0;
            if (old != NULL)
                before = PyLong_AsSsize_t(old);
            if (PyErr_Occurred())
                status = -1;
            else {
                PyObject *count = PyLong_FromSsize_t(before + t->count[i]);
                if (count == NULL || PyDict_SetItem(left_out, t->key[i], count) < 0)
                    status = -1;
                Py_XDECREF(count);
            }
        }
        Py_DECREF(t->key[i]);
    }
    t->n = 0;
    return status;
}

/* One more line of stream `key` left out by the key filter (the CLI says so at exit): counted
 * here, added to the dict when scan() returns (a dict update per line cost more than writing
 * the line would have). */
static int
count_left_out(Scan *s, PyObject *key)
{
    LeftOut *t = &s->left;
    for (int i = 0; i < t->n; i++)
        if (same_key(t->key[i], key)) {
            t->count[i]++;
            return 0;
        }
    if (t->n == LEFT_OUT_KEYS && left_out_flush(t, s->left_out) < 0)
        return -1;
    Py_INCREF(key);
    t->key[t->n] = key;
    t->count[t->n++] = 1;
    return 0;
}

static int
read_now(Scan *s)
{
    if (s->now >= 0)
        return 0;
    PyObject *value = PyObject_CallNoArgs(s->clock);
    if (value == NULL)
        return -1;
    long long now = PyLong_AsLongLong(value);
    if ((now == -1 && PyErr_Occurred()) || now < 0) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError, "the clock returned a negative time");
        Py_DECREF(value);
        return -1;
    }
    s->now = now;
    Py_XSETREF(s->now_obj, value); /* the messages' timestamp: its type says it was filled in */
    return 0;
}

static int
emit_message(Scan *s, PyObject *message, int broadcast)
{
    if (message == NULL)
        return LINE_ERROR;
    int status = PyList_Append(s->out, message);
    Py_DECREF(message);
    if (status < 0 || PyList_Append(s->flags, broadcast ? Py_True : Py_False) < 0)
        return LINE_ERROR;
    s->emitted++;
    return LINE_DONE;
}

/* Spans mode: the message's payload and time, instead of a Message. */
static int
emit_span(Scan *s, const unsigned char *payload, Py_ssize_t len, int64_t ts)
{
    if (sk_buf_reserve(s->spans, (Py_ssize_t)sizeof(SkSpan)) < 0)
        return LINE_ERROR;
    SkSpan span = {payload - s->base, len, ts};
    put(s->spans, &span, sizeof span);
    s->emitted++;
    return LINE_DONE;
}

static int
plain_line(Scan *s, const unsigned char *line, Py_ssize_t n)
{
    if (s->sink != NULL && !(line[0] > 32 && line[0] < 128))
        return LINE_SLOW; /* the separator before such a payload needs the pure encoder */
    if (read_now(s) < 0)
        return LINE_ERROR;
    Counter *c = counters_get(&s->counters, sk_broadcast_str, 0, 1);
    if (c == NULL)
        return PyErr_Occurred() ? LINE_ERROR : LINE_SLOW;
    if (c->next == UINT64_MAX)
        return LINE_SLOW;
    if (s->spans != NULL) {
        c->next++;
        return emit_span(s, line, n, -1);
    }
    if (s->sink == NULL) {
        uint64_t seq = c->next++;
        PyObject *message = sk_new_message_at(sk_broadcast_str, 0, seq, Py_NewRef(s->now_obj),
                                              (const char *)line, n, NULL, 0);
        return emit_message(s, message, 1);
    }
    Buf *b = s->sink;
    Py_ssize_t key_len = s->out_key ? s->out_key_len : 9;
    if (sk_buf_reserve(b, n + key_len + 64) < 0)
        return LINE_ERROR;
    if (!sk_put_time(b, s->now))
        return LINE_SLOW; /* a year outside 1..9999: nothing written, nothing counted */
    uint64_t seq = c->next++;
    put(b, " | ", 3);
    put(b, s->out_key ? (const char *)s->out_key : "broadcast", key_len);
    put(b, " | ", 3);
    put_u64(b, seq);
    put(b, " | 0] ", 6);
    put(b, line, n);
    b->data[b->len++] = '\n';
    s->emitted++;
    return LINE_DONE;
}

static int
meta_line(Scan *s, const unsigned char *line, Py_ssize_t n)
{
    const unsigned char *p = line + 1, *end = line + n;
    int64_t seconds;
    if (end - p < 19 + 3 || !sk_parse_seconds(p, &seconds))
        return LINE_SLOW;
    p += 19;
    int millis = 0, fraction = 0;
    if (*p == '.') {
        p++;
        while (p < end && is_digit(*p) && fraction < 10) {
            if (fraction < 3)
                millis = millis * 10 + (*p - '0');
            fraction++;
            p++;
        }
        if (fraction == 0 || fraction > 9)
            return LINE_SLOW;
        for (int i = fraction; i < 3; i++)
            millis *= 10;
    }
    if (end - p < 3 || memcmp(p, " | ", 3) != 0)
        return LINE_SLOW;
    p += 3;
    const unsigned char *key = p;
    while (p < end && sk_key_char[*p])
        p++;
    Py_ssize_t key_len = p - key;
    if (key_len < 1 || key_len > 249 || end - p < 3 || memcmp(p, " | ", 3) != 0)
        return LINE_SLOW;
    p += 3;
    const unsigned char *seq_text = p;
    while (p < end && is_digit(*p))
        p++;
    Py_ssize_t seq_len = p - seq_text;
    uint64_t seq, shard = 0;
    if (seq_len < 1 || seq_len > 20 || !parse_u64(seq_text, seq_len, &seq) || seq == UINT64_MAX)
        return LINE_SLOW;
    int fields = 3, canonical_numbers = seq_len == 1 || seq_text[0] != '0';
    if (end - p >= 3 && memcmp(p, " | ", 3) == 0) {
        p += 3;
        const unsigned char *shard_text = p;
        while (p < end && is_digit(*p))
            p++;
        Py_ssize_t shard_len = p - shard_text;
        if (shard_len < 1 || shard_len > 20 || !parse_u64(shard_text, shard_len, &shard))
            return LINE_SLOW;
        canonical_numbers = canonical_numbers && (shard_len == 1 || shard_text[0] != '0');
        fields = 4;
    }
    if (end - p < 3 || p[0] != ']' || p[1] != ' ' || !(p[2] > 32 && p[2] < 128))
        return LINE_SLOW;
    const unsigned char *payload = p + 2;
    Py_ssize_t payload_len = end - payload;

    KeySlot *slot = sk_key_slot(key, key_len);
    if (slot == NULL)
        return LINE_ERROR;
    PyObject *key_str = slot->str;
    int h = (int)(shard & 3);
    Counter *c;
    if (slot->hint_gen[h] == table_generation && slot->hint_shard[h] == shard &&
        slot->hint_index[h] < s->counters.n && s->counters.c[slot->hint_index[h]].key == key_str &&
        s->counters.c[slot->hint_index[h]].shard == shard)
        c = &s->counters.c[slot->hint_index[h]];
    else {
        c = counters_get(&s->counters, key_str, shard, 0);
        if (c == NULL)
            return PyErr_Occurred() ? LINE_ERROR : LINE_SLOW;
        slot->hint_gen[h] = table_generation;
        slot->hint_shard[h] = shard;
        slot->hint_index[h] = (int)(c - s->counters.c);
    }
    int64_t ts = seconds * 1000 + millis;
    if (s->spans != NULL && ts < 0)
        return LINE_SLOW; /* before 1970: not a Kafka timestamp; the Message path says so */
    c->next = seq + 1;
    if (s->sink == NULL && s->spans == NULL) {
        /* Message.line: only text that encode_lines would write again byte for byte. */
        int keep_line = fields == 4 && fraction == 3 && canonical_numbers;
        return emit_message(s,
                            sk_new_message(key_str, shard, seq, ts, (const char *)payload,
                                           payload_len, keep_line ? (const char *)line : NULL, n),
                            0);
    }
    if (s->keep != NULL) {
        if (slot->keep_for != s->keep) {
            int found = PySet_Contains(s->keep, key_str);
            if (found < 0)
                return LINE_ERROR;
            Py_INCREF(s->keep);
            Py_XSETREF(slot->keep_for, s->keep);
            slot->keep_result = found;
        }
        if (!slot->keep_result) {
            if (s->left_out != NULL && count_left_out(s, key_str) < 0)
                return LINE_ERROR;
            return LINE_DONE;
        }
    }
    if (s->spans != NULL)
        return emit_span(s, payload, payload_len, ts);
    Buf *b = s->sink;
    const unsigned char *out_key = s->out_key ? s->out_key : key;
    Py_ssize_t out_key_len = s->out_key ? s->out_key_len : key_len;
    if (sk_buf_reserve(b, n + out_key_len + 64) < 0)
        return LINE_ERROR;
    if (fields == 4 && fraction == 3 && canonical_numbers) {
        /* Already the canonical text (what the decoder keeps as Message.line): copy it, with
         * the output key in place of the input key when renamed. */
        Py_ssize_t key_at = key - line;
        put(b, line, key_at);
        put(b, out_key, out_key_len);
        put(b, key + key_len, n - key_at - key_len);
    }
    else {
        put(b, line, 20); /* "[YYYY-MM-DDTHH:MM:SS": a checked calendar time prints the same */
        b->data[b->len++] = '.';
        put_digits(b, millis, 3);
        put_line_rest(b, out_key, out_key_len, seq, shard, payload, payload_len);
        s->emitted++;
        return LINE_DONE;
    }
    b->data[b->len++] = '\n';
    s->emitted++;
    return LINE_DONE;
}

/* Appends what `b` holds to the bytearray `target`; -1 with an error set. */
static int
append_to(PyObject *target, const Buf *b)
{
    if (b->len == 0)
        return 0;
    Py_ssize_t old = PyByteArray_GET_SIZE(target);
    if (PyByteArray_Resize(target, old + b->len) < 0)
        return -1;
    memcpy(PyByteArray_AS_STRING(target) + old, b->data, b->len);
    return 0;
}

/* scan(chunk, pos, number, now, no_meta, counters, out, flags, clock, sink, keep, out_key,
 *      left_out)
 *   → (pos, number, now, stopped, emitted)
 *
 * Lines of `chunk` (separated by \n; the last one has none) from byte `pos`. `number` is the
 * line number before `pos`. Decode mode (`out` a list): Message objects go to `out` and their
 * broadcast flags to `flags`. Transcode mode (`sink` a bytearray): the canonical output line of
 * each message whose key is in `keep` (None: all) is appended to `sink`, renamed to `out_key`
 * (bytes, or None to keep each key); `left_out` (a dict, or None) counts per key the lines
 * `keep` dropped. Spans mode (`out` a bytearray, `sink` None): an SkSpan record for each
 * message whose key is in `keep` is appended to `out` (its payload's place in `chunk`, its time
 * or -1), and `left_out` counts as in transcode mode. Stops at the first line the C code does
 * not take:
 * `stopped` is then true and `pos` is where that line starts. `now` is -1 until `clock()` has
 * been called, then what it returned (a ReadTime): the timestamp object of every line without
 * one, passed back in by the next call for the same chunk and used by the slow lines.
 */
PyObject *
sk_scan(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 13) {
        PyErr_SetString(PyExc_TypeError, "scan() takes 13 arguments");
        return NULL;
    }
    if (!sk_configured(0))
        return NULL;
    PyObject *chunk = args[0];
    if (!PyBytes_Check(chunk) || !PyDict_Check(args[5])) {
        PyErr_SetString(PyExc_TypeError, "scan(): chunk must be bytes and counters a dict");
        return NULL;
    }
    Py_ssize_t pos = PyLong_AsSsize_t(args[1]);
    long long number = PyLong_AsLongLong(args[2]);
    long long now = PyLong_AsLongLong(args[3]); /* -1, or the object a previous call returned */
    if (PyErr_Occurred())
        return NULL;
    Buf sink_buf = {NULL, 0, 0};
    Scan s;
    s.no_meta = PyObject_IsTrue(args[4]);
    s.counters.n = 0;
    s.counters.dict = args[5];
    PyObject *spans = PyByteArray_Check(args[6]) ? args[6] : NULL;
    Buf spans_buf = {NULL, 0, 0};
    s.out = args[6] == Py_None || spans != NULL ? NULL : args[6];
    s.spans = spans != NULL ? &spans_buf : NULL;
    s.base = (const unsigned char *)PyBytes_AS_STRING(chunk);
    s.flags = args[7];
    s.clock = args[8];
    s.now = now < 0 ? -1 : now;
    s.now_obj = NULL;
    s.sink = args[9] == Py_None ? NULL : &sink_buf;
    s.keep = args[10] == Py_None ? NULL : args[10];
    s.left_out = args[12] == Py_None ? NULL : args[12];
    if (s.left_out != NULL && !PyDict_Check(s.left_out)) {
        PyErr_SetString(PyExc_TypeError, "scan(): left_out must be a dict or None");
        return NULL;
    }
    s.out_key = NULL;
    s.out_key_len = 0;
    s.emitted = 0;
    s.left.n = 0;
    if (args[11] != Py_None) {
        if (!PyBytes_Check(args[11])) {
            PyErr_SetString(PyExc_TypeError, "scan(): out_key must be bytes or None");
            return NULL;
        }
        s.out_key = (const unsigned char *)PyBytes_AS_STRING(args[11]);
        s.out_key_len = PyBytes_GET_SIZE(args[11]);
    }
    if ((s.out != NULL) + (s.sink != NULL) + (s.spans != NULL) != 1 ||
        (s.out && !(PyList_Check(s.out) && PyList_Check(s.flags)))) {
        PyErr_SetString(PyExc_TypeError,
                        "scan(): give either out and flags lists, a sink, or a spans bytearray");
        return NULL;
    }
    if (s.sink != NULL && !PyByteArray_Check(args[9])) {
        PyErr_SetString(PyExc_TypeError, "scan(): sink must be a bytearray");
        return NULL;
    }
    if (s.keep != NULL && !PyAnySet_Check(s.keep)) {
        PyErr_SetString(PyExc_TypeError, "scan(): keep must be a set or None");
        return NULL;
    }
    const unsigned char *buf = (const unsigned char *)PyBytes_AS_STRING(chunk);
    Py_ssize_t len = PyBytes_GET_SIZE(chunk);
    if (pos < 0 || pos > len + 1) {
        PyErr_SetString(PyExc_ValueError, "scan(): pos out of range");
        return NULL;
    }
    int stopped = 0, status = LINE_DONE;
    if (s.sink != NULL && sk_buf_reserve(&sink_buf, (len - pos) + (len - pos) / 4 + 256) < 0)
        return NULL;
    if (s.now >= 0)
        s.now_obj = Py_NewRef(args[3]);
    int all_ascii = is_ascii(buf + pos, len - pos); /* then no line needs a UTF-8 check */
    while (pos <= len) {
        const unsigned char *line = buf + pos;
        const unsigned char *nl = memchr(line, '\n', len - pos);
        Py_ssize_t end = nl ? nl - buf : len;
        Py_ssize_t n = end - pos;
        if (n && line[n - 1] == '\r')
            n--;
        if (n) {
            if (!all_ascii && !is_ascii(line, n) && !sk_valid_utf8(line, n))
                status = LINE_SLOW;
            else if (line[0] != '[' || s.no_meta)
                status = plain_line(&s, line, n);
            else
                status = meta_line(&s, line, n);
            if (status != LINE_DONE) {
                if (status == LINE_SLOW)
                    stopped = 1;
                break;
            }
        }
        number++;
        pos = end + 1;
    }
    if (counters_flush(&s.counters) < 0)
        status = LINE_ERROR;
    if (left_out_flush(&s.left, s.left_out) < 0)
        status = LINE_ERROR;
    if (status != LINE_ERROR && s.sink != NULL && append_to(args[9], &sink_buf) < 0)
        status = LINE_ERROR;
    if (status != LINE_ERROR && spans != NULL && append_to(spans, &spans_buf) < 0)
        status = LINE_ERROR;
    PyMem_Free(sink_buf.data);
    PyMem_Free(spans_buf.data);
    if (status == LINE_ERROR) {
        Py_XDECREF(s.now_obj);
        return NULL;
    }
    /* `now` goes back as the clock's object (or -1), for the next call and the slow lines. */
    PyObject *now_out = s.now_obj != NULL ? s.now_obj : PyLong_FromLong(-1);
    if (now_out == NULL)
        return NULL;
    return Py_BuildValue("(nLNOn)", pos, number, now_out, stopped ? Py_True : Py_False,
                         s.emitted);
}
