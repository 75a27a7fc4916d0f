/* librdkafka's C API as the Kafka producer of the compiled codec uses it (declarations shared
 * by _speedups_librdkafka*.c; see _speedups_librdkafka.c for why and how it is found).
 *
 * These are librdkafka's public ABI, as rdkafka.h declares it, written out here because nothing
 * is linked at build time and rdkafka.h is not installed with confluent-kafka's wheel.
 */
#ifndef STREAMKIT_SPEEDUPS_LIBRDKAFKA_H
#define STREAMKIT_SPEEDUPS_LIBRDKAFKA_H

#include "_speedups.h"
#include <pythread.h>

#if defined(__GNUC__)
#pragma GCC visibility push(hidden)
#endif

typedef struct rd_kafka_s rd_kafka_t;
typedef struct rd_kafka_topic_s rd_kafka_topic_t;
typedef struct rd_kafka_conf_s rd_kafka_conf_t;
typedef struct rd_kafka_headers_s rd_kafka_headers_t;

typedef struct { /* rd_kafka_message_t */
    int err;
    rd_kafka_topic_t *rkt;
    int32_t partition;
    void *payload;
    size_t len;
    void *key;
    size_t key_len;
    int64_t offset;
    void *private_;
} rdk_message;

typedef struct { /* rd_kafka_metadata_partition_t */
    int32_t id;
    int err;
    int32_t leader;
    int replica_cnt;
    int32_t *replicas;
    int isr_cnt;
    int32_t *isrs;
} rdk_partition_metadata;

typedef struct { /* rd_kafka_metadata_topic_t */
    char *topic;
    int partition_cnt;
    rdk_partition_metadata *partitions;
    int err;
} rdk_topic_metadata;

typedef struct { /* rd_kafka_metadata_t */
    int broker_cnt;
    void *brokers;
    int topic_cnt;
    rdk_topic_metadata *topics;
    int32_t orig_broker_id;
    char *orig_broker_name;
} rdk_metadata;

enum {
    RDK_PRODUCER = 0,
    RDK_CONF_OK = 0,
    RDK_PARTITION_UA = -1,
    RDK_MSG_F_COPY = 0x2,
    RDK_ERR_QUEUE_FULL = -184,
    RDK_ERR_UNKNOWN_TOPIC = -188,
    RDK_ERR_UNKNOWN_TOPIC_OR_PART = 3,
    /* rd_kafka_vtype_t, the tags of rd_kafka_producev()'s arguments */
    V_END = 0,
    V_RKT = 2,
    V_PARTITION = 3,
    V_VALUE = 4,
    V_KEY = 5,
    V_MSGFLAGS = 7,
    V_TIMESTAMP = 8,
    V_HEADERS = 10,
};

#define RDK_MIN_VERSION 0x010600ff /* 1.6.0: every function below, headers included */

typedef void (*rdk_dr_cb)(rd_kafka_t *, const rdk_message *, void *);
typedef void (*rdk_log_cb)(const rd_kafka_t *, int, const char *, const char *);

/* The functions, looked up once by sk_rdk_load() (_speedups_librdkafka.c). */
struct sk_rdk_api {
    int (*version)(void);
    rd_kafka_conf_t *(*conf_new)(void);
    int (*conf_set)(rd_kafka_conf_t *, const char *, const char *, char *, size_t);
    void (*conf_destroy)(rd_kafka_conf_t *);
    void (*conf_set_dr_msg_cb)(rd_kafka_conf_t *, rdk_dr_cb);
    void (*conf_set_log_cb)(rd_kafka_conf_t *, rdk_log_cb);
    void (*conf_set_opaque)(rd_kafka_conf_t *, void *);
    rd_kafka_t *(*new_)(int, rd_kafka_conf_t *, char *, size_t);
    void (*destroy)(rd_kafka_t *);
    const char *(*name)(const rd_kafka_t *);
    void *(*opaque)(const rd_kafka_t *);
    int (*set_log_queue)(rd_kafka_t *, void *);
    rd_kafka_topic_t *(*topic_new)(rd_kafka_t *, const char *, void *);
    void (*topic_destroy)(rd_kafka_topic_t *);
    const char *(*topic_name)(const rd_kafka_topic_t *);
    int (*last_error)(void);
    int (*producev)(rd_kafka_t *, ...);
    int (*poll)(rd_kafka_t *, int);
    int (*flush)(rd_kafka_t *, int);
    int (*outq_len)(rd_kafka_t *);
    const char *(*err2str)(int);
    rd_kafka_headers_t *(*headers_new)(size_t);
    void (*headers_destroy)(rd_kafka_headers_t *);
    /* ssize_t in rdkafka.h: Py_ssize_t is that type where the loader works (Linux) */
    int (*header_add)(rd_kafka_headers_t *, const char *, Py_ssize_t, const void *, Py_ssize_t);
    int (*metadata)(rd_kafka_t *, int, rd_kafka_topic_t *, const rdk_metadata **, int);
    void (*metadata_destroy)(const rdk_metadata *);
};
extern struct sk_rdk_api sk_rdk;

/* 1 when sk_rdk's functions are at hand, else 0 with ImportError set. */
int sk_rdk_load(void);

/* ---------------------------------------------------------------- the producer object
 * (_speedups_librdkafka_client.c: its life, polling, failures, metadata;
 *  _speedups_librdkafka_produce.c: produce() and produce_messages()) */

#define KEPT_FAILURES 3
#define FAILURE_TEXT 400

typedef struct {
    PyObject_HEAD
    rd_kafka_t *rk;
    PyObject *topics;     /* dict: topic name -> int (its rd_kafka_topic_t *) */
    PyObject *log;        /* called as log(level, "%s [%s] %s", facility, client, text), or None */
    PyObject *make_error; /* make_error(code, text) -> the exception a refused record raises */
    /* Failed deliveries, written by dr_msg_cb (no GIL), read and reset by failures(). */
    PyThread_type_lock lock; /* Python's portable lock: taken without the GIL too */
    /* Held by whatever runs librdkafka without the GIL (poll, flush, metadata, destroy), so
     * that close() in one thread never destroys the client under a poll() in another. */
    PyThread_type_lock busy;
    long long failed;
    int kept;
    char failures[KEPT_FAILURES][FAILURE_TEXT];
    char unknown_topic[256];
} SkProducer;


int sk_producer_open(SkProducer *self);
rd_kafka_topic_t *sk_topic_handle(SkProducer *self, PyObject *topic);
PyObject *sk_producer_error(SkProducer *self, int err); /* make_error(err, text), new ref */
PyObject *sk_producer_produce(SkProducer *self, PyObject *const *args, Py_ssize_t nargs);
PyObject *sk_producer_produce_messages(SkProducer *self, PyObject *const *args, Py_ssize_t nargs);
PyObject *sk_producer_produce_spans(SkProducer *self, PyObject *const *args, Py_ssize_t nargs);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif
