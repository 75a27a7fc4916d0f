/* The line format's hot loops in C: the compiled twin of streamkit/formats/line.py.
 *
 * Only the shapes that streamkit and SeaStreamer write are handled here:
 *   [YYYY-MM-DDTHH:MM:SS[.f{1,9}] | key | seq | shard] payload
 *   [YYYY-MM-DDTHH:MM:SS[.f{1,9}] | key | seq] payload
 *   payload                                  (a plain line: a broadcast)
 * with exact " | " separators and a payload whose first byte is 0x21..0x7f. Every other line
 * (and every line that would need a check this file does not make) is handed back to Python,
 * which runs the general parser of line.py on it: errors, their text, line numbers and the
 * --on-invalid policies therefore come from one place, the pure codec.
 *
 * scan() walks a chunk of complete lines from an offset and either appends Message objects
 * (decode) or appends the canonical output lines to a buffer (transcode: a stdio relay without
 * one Python object per message). It stops at the first line it does not handle and says where.
 *
 * encode() formats a batch of Message objects; it returns None for any batch the pure encoder
 * must see (a payload that needs a look, a newline, bytes that are not UTF-8), so the errors
 * also stay in one place.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <stdint.h>
#include <string.h>

/* ---------------------------------------------------------------- Message layout */

static PyTypeObject *msg_type = NULL;
static Py_ssize_t off_stream_key, off_shard, off_seq, off_ts, off_payload, off_key, off_headers,
    off_line;
static PyObject *broadcast_str = NULL; /* "broadcast" */

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

/* configure(Message, "broadcast"): learn where the slots of Message live. */
static PyObject *
configure(PyObject *self, PyObject *args)
{
    PyObject *type, *broadcast;
    if (!PyArg_ParseTuple(args, "O!U", &PyType_Type, &type, &broadcast))
        return NULL;
    if (member_offset(type, "stream_key", &off_stream_key) < 0 ||
        member_offset(type, "shard_id", &off_shard) < 0 ||
        member_offset(type, "seq", &off_seq) < 0 ||
        member_offset(type, "timestamp", &off_ts) < 0 ||
        member_offset(type, "payload", &off_payload) < 0 ||
        member_offset(type, "key", &off_key) < 0 ||
        member_offset(type, "headers", &off_headers) < 0 ||
        member_offset(type, "line", &off_line) < 0)
        return NULL;
    Py_INCREF(type);
    Py_XSETREF(msg_type, (PyTypeObject *)type);
    Py_INCREF(broadcast);
    Py_XSETREF(broadcast_str, broadcast);
    Py_RETURN_NONE;
}

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

/* A Message without running its Python __init__ (the same fields the dataclass sets). */
static PyObject *
new_message(PyObject *key, uint64_t shard, uint64_t seq, int64_t ts, const char *payload,
            Py_ssize_t payload_len, const char *line, Py_ssize_t line_len)
{
    PyObject *obj = msg_type->tp_alloc(msg_type, 0);
    if (obj == NULL)
        return NULL;
    PyObject *shard_o = PyLong_FromUnsignedLongLong(shard);
    PyObject *seq_o = PyLong_FromUnsignedLongLong(seq);
    PyObject *ts_o = PyLong_FromLongLong(ts);
    PyObject *payload_o = PyBytes_FromStringAndSize(payload, payload_len);
    PyObject *line_o = line ? PyBytes_FromStringAndSize(line, line_len) : Py_NewRef(Py_None);
    PyObject *headers = PyTuple_New(0);
    Py_INCREF(key);
    set_slot(obj, off_stream_key, key);
    set_slot(obj, off_shard, shard_o);
    set_slot(obj, off_seq, seq_o);
    set_slot(obj, off_ts, ts_o);
    set_slot(obj, off_payload, payload_o);
    set_slot(obj, off_key, Py_NewRef(Py_None));
    set_slot(obj, off_headers, headers);
    set_slot(obj, off_line, line_o);
    if (!shard_o || !seq_o || !ts_o || !payload_o || !line_o || !headers) {
        Py_DECREF(obj);
        return NULL;
    }
    return obj;
}

/* ---------------------------------------------------------------- text helpers */

/* Strict UTF-8 (what bytes.decode("utf-8") accepts): no overlongs, surrogates or > U+10FFFF. */
static int
valid_utf8(const unsigned char *s, Py_ssize_t n)
{
    Py_ssize_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF) {
            if (i + 1 >= n || (s[i + 1] & 0xC0) != 0x80)
                return 0;
            i += 2;
        }
        else if (c >= 0xE0 && c <= 0xEF) {
            if (i + 2 >= n)
                return 0;
            unsigned char c1 = s[i + 1];
            if ((c1 & 0xC0) != 0x80 || (s[i + 2] & 0xC0) != 0x80)
                return 0;
            if (c == 0xE0 && c1 < 0xA0)
                return 0;
            if (c == 0xED && c1 >= 0xA0)
                return 0;
            i += 3;
        }
        else if (c >= 0xF0 && c <= 0xF4) {
            if (i + 3 >= n)
                return 0;
            unsigned char c1 = s[i + 1];
            if ((c1 & 0xC0) != 0x80 || (s[i + 2] & 0xC0) != 0x80 || (s[i + 3] & 0xC0) != 0x80)
                return 0;
            if (c == 0xF0 && c1 < 0x90)
                return 0;
            if (c == 0xF4 && c1 >= 0x90)
                return 0;
            i += 4;
        }
        else
            return 0;
    }
    return 1;
}

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

static const unsigned char KEY_CHAR[256] = {
    ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1, ['G'] = 1, ['H'] = 1,
    ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1,
    ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1, ['V'] = 1, ['W'] = 1, ['X'] = 1,
    ['Y'] = 1, ['Z'] = 1, ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1,
    ['g'] = 1, ['h'] = 1, ['i'] = 1, ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1,
    ['o'] = 1, ['p'] = 1, ['q'] = 1, ['r'] = 1, ['s'] = 1, ['t'] = 1, ['u'] = 1, ['v'] = 1,
    ['w'] = 1, ['x'] = 1, ['y'] = 1, ['z'] = 1, ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1,
    ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1, ['8'] = 1, ['9'] = 1, ['.'] = 1, ['_'] = 1,
    ['-'] = 1,
};

/* Proleptic Gregorian calendar (what calendar.timegm uses). */
static inline int
is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int64_t
days_from_civil(int64_t y, int64_t m, int64_t d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void
civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

/* "YYYY-MM-DDTHH:MM:SS" (19 bytes) → epoch seconds; 0 when it is not a real UTC time. */
static int parse_seconds_uncached(const unsigned char *p, int64_t *out);

static unsigned char last_seconds_text[19];
static int64_t last_seconds = 0;
static int last_seconds_valid = 0;

static inline int
parse_seconds(const unsigned char *p, int64_t *out)
{
    /* Consecutive lines mostly share their second: one memcmp instead of the calendar. */
    if (last_seconds_valid && memcmp(p, last_seconds_text, 19) == 0) {
        *out = last_seconds;
        return 1;
    }
    if (!parse_seconds_uncached(p, out))
        return 0;
    memcpy(last_seconds_text, p, 19);
    last_seconds = *out;
    last_seconds_valid = 1;
    return 1;
}

static int
parse_seconds_uncached(const unsigned char *p, int64_t *out)
{
    static const int days_in[13] = {0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    for (int i = 0; i < 19; i++) {
        unsigned char c = p[i];
        int want = (i == 4 || i == 7) ? '-' : i == 10 ? 'T' : (i == 13 || i == 16) ? ':' : 0;
        if (want ? c != want : !is_digit(c))
            return 0;
    }
#define D2(i) ((p[i] - '0') * 10 + (p[i + 1] - '0'))
    int64_t year = D2(0) * 100 + D2(2);
    int month = D2(5), day = D2(8), hour = D2(11), minute = D2(14), second = D2(17);
#undef D2
    if (year < 1 || month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 ||
        second > 59)
        return 0;
    int limit = days_in[month] + (month == 2 && is_leap(year));
    if (day > limit)
        return 0;
    *out = days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second;
    return 1;
}

/* Decimal digits [p, p+n) (1..20 of them) → value; 0 on overflow of 64 bits. */
static int
parse_u64(const unsigned char *p, Py_ssize_t n, uint64_t *out)
{
    uint64_t v = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        uint64_t digit = p[i] - '0';
        if (v > (UINT64_MAX - digit) / 10)
            return 0;
        v = v * 10 + digit;
    }
    *out = v;
    return 1;
}

/* ---------------------------------------------------------------- output buffer */

typedef struct {
    char *data;
    Py_ssize_t len, cap;
} Buf;

static int
buf_reserve(Buf *b, Py_ssize_t extra)
{
    if (b->len + extra <= b->cap)
        return 0;
    Py_ssize_t cap = b->cap ? b->cap : 1 << 16;
    while (cap < b->len + extra) {
        if (cap > PY_SSIZE_T_MAX / 2) {
            PyErr_NoMemory();
            return -1;
        }
        cap *= 2;
    }
    char *data = PyMem_Realloc(b->data, cap);
    if (data == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    b->data = data;
    b->cap = cap;
    return 0;
}

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

/* "[YYYY-MM-DDTHH:MM:SS.fff" of epoch milliseconds; 0 when the year is outside 1..9999 (the
 * pure encoder's job then). */
static int
put_time(Buf *b, int64_t ms)
{
    int64_t seconds = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
    int64_t millis = ms - seconds * 1000;
    int64_t days = seconds >= 0 ? seconds / 86400 : -((-seconds + 86399) / 86400);
    int64_t rest = seconds - days * 86400;
    int64_t year;
    int month, day;
    civil_from_days(days, &year, &month, &day);
    if (year < 1 || year > 9999)
        return 0;
    b->data[b->len++] = '[';
    put_digits(b, year, 4);
    b->data[b->len++] = '-';
    put_digits(b, month, 2);
    b->data[b->len++] = '-';
    put_digits(b, day, 2);
    b->data[b->len++] = 'T';
    put_digits(b, rest / 3600, 2);
    b->data[b->len++] = ':';
    put_digits(b, rest / 60 % 60, 2);
    b->data[b->len++] = ':';
    put_digits(b, rest % 60, 2);
    b->data[b->len++] = '.';
    put_digits(b, millis, 3);
    return 1;
}

/* ---------------------------------------------------------------- key cache */

/* key bytes → str, a small direct-mapped cache (strong references, kept for the process). */
#define KEY_SLOTS 256
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
static KeySlot key_cache[KEY_SLOTS];

static KeySlot *
key_slot(const unsigned char *p, Py_ssize_t n)
{
    uint32_t h = 2166136261u;
    for (Py_ssize_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 16777619u;
    KeySlot *slot = &key_cache[h % KEY_SLOTS];
    if (slot->str != NULL && slot->len == n && memcmp(slot->text, p, n) == 0)
        return slot;
    PyObject *str = PyUnicode_DecodeASCII((const char *)p, n, NULL);
    if (str == NULL)
        return NULL;
    Py_XSETREF(slot->str, str);
    memcpy(slot->text, p, n);
    slot->len = n;
    Py_CLEAR(slot->keep_for);
    memset(slot->hint_gen, 0, sizeof slot->hint_gen);
    return slot;
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

enum { LINE_DONE = 0, LINE_SLOW = 1, LINE_ERROR = -1 };

typedef struct {
    int no_meta;
    PyObject *out;   /* list of Message, or NULL (transcode) */
    PyObject *flags; /* list of bool */
    PyObject *clock;
    int64_t now;     /* -1: not read yet */
    Buf *sink;       /* transcode output, or NULL */
    PyObject *keep;  /* set of str: keys that pass (transcode), or NULL for all */
    PyObject *left_out; /* dict str -> count of the lines `keep` dropped, or NULL */
    const unsigned char *out_key;
    Py_ssize_t out_key_len;
    Counters counters;
    Py_ssize_t emitted;
} Scan;

/* One more line of stream `key` left out by the key filter (the CLI says so at exit). */
static int
count_left_out(PyObject *left_out, PyObject *key)
{
    PyObject *old = PyDict_GetItemWithError(left_out, key);
    if (old == NULL && PyErr_Occurred())
        return -1;
    PyObject *count = PyLong_FromSsize_t(old == NULL ? 1 : PyLong_AsSsize_t(old) + 1);
    if (count == NULL)
        return -1;
    int rc = PyDict_SetItem(left_out, key, count);
    Py_DECREF(count);
    return rc;
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
    Py_DECREF(value);
    if (now == -1 && PyErr_Occurred())
        return -1;
    if (now < 0) {
        PyErr_SetString(PyExc_ValueError, "the clock returned a negative time");
        return -1;
    }
    s->now = now;
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

static int
plain_line(Scan *s, const unsigned char *line, Py_ssize_t n)
{
    if (s->sink != NULL && !(line[0] > 32 && line[0] < 128))
        return LINE_SLOW; /* the separator before such a payload needs the pure encoder */
    if (read_now(s) < 0)
        return LINE_ERROR;
    Counter *c = counters_get(&s->counters, broadcast_str, 0, 1);
    if (c == NULL)
        return PyErr_Occurred() ? LINE_ERROR : LINE_SLOW;
    if (c->next == UINT64_MAX)
        return LINE_SLOW;
    if (s->sink == NULL) {
        uint64_t seq = c->next++;
        return emit_message(
            s, new_message(broadcast_str, 0, seq, s->now, (const char *)line, n, NULL, 0), 1);
    }
    Buf *b = s->sink;
    Py_ssize_t key_len = s->out_key ? s->out_key_len : 9;
    if (buf_reserve(b, n + key_len + 64) < 0)
        return LINE_ERROR;
    if (!put_time(b, s->now))
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
    if (end - p < 19 + 3 || !parse_seconds(p, &seconds))
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
    while (p < end && KEY_CHAR[*p])
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

    KeySlot *slot = key_slot(key, key_len);
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
    c->next = seq + 1;
    int64_t ts = seconds * 1000 + millis;
    if (s->sink == NULL) {
        /* Message.line: only text that encode_lines would write again byte for byte. */
        int keep_line = fields == 4 && fraction == 3 && canonical_numbers;
        return emit_message(s,
                            new_message(key_str, shard, seq, ts, (const char *)payload,
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
            if (s->left_out != NULL && count_left_out(s->left_out, key_str) < 0)
                return LINE_ERROR;
            return LINE_DONE;
        }
    }
    Buf *b = s->sink;
    const unsigned char *out_key = s->out_key ? s->out_key : key;
    Py_ssize_t out_key_len = s->out_key ? s->out_key_len : key_len;
    if (buf_reserve(b, n + out_key_len + 64) < 0)
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
        put(b, " | ", 3);
        put(b, out_key, out_key_len);
        put(b, " | ", 3);
        put_u64(b, seq);
        put(b, " | ", 3);
        put_u64(b, shard);
        put(b, "] ", 2);
        put(b, payload, payload_len);
    }
    b->data[b->len++] = '\n';
    s->emitted++;
    return LINE_DONE;
}

/* Every entry point needs the Message type from configure(); the .ss ones (`with_crc`) also
 * the CRC table, built on first use. 0 with RuntimeError set when configure() was not called. */
static int crc_ready;
static void crc_init(void);

static int
configured(int with_crc)
{
    if (msg_type == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "_speedups.configure() was not called");
        return 0;
    }
    if (with_crc && !crc_ready)
        crc_init();
    return 1;
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
 * `keep` dropped. Stops at the first line the C code does not take:
 * `stopped` is then true and `pos` is where that line starts.
 */
static PyObject *
scan(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 13) {
        PyErr_SetString(PyExc_TypeError, "scan() takes 13 arguments");
        return NULL;
    }
    if (!configured(0))
        return NULL;
    PyObject *chunk = args[0];
    if (!PyBytes_Check(chunk) || !PyDict_Check(args[5])) {
        PyErr_SetString(PyExc_TypeError, "scan(): chunk must be bytes and counters a dict");
        return NULL;
    }
    Py_ssize_t pos = PyLong_AsSsize_t(args[1]);
    long long number = PyLong_AsLongLong(args[2]);
    long long now = PyLong_AsLongLong(args[3]);
    if (PyErr_Occurred())
        return NULL;
    Buf sink_buf = {NULL, 0, 0};
    Scan s;
    s.no_meta = PyObject_IsTrue(args[4]);
    s.counters.n = 0;
    s.counters.dict = args[5];
    s.out = args[6] == Py_None ? NULL : args[6];
    s.flags = args[7];
    s.clock = args[8];
    s.now = now;
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
    if (args[11] != Py_None) {
        if (!PyBytes_Check(args[11])) {
            PyErr_SetString(PyExc_TypeError, "scan(): out_key must be bytes or None");
            return NULL;
        }
        s.out_key = (const unsigned char *)PyBytes_AS_STRING(args[11]);
        s.out_key_len = PyBytes_GET_SIZE(args[11]);
    }
    if ((s.out == NULL) == (s.sink == NULL) || (s.out && !(PyList_Check(s.out) &&
                                                          PyList_Check(s.flags)))) {
        PyErr_SetString(PyExc_TypeError, "scan(): give either out and flags lists or a sink");
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
    if (s.sink != NULL && buf_reserve(&sink_buf, (len - pos) + (len - pos) / 4 + 256) < 0)
        return NULL;
    int all_ascii = is_ascii(buf + pos, len - pos); /* then no line needs a UTF-8 check */
    while (pos <= len) {
        const unsigned char *line = buf + pos;
        const unsigned char *nl = memchr(line, '\n', len - pos);
        Py_ssize_t end = nl ? nl - buf : len;
        Py_ssize_t n = end - pos;
        if (n && line[n - 1] == '\r')
            n--;
        if (n) {
            if (!all_ascii && !is_ascii(line, n) && !valid_utf8(line, n))
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
    if (status != LINE_ERROR && s.sink != NULL && sink_buf.len) {
        PyObject *sink = args[9];
        Py_ssize_t old = PyByteArray_GET_SIZE(sink);
        if (PyByteArray_Resize(sink, old + sink_buf.len) < 0)
            status = LINE_ERROR;
        else
            memcpy(PyByteArray_AS_STRING(sink) + old, sink_buf.data, sink_buf.len);
    }
    PyMem_Free(sink_buf.data);
    if (status == LINE_ERROR)
        return NULL;
    return Py_BuildValue("(nLLOn)", pos, number, (long long)s.now, stopped ? Py_True : Py_False,
                         s.emitted);
}

/* ---------------------------------------------------------------- encode */

/* encode(messages, stream_key[, other]) → bytes, or None when the pure encoder must take the
 * batch. `other(item)` gives the bytes of an item that is not a Message (decode's beacons).
 * Mirrors encode_lines: every message still holding its line and no renaming → the lines;
 * otherwise 16 or more messages are all formatted from their fields, fewer copy a kept line
 * (when its key is not renamed) and format the rest. */
static PyObject *
encode(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 2 || nargs > 3 || !PyList_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "encode(list, stream_key[, other]) expected");
        return NULL;
    }
    PyObject *other = nargs == 3 && args[2] != Py_None ? args[2] : NULL;
    if (!configured(0))
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
        if (!Py_IS_TYPE(m, msg_type)) {
            if (other == NULL)
                Py_RETURN_NONE;
            continue; /* other(item) gives its bytes in the second pass */
        }
        PyObject *line = get_slot(m, off_line);
        PyObject *payload = get_slot(m, off_payload);
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
    if (buf_reserve(&b, total + count * (forced_len + 80) + 1) < 0)
        return NULL;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *m = PyList_GET_ITEM(messages, i);
        if (!Py_IS_TYPE(m, msg_type)) {
            PyObject *text = PyObject_CallOneArg(other, m);
            if (text == NULL)
                goto error;
            if (!PyBytes_Check(text)) {
                Py_DECREF(text);
                PyErr_SetString(PyExc_TypeError, "encode(): other() must return bytes");
                goto error;
            }
            if (buf_reserve(&b, PyBytes_GET_SIZE(text)) < 0) {
                Py_DECREF(text);
                goto error;
            }
            put(&b, PyBytes_AS_STRING(text), PyBytes_GET_SIZE(text));
            Py_DECREF(text);
            continue;
        }
        PyObject *line = get_slot(m, off_line);
        if (line != Py_None && !is_ascii((const unsigned char *)PyBytes_AS_STRING(line),
                                         PyBytes_GET_SIZE(line)) &&
            !valid_utf8((const unsigned char *)PyBytes_AS_STRING(line), PyBytes_GET_SIZE(line)))
            goto fallback;
        if (all_lines) {
            put(&b, PyBytes_AS_STRING(line), PyBytes_GET_SIZE(line));
            b.data[b.len++] = '\n';
            continue;
        }
        PyObject *key = get_slot(m, off_stream_key);
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
        PyObject *payload = get_slot(m, off_payload);
        const unsigned char *text = (const unsigned char *)PyBytes_AS_STRING(payload);
        Py_ssize_t size = PyBytes_GET_SIZE(payload);
        if (size == 0 || !(text[0] > 32 && text[0] < 128) || memchr(text, '\n', size) != NULL ||
            (!is_ascii(text, size) && !valid_utf8(text, size)))
            goto fallback;
        PyObject *ts_o = get_slot(m, off_ts), *seq_o = get_slot(m, off_seq),
                 *shard_o = get_slot(m, off_shard);
        if (!ts_o || !seq_o || !shard_o || !PyLong_CheckExact(ts_o) || !PyLong_CheckExact(seq_o) ||
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
        if (buf_reserve(&b, key_len + size + 80) < 0)
            goto error;
        if (!put_time(&b, ts))
            goto fallback;
        put(&b, " | ", 3);
        put(&b, key_text, key_len);
        put(&b, " | ", 3);
        put_u64(&b, seq);
        put(&b, " | ", 3);
        put_u64(&b, shard);
        put(&b, "] ", 2);
        put(&b, text, size);
        b.data[b.len++] = '\n';
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

/* ---------------------------------------------------------------- .ss frames */

/* CRC-16/CDMA2000: poly 0xC867, init 0xFFFF, no reflection, no xorout (formats/crc16.py). */
/* Slicing by 8: crc_tables[k][b] is the CRC register after byte b and then k zero bytes, so
 * eight bytes cost eight independent lookups instead of a chain of eight. */
static uint16_t crc_tables[8][256];
static int crc_ready = 0;

static void
crc_init(void)
{
    for (int byte = 0; byte < 256; byte++) {
        uint16_t crc = (uint16_t)(byte << 8);
        for (int bit = 0; bit < 8; bit++)
            crc = (crc & 0x8000) ? (uint16_t)((crc << 1) ^ 0xC867) : (uint16_t)(crc << 1);
        crc_tables[0][byte] = crc;
    }
    for (int k = 1; k < 8; k++)
        for (int byte = 0; byte < 256; byte++) {
            uint16_t prev = crc_tables[k - 1][byte];
            crc_tables[k][byte] = (uint16_t)((prev << 8) ^ crc_tables[0][prev >> 8]);
        }
    crc_ready = 1;
}

static inline uint16_t
crc16(const unsigned char *p, Py_ssize_t n, uint16_t crc)
{
    Py_ssize_t i = 0;
    for (; i + 8 <= n; i += 8) {
        crc = crc_tables[7][p[i] ^ (crc >> 8)] ^ crc_tables[6][p[i + 1] ^ (crc & 0xFF)] ^
              crc_tables[5][p[i + 2]] ^ crc_tables[4][p[i + 3]] ^ crc_tables[3][p[i + 4]] ^
              crc_tables[2][p[i + 5]] ^ crc_tables[1][p[i + 6]] ^ crc_tables[0][p[i + 7]];
    }
    for (; i < n; i++)
        crc = (uint16_t)((crc << 8) ^ crc_tables[0][(crc >> 8) ^ p[i]]);
    return crc;
}

/* crc16(data, crc=0xFFFF): exposed for the tests (the same values as formats/crc16.py). */
static PyObject *
py_crc16(PyObject *self, PyObject *args)
{
    Py_buffer view;
    unsigned int crc = 0xFFFF;
    if (!PyArg_ParseTuple(args, "y*|I", &view, &crc))
        return NULL;
    if (!crc_ready)
        crc_init();
    uint16_t value = crc16(view.buf, view.len, (uint16_t)crc);
    PyBuffer_Release(&view);
    return PyLong_FromLong(value);
}

static inline uint64_t
be64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

static inline uint32_t
be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

#define MAX_TIMESTAMP 253402300799999ULL /* 9999-12-31T23:59:59.999 */

/* ss_scan(buf, i, lim, limit, out, verify) -> (i, frame_start, ended, stopped)
 *
 * The frames of `buf` from index `i` that end before index `lim` (the next beacon offset or
 * the end of the data), at most `limit` of them, appended to `out` as Message objects: the C
 * twin of SsDecoder._scan. `verify`: check each frame's 0x0D trailer, timestamp range and
 * CRC. At a frame that fails a check or has an invalid key it stops (`stopped` true, `i` at
 * that frame) so that the pure scan can name the damage. `frame_start` is the index of the
 * last frame decoded (-1: none); `ended` is true after the EOS frame.
 */
static PyObject *
ss_scan(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 6 || !PyBytes_Check(args[0]) || !PyList_Check(args[4])) {
        PyErr_SetString(PyExc_TypeError, "ss_scan(bytes, i, lim, limit, list, verify)");
        return NULL;
    }
    if (!configured(1))
        return NULL;
    const unsigned char *buf = (const unsigned char *)PyBytes_AS_STRING(args[0]);
    Py_ssize_t size_of_buf = PyBytes_GET_SIZE(args[0]);
    Py_ssize_t i = PyLong_AsSsize_t(args[1]);
    Py_ssize_t lim = PyLong_AsSsize_t(args[2]);
    Py_ssize_t limit = PyLong_AsSsize_t(args[3]);
    if (PyErr_Occurred())
        return NULL;
    PyObject *out = args[4];
    int verify = PyObject_IsTrue(args[5]);
    if (lim > size_of_buf)
        lim = size_of_buf;
    if (i < 0)
        i = lim;
    Py_ssize_t frame_start = -1, n = 0;
    int ended = 0, stopped = 0;
    while (n < limit && i < lim) {
        Py_ssize_t klen = buf[i];
        Py_ssize_t h = i + 1 + klen;
        if (h + 28 > lim)
            break;
        uint64_t shard = be64(buf + h), seq = be64(buf + h + 8), ts = be64(buf + h + 16);
        Py_ssize_t size = be32(buf + h + 24);
        Py_ssize_t ps = h + 28, pe = ps + size;
        if (pe + 3 > lim)
            break;
        const unsigned char *key = buf + i + 1;
        int key_ok = klen >= 1 && klen <= 249;
        for (Py_ssize_t k = 0; key_ok && k < klen; k++)
            key_ok = KEY_CHAR[key[k]];
        if (!key_ok) {
            stopped = 1;
            break;
        }
        if (verify) {
            uint16_t stored = (uint16_t)(buf[pe] << 8 | buf[pe + 1]);
            if (buf[pe + 2] != 13 || ts > MAX_TIMESTAMP || crc16(buf + ps, size, 0xFFFF) != stored) {
                stopped = 1;
                break;
            }
        }
        KeySlot *slot = key_slot(key, klen);
        if (slot == NULL)
            return NULL;
        PyObject *message = msg_type->tp_alloc(msg_type, 0);
        if (message == NULL)
            return NULL;
        Py_INCREF(slot->str);
        set_slot(message, off_stream_key, slot->str);
        set_slot(message, off_shard, PyLong_FromUnsignedLongLong(shard));
        set_slot(message, off_seq, PyLong_FromUnsignedLongLong(seq));
        set_slot(message, off_ts, PyLong_FromUnsignedLongLong(ts));
        set_slot(message, off_payload, PyBytes_FromStringAndSize((const char *)buf + ps, size));
        set_slot(message, off_key, Py_NewRef(Py_None));
        set_slot(message, off_headers, PyTuple_New(0));
        set_slot(message, off_line, Py_NewRef(Py_None));
        if (!get_slot(message, off_shard) || !get_slot(message, off_seq) ||
            !get_slot(message, off_ts) || !get_slot(message, off_payload) ||
            !get_slot(message, off_headers)) {
            Py_DECREF(message);
            return NULL;
        }
        int status = PyList_Append(out, message);
        Py_DECREF(message);
        if (status < 0)
            return NULL;
        n++;
        frame_start = i;
        i = pe + 3;
        if (klen == 21 && size == 3 && memcmp(key, "SEA_STREAMER_INTERNAL", 21) == 0 &&
            memcmp(buf + ps, "EOS", 3) == 0) {
            ended = 1;
            break;
        }
    }
    return Py_BuildValue("(nnOO)", i, frame_start, ended ? Py_True : Py_False,
                         stopped ? Py_True : Py_False);
}

/* ss_encode(messages, start, key, position, interval, streams, StreamState)
 *     -> (bytes, next, position, new_streams)
 *
 * The C twin of SsEncoder.encode for Message objects: frames appended back to back from
 * messages[start], each stream's StreamState (seq, timestamp, running CRC) updated as the pure
 * loop does. It stops before a frame that would reach the next beacon offset (the pure encoder
 * splices it and writes the beacon) and before anything the pure encoder must judge (an
 * invalid key, a number that does not fit, a time past 9999, a payload that is not bytes):
 * `next` is then that message's index. `new_streams`: a StreamState was created (the beacon
 * order must be rebuilt).
 */
typedef struct {
    PyObject *key;   /* str, strong */
    uint64_t shard;
    PyObject *state; /* StreamState, strong */
    uint64_t seq, ts;
    uint16_t running;
} EncState;

static int
enc_flush(EncState *t, int n)
{
    int status = 0;
    for (int k = 0; k < n; k++) {
        EncState *e = &t[k];
        if (status == 0) {
            PyObject *seq = PyLong_FromUnsignedLongLong(e->seq);
            PyObject *ts = PyLong_FromUnsignedLongLong(e->ts);
            PyObject *running = PyLong_FromLong(e->running);
            if (!seq || !ts || !running || PyObject_SetAttrString(e->state, "seq", seq) < 0 ||
                PyObject_SetAttrString(e->state, "timestamp", ts) < 0 ||
                PyObject_SetAttrString(e->state, "running", running) < 0)
                status = -1;
            Py_XDECREF(seq);
            Py_XDECREF(ts);
            Py_XDECREF(running);
        }
        Py_DECREF(e->key);
        Py_DECREF(e->state);
    }
    return status;
}

static int
attr_u64(PyObject *obj, const char *name, uint64_t *out)
{
    PyObject *value = PyObject_GetAttrString(obj, name);
    if (value == NULL)
        return -1;
    unsigned long long v = PyLong_Check(value) ? PyLong_AsUnsignedLongLong(value) : (unsigned long long)-1;
    Py_DECREF(value);
    if (PyErr_Occurred()) {
        PyErr_Clear();
        return 0; /* not representable: the pure encoder takes it */
    }
    *out = v;
    return 1;
}

#define ENC_STATES 64

static PyObject *
ss_encode(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 7 || !PyList_Check(args[0]) || !PyDict_Check(args[5])) {
        PyErr_SetString(PyExc_TypeError,
                        "ss_encode(list, start, key, position, interval, dict, StreamState)");
        return NULL;
    }
    if (!configured(1))
        return NULL;
    PyObject *messages = args[0], *forced = args[2] == Py_None ? NULL : args[2];
    PyObject *streams = args[5], *state_type = args[6];
    Py_ssize_t index = PyLong_AsSsize_t(args[1]);
    long long position = PyLong_AsLongLong(args[3]);
    long long interval = PyLong_AsLongLong(args[4]);
    if (PyErr_Occurred())
        return NULL;
    if (interval <= 0 || position < 0 || index < 0) {
        PyErr_SetString(PyExc_ValueError, "ss_encode(): bad position or interval");
        return NULL;
    }
    long long boundary = (position / interval + 1) * interval;
    Py_ssize_t count = PyList_GET_SIZE(messages);
    EncState states[ENC_STATES];
    int nstates = 0, new_streams = 0, failed = 0;
    Buf b = {NULL, 0, 0};
    for (; index < count; index++) {
        PyObject *m = PyList_GET_ITEM(messages, index);
        if (!Py_IS_TYPE(m, msg_type))
            break;
        PyObject *key = forced ? forced : get_slot(m, off_stream_key);
        PyObject *payload = get_slot(m, off_payload);
        PyObject *shard_o = get_slot(m, off_shard), *seq_o = get_slot(m, off_seq),
                 *ts_o = get_slot(m, off_ts);
        if (!key || !payload || !shard_o || !seq_o || !ts_o || !PyUnicode_Check(key) ||
            !PyUnicode_IS_ASCII(key) || !PyBytes_CheckExact(payload) || !PyLong_Check(shard_o) ||
            !PyLong_Check(seq_o) || !PyLong_Check(ts_o))
            break;
        Py_ssize_t klen = PyUnicode_GET_LENGTH(key);
        const unsigned char *ktext = PyUnicode_1BYTE_DATA(key);
        int key_ok = klen >= 1 && klen <= 249;
        for (Py_ssize_t k = 0; key_ok && k < klen; k++)
            key_ok = KEY_CHAR[ktext[k]];
        if (!key_ok)
            break;
        uint64_t shard = PyLong_AsUnsignedLongLong(shard_o);
        if (shard == (uint64_t)-1 && PyErr_Occurred())
            break;
        uint64_t seq = PyLong_AsUnsignedLongLong(seq_o);
        if (seq == (uint64_t)-1 && PyErr_Occurred())
            break;
        uint64_t ts = PyLong_AsUnsignedLongLong(ts_o);
        if ((ts == (uint64_t)-1 && PyErr_Occurred()) || ts > MAX_TIMESTAMP)
            break;
        Py_ssize_t size = PyBytes_GET_SIZE(payload);
        if ((uint64_t)size > 0xFFFFFFFFull)
            break;
        Py_ssize_t frame = 1 + klen + 28 + size + 3;
        if (position + frame >= boundary)
            break; /* this frame meets a beacon offset: the pure encoder splices it */
        /* the stream's state */
        EncState *e = NULL;
        for (int k = 0; k < nstates; k++)
            if (states[k].shard == shard &&
                (states[k].key == key || PyUnicode_Compare(states[k].key, key) == 0)) {
                e = &states[k];
                break;
            }
        if (e == NULL) {
            if (nstates == ENC_STATES) {
                if (enc_flush(states, nstates) < 0) {
                    nstates = 0;
                    failed = 1;
                    break;
                }
                nstates = 0;
            }
            PyObject *dict_key = Py_BuildValue("(OK)", key, (unsigned long long)shard);
            if (dict_key == NULL) {
                failed = 1;
                break;
            }
            PyObject *state = PyDict_GetItemWithError(streams, dict_key);
            if (state == NULL && PyErr_Occurred()) {
                Py_DECREF(dict_key);
                failed = 1;
                break;
            }
            uint64_t sseq = seq, sts = ts, srunning = 0xFFFF;
            if (state == NULL) {
                state = PyObject_CallFunction(state_type, "OO", seq_o, ts_o);
                if (state == NULL || PyDict_SetItem(streams, dict_key, state) < 0) {
                    Py_XDECREF(state);
                    Py_DECREF(dict_key);
                    failed = 1;
                    break;
                }
                new_streams = 1;
            }
            else {
                Py_INCREF(state);
                int ok = attr_u64(state, "seq", &sseq);
                if (ok > 0)
                    ok = attr_u64(state, "timestamp", &sts);
                if (ok > 0)
                    ok = attr_u64(state, "running", &srunning);
                if (ok <= 0 || srunning > 0xFFFF) {
                    Py_DECREF(state);
                    Py_DECREF(dict_key);
                    if (ok < 0)
                        failed = 1;
                    break;
                }
            }
            Py_DECREF(dict_key);
            e = &states[nstates++];
            e->key = Py_NewRef(key);
            e->shard = shard;
            e->state = state; /* the reference taken above */
            e->seq = sseq;
            e->ts = sts;
            e->running = (uint16_t)srunning;
        }
        const unsigned char *data = (const unsigned char *)PyBytes_AS_STRING(payload);
        uint16_t crc = size ? crc16(data, size, 0xFFFF) : 0xFFFF;
        if (seq > e->seq)
            e->seq = seq;
        if (ts > e->ts)
            e->ts = ts;
        unsigned char word[2] = {(unsigned char)(crc >> 8), (unsigned char)(crc & 0xFF)};
        e->running = crc16(word, 2, e->running);
        if (buf_reserve(&b, frame) < 0) {
            failed = 1;
            break;
        }
        unsigned char *out = (unsigned char *)b.data + b.len;
        out[0] = (unsigned char)klen;
        memcpy(out + 1, ktext, klen);
        unsigned char *h = out + 1 + klen;
        for (int k = 0; k < 8; k++) {
            h[k] = (unsigned char)(shard >> (56 - 8 * k));
            h[8 + k] = (unsigned char)(seq >> (56 - 8 * k));
            h[16 + k] = (unsigned char)(ts >> (56 - 8 * k));
        }
        h[24] = (unsigned char)(size >> 24);
        h[25] = (unsigned char)(size >> 16);
        h[26] = (unsigned char)(size >> 8);
        h[27] = (unsigned char)size;
        memcpy(h + 28, data, size);
        unsigned char *tail = h + 28 + size;
        tail[0] = word[0];
        tail[1] = word[1];
        tail[2] = 13;
        b.len += frame;
        position += frame;
    }
    PyObject *etype = NULL, *evalue = NULL, *etb = NULL;
    if (failed)
        PyErr_Fetch(&etype, &evalue, &etb);
    else
        PyErr_Clear(); /* a value the pure encoder must judge stopped the loop, nothing more */
    int flush_failed = enc_flush(states, nstates) < 0;
    if (failed || flush_failed) {
        PyMem_Free(b.data);
        if (failed)
            PyErr_Restore(etype, evalue, etb);
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_RuntimeError, "ss_encode() failed");
        return NULL;
    }
    PyObject *bytes = PyBytes_FromStringAndSize(b.data ? b.data : "", b.len);
    PyMem_Free(b.data);
    if (bytes == NULL)
        return NULL;
    return Py_BuildValue("(NnLO)", bytes, index, position, new_streams ? Py_True : Py_False);
}

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
static PyObject *
kafka_records(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 5 || !PyList_Check(args[0]) || !PyList_Check(args[4]) ||
        (args[3] != Py_None && !PyDict_Check(args[3]))) {
        PyErr_SetString(PyExc_TypeError, "kafka_records(list, i, topic, last, list)");
        return NULL;
    }
    if (!configured(0))
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
        obj = msg_type->tp_alloc(msg_type, 0);
        if (obj == NULL)
            goto fail_record;
        set_slot(obj, off_stream_key, stream);
        set_slot(obj, off_shard, part);
        set_slot(obj, off_seq, offset);
        set_slot(obj, off_ts, ts);
        set_slot(obj, off_payload, value);
        set_slot(obj, off_key, key);
        set_slot(obj, off_headers, Py_NewRef(empty));
        set_slot(obj, off_line, Py_NewRef(Py_None));
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

#include "_speedups_redis.c" /* the Redis codec: its own file, same module */

/* ---------------------------------------------------------------- module */

static PyMethodDef methods[] = {
    {"configure", configure, METH_VARARGS, "configure(Message, broadcast_key)"},
    {"scan", (PyCFunction)(void (*)(void))scan, METH_FASTCALL,
     "scan(chunk, pos, number, now, no_meta, counters, out, flags, clock, sink, keep, out_key, "
     "left_out)"},
    {"encode", (PyCFunction)(void (*)(void))encode, METH_FASTCALL,
     "encode(messages, stream_key[, other]) -> bytes | None"},
    {"crc16", py_crc16, METH_VARARGS, "crc16(data, crc=0xFFFF) -> CRC-16/CDMA2000"},
    {"ss_encode", (PyCFunction)(void (*)(void))ss_encode, METH_FASTCALL,
     "ss_encode(messages, start, key, position, interval, streams, StreamState)"},
    {"ss_scan", (PyCFunction)(void (*)(void))ss_scan, METH_FASTCALL,
     "ss_scan(buf, i, lim, limit, out, verify) -> (i, frame_start, ended, stopped)"},
    {"kafka_records", (PyCFunction)(void (*)(void))kafka_records, METH_FASTCALL,
     "kafka_records(raw, i, topic, last, out) -> index of the first record left to Python"},
    REDIS_METHODS
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
    return PyModule_Create(&module);
}
