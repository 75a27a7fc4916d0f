/* Text helpers of the compiled codec, shared by its line and .ss loops: the strict UTF-8
 * check, the stream-key characters, the calendar (timestamp text <-> epoch milliseconds), the
 * output buffer's growth and the cache of key strings. See _speedups_module.c for the whole.
 */
#include "_speedups.h"

/* ---------------------------------------------------------------- text helpers */

/* Strict UTF-8 (what bytes.decode("utf-8") accepts): no overlongs, surrogates or > U+10FFFF. */
int
sk_valid_utf8(const unsigned char *s, Py_ssize_t n)
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

const unsigned char sk_key_char[256] = {
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

int
sk_parse_seconds(const unsigned char *p, int64_t *out)
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

/* ---------------------------------------------------------------- output buffer */

int
sk_buf_reserve(Buf *b, Py_ssize_t extra)
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

/* "[YYYY-MM-DDTHH:MM:SS.fff" of epoch milliseconds; 0 when the year is outside 1..9999 (the
 * pure encoder's job then). */
int
sk_put_time(Buf *b, int64_t ms)
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
static KeySlot key_cache[KEY_SLOTS];

KeySlot *
sk_key_slot(const unsigned char *p, Py_ssize_t n)
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
