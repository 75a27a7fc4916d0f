/* librdkafka, found in the process: the Kafka producer's hot path on librdkafka's C API, without
 * confluent-kafka's Python layer in between.
 *
 * Why: through confluent-kafka, one produce() costs ~2,700 instructions of which librdkafka's
 * own work is ~1,650; the rest is parsing eight Python arguments, and confluent-kafka serves a
 * delivery report for every message through Python even when only failures are wanted (it
 * implements delivery.report.only.error itself), ~1,000 more. kcat -P drives the same library
 * directly, and so does this.
 *
 * Which library: the very copy confluent-kafka loaded (its wheel bundles one), found among the
 * process's loaded objects with dl_iterate_phdr and opened with RTLD_NOLOAD, its functions
 * looked up with dlsym. Nothing is linked at build time and no header is needed: the few
 * declarations in _speedups_librdkafka.h are librdkafka's public ABI (rdkafka.h), stable since 1.0.
 * When the library is not found (or is older than 1.6), librdkafka_version() raises ImportError
 * and the backend stays on confluent-kafka's Producer (backends/kafka/librdkafka.py).
 *
 * The producer object itself: _speedups_librdkafka_client.c (its life, delivery failures, log
 * lines, metadata) and _speedups_librdkafka_produce.c (producing).
 */
#include "_speedups_librdkafka.h" /* Python.h first: it defines _GNU_SOURCE (dl_iterate_phdr) */

#include <stdio.h>
#if defined(__linux__)
#include <dlfcn.h>
#include <link.h>
#define SK_FIND_LOADED 1 /* elsewhere the producer stays on confluent-kafka's client */
#endif

struct sk_rdk_api sk_rdk;

static int rdk_state = 0; /* 0: not looked for yet, 1: loaded, -1: not usable (rdk_why) */
static char rdk_why[1200]; /* room for the path and a reason */
static char rdk_path[1024];

#ifdef SK_FIND_LOADED
static int
find_librdkafka(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    (void)data;
    const char *name = info->dlpi_name;
    if (name == NULL)
        return 0;
    const char *base = strrchr(name, '/');
    base = base != NULL ? base + 1 : name;
    if (strncmp(base, "librdkafka", 10) != 0 || base[10] == '+')
        return 0; /* librdkafka++ is the C++ wrapper */
    snprintf(rdk_path, sizeof rdk_path, "%s", name);
    return 1;
}

#endif

int
sk_rdk_load(void)
{
#ifndef SK_FIND_LOADED
    if (rdk_state == 0) {
        rdk_state = -1;
        snprintf(rdk_why, sizeof rdk_why, "finding the loaded librdkafka is done on Linux only");
    }
#else
    if (rdk_state == 0) {
        rdk_state = -1;
        void *lib = NULL;
        rdk_path[0] = '\0';
        dl_iterate_phdr(find_librdkafka, NULL);
        if (rdk_path[0] == '\0')
            snprintf(rdk_why, sizeof rdk_why, "librdkafka is not loaded in this process");
        else if ((lib = dlopen(rdk_path, RTLD_NOW | RTLD_NOLOAD)) == NULL)
            snprintf(rdk_why, sizeof rdk_why, "cannot open %s: %s", rdk_path, dlerror());
        else {
            const char *missing = NULL;
#define RDK_SYMBOL(field, symbol)                                   \
    if (missing == NULL &&                                          \
        (*(void **)&sk_rdk.field = dlsym(lib, "rd_kafka_" symbol)) == NULL) \
        missing = "rd_kafka_" symbol;
            RDK_SYMBOL(version, "version")
            RDK_SYMBOL(conf_new, "conf_new")
            RDK_SYMBOL(conf_set, "conf_set")
            RDK_SYMBOL(conf_destroy, "conf_destroy")
            RDK_SYMBOL(conf_set_dr_msg_cb, "conf_set_dr_msg_cb")
            RDK_SYMBOL(conf_set_log_cb, "conf_set_log_cb")
            RDK_SYMBOL(conf_set_opaque, "conf_set_opaque")
            RDK_SYMBOL(new_, "new")
            RDK_SYMBOL(destroy, "destroy")
            RDK_SYMBOL(name, "name")
            RDK_SYMBOL(opaque, "opaque")
            RDK_SYMBOL(set_log_queue, "set_log_queue")
            RDK_SYMBOL(topic_new, "topic_new")
            RDK_SYMBOL(topic_destroy, "topic_destroy")
            RDK_SYMBOL(topic_name, "topic_name")
            RDK_SYMBOL(last_error, "last_error")
            RDK_SYMBOL(producev, "producev")
            RDK_SYMBOL(poll, "poll")
            RDK_SYMBOL(flush, "flush")
            RDK_SYMBOL(outq_len, "outq_len")
            RDK_SYMBOL(err2str, "err2str")
            RDK_SYMBOL(headers_new, "headers_new")
            RDK_SYMBOL(headers_destroy, "headers_destroy")
            RDK_SYMBOL(header_add, "header_add")
            RDK_SYMBOL(metadata, "metadata")
            RDK_SYMBOL(metadata_destroy, "metadata_destroy")
#undef RDK_SYMBOL
            if (missing != NULL)
                snprintf(rdk_why, sizeof rdk_why, "%s has no %s", rdk_path, missing);
            else if (sk_rdk.version() < RDK_MIN_VERSION)
                snprintf(rdk_why, sizeof rdk_why, "%s is librdkafka %#x, older than 1.6",
                         rdk_path, (unsigned)sk_rdk.version());
            else
                rdk_state = 1; /* the handle stays open for the life of the process */
        }
    }
#endif
    if (rdk_state < 0) {
        PyErr_SetString(PyExc_ImportError, rdk_why);
        return 0;
    }
    return 1;
}

/* librdkafka_version() -> (version as an int, path of the library): ImportError when the
 * producer cannot be used. */
PyObject *
sk_librdkafka_version(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    if (!sk_rdk_load())
        return NULL;
    return Py_BuildValue("(is)", sk_rdk.version(), rdk_path);
}
