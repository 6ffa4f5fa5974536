/* PostgreSQL writes of cc-gateway: see flush.h. */
#include "flush.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../relaystats/schema_version.h"
#include "log.h"
#include "sys.h"

#define COPY_CHUNK (256 * 1024)

struct flush_pg {
    char *conninfo;
    char *gateway;
    char *source;
    PGconn *conn;
    int lose_commit_acks;     /* test hook: CCGW_TEST_LOSE_COMMIT_ACK */
    int in_commit;            /* a COMMIT is waiting for its answer */
    char commit_warning[256]; /* a WARNING the server sent during that COMMIT */
    int no_primary;           /* last connect: servers answered, none writable */
};

/* Temp tables live as long as the connection; ON COMMIT DELETE ROWS empties
 * them after each transaction (a rollback discards their rows too). */
static const char SQL_TEMP_TABLES[] =
    "CREATE TEMP TABLE flush_non_relays (reason text, bucket bigint, requests bigint)"
    " ON COMMIT DELETE ROWS;"
    "CREATE TEMP TABLE flush_events (ts_ms bigint, severity smallint, message text, seq bigint)"
    " ON COMMIT DELETE ROWS";

/* A later flush of this instance in the ledger means the journal is older
 * than the database (a restored or copied data_dir): its seqs would be
 * found "already applied" and its counts dropped, or counted twice. */
static const char SQL_LEDGER_AHEAD[] = "SELECT max(flush_seq) FROM relay_flushes"
                                       " WHERE gateway = $1 AND instance = $2 AND flush_seq > $3";

/* A retry after a lost answer carries the same deltas as the row found;
 * other totals mean another journal used this (instance, seq). */
static const char SQL_LEDGER_SAME[] =
    "SELECT rows = $4::integer AND relays = $5::bigint AND non_relays = $6::bigint"
    " FROM relay_flushes WHERE gateway = $1 AND instance = $2 AND flush_seq = $3";

static const char SQL_LEDGER[] =
    "INSERT INTO relay_flushes (gateway, instance, flush_seq, source, rows, relays, non_relays)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING";

/* The relay rows go straight into relay_deltas (append-only, no index):
 * the flush's only write that grows with its rows. */
#define COPY_DELTAS "relay_deltas (gateway, chain, account, bucket, relays)"

/* Flushes of one gateway (its sources: http0, http1, ...) take this
 * transaction lock, so that the ledger checks of one see the other's
 * committed rows. Folds take another lock (see relay_deltas_fold in
 * relaystats/schema.c): a flush never waits for a fold. */
static const char SQL_LOCK[] = "SELECT pg_advisory_xact_lock(hashtextextended($1, 1668507511))";

/* Moves this gateway's committed deltas into relay_counts and its rollups,
 * in its own transaction (relaystats/schema.c, migration 4). */
static const char SQL_FOLD[] = "SELECT relay_deltas_fold($1)";

static const char SQL_NON_RELAYS[] =
    "INSERT INTO non_relay_counts AS t (gateway, reason, bucket_start, requests)"
    " SELECT $1, reason, to_timestamp(bucket), sum(requests) FROM flush_non_relays"
    " GROUP BY reason, bucket"
    " ON CONFLICT (gateway, reason, bucket_start)"
    " DO UPDATE SET requests = t.requests + EXCLUDED.requests";

static const char SQL_EVENTS[] =
    "INSERT INTO gateway_events (gateway, source, ts, severity, message, origin, origin_seq)"
    " SELECT $1, $2, to_timestamp(ts_ms / 1000.0), severity, message, $3, seq FROM flush_events"
    " ON CONFLICT (origin, origin_seq) DO NOTHING";

/* libpq messages end with a newline; strip it for one-line logs. */
static void conn_err(PGconn *conn, const char *what, char *err, size_t errlen)
{
    const char *m = conn ? PQerrorMessage(conn) : "out of memory";
    size_t n = strlen(m);
    while (n && (m[n - 1] == '\n' || m[n - 1] == ' '))
        n--;
    sys_set_err(err, errlen, "postgres: %s: %.*s", what, (int)n, m);
}

flush_pg_t *flush_pg_new(const char *conninfo, const char *gateway, const char *source)
{
    flush_pg_t *f = calloc(1, sizeof(*f));
    if (!f)
        return NULL;
    f->conninfo = strdup(conninfo);
    f->gateway = strdup(gateway ? gateway : "");
    f->source = strdup(source ? source : "");
    if (!f->conninfo || !f->gateway || !f->source) {
        flush_pg_free(f);
        return NULL;
    }
    const char *hook = getenv("CCGW_TEST_LOSE_COMMIT_ACK");
    if (hook)
        f->lose_commit_acks = atoi(hook);
    return f;
}

/* A WARNING during COMMIT: with synchronous replication, "canceling wait for
 * synchronous replication" (a cancel or a terminate while the commit waited
 * for the standby) comes with a successful COMMIT, yet the transaction may be
 * on the primary alone. That is no acknowledgement: the flush is reported
 * failed, and its retry confirms it (see confirm_replicated). */
static void notice_receiver(void *arg, const PGresult *r)
{
    flush_pg_t *f = arg;
    const char *sev = PQresultErrorField(r, PG_DIAG_SEVERITY_NONLOCALIZED);
    if (f->in_commit && !f->commit_warning[0] && sev && strcmp(sev, "WARNING") == 0) {
        const char *m = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
        snprintf(f->commit_warning, sizeof(f->commit_warning), "%s", m ? m : "WARNING");
    }
}

/* libpq's words when every host answered but none takes writes (a failover
 * under way: the old primary gone or demoted, no standby promoted yet). */
static int says_no_primary(const char *msg)
{
    return strstr(msg, "session is read-only") || strstr(msg, "server is in hot standby mode") ||
           strstr(msg, "the database system is in recovery mode") ||
           strstr(msg, "the database system is starting up") ||
           strstr(msg, "the database system is shutting down");
}

static void disconnect(flush_pg_t *f)
{
    if (f->conn)
        PQfinish(f->conn);
    f->conn = NULL;
}

void flush_pg_free(flush_pg_t *f)
{
    if (!f)
        return;
    disconnect(f);
    free(f->conninfo);
    free(f->gateway);
    free(f->source);
    free(f);
}

int flush_pg_connected(const flush_pg_t *f)
{
    return f && f->conn && PQstatus(f->conn) == CONNECTION_OK;
}

int flush_pg_set_gateway(flush_pg_t *f, const char *gateway)
{
    char *g = strdup(gateway);
    if (!g)
        return -1;
    free(f->gateway);
    f->gateway = g;
    return 0;
}

int flush_pg_no_primary(const flush_pg_t *f)
{
    return f && f->no_primary;
}

int flush_schema_check(PGconn *conn, int *version, char *err, size_t errlen)
{
    *version = 0;
    PGresult *r = PQexec(conn, SCHEMA_VERSION_QUERY);
    ExecStatusType st = PQresultStatus(r);
    const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    if (st == PGRES_FATAL_ERROR && state && strcmp(state, "42P01") == 0) {
        /* undefined_table: no migration ever ran */
        *version = 0;
    } else if (st != PGRES_TUPLES_OK || PQntuples(r) != 1) {
        conn_err(conn, "reading the schema version", err, errlen);
        PQclear(r);
        return -1;
    } else {
        *version = atoi(PQgetvalue(r, 0, 0));
    }
    PQclear(r);
    if (*version == SCHEMA_VERSION)
        return 0;
    if (*version < SCHEMA_VERSION)
        sys_set_err(err, errlen,
                    "database schema version %d is older than the version %d this build needs: "
                    "run `relaystats migrate --config F` first",
                    *version, SCHEMA_VERSION);
    else
        sys_set_err(err, errlen,
                    "database schema version %d is newer than the version %d this build knows: "
                    "upgrade cc-gateway",
                    *version, SCHEMA_VERSION);
    return FLUSH_SCHEMA_MISMATCH;
}

static int exec_ok(PGconn *conn, const char *sql, const char *what, char *err, size_t errlen)
{
    PGresult *r = PQexec(conn, sql);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok)
        conn_err(conn, what, err, errlen);
    PQclear(r);
    return ok ? 0 : -1;
}

int flush_pg_connect(flush_pg_t *f, char *err, size_t errlen)
{
    if (flush_pg_connected(f))
        return 0;
    disconnect(f);
    /* the URL/conninfo comes first; later keywords override it */
    const char *keys[] = {"dbname",          "connect_timeout",  "application_name",
                          "keepalives_idle", "tcp_user_timeout", NULL};
    const char *vals[] = {f->conninfo, "5", "cc-gateway", "10", "30000", NULL};
    f->conn = PQconnectdbParams(keys, vals, 1);
    if (!f->conn || PQstatus(f->conn) != CONNECTION_OK) {
        f->no_primary = f->conn && says_no_primary(PQerrorMessage(f->conn));
        conn_err(f->conn,
                 f->no_primary ? "connect: no writable primary (a failover under way?)" : "connect",
                 err, errlen);
        goto fail;
    }
    f->no_primary = 0;
    PQsetNoticeReceiver(f->conn, notice_receiver, f);
    int version = 0;
    int rc = flush_schema_check(f->conn, &version, err, errlen);
    if (rc != 0) {
        disconnect(f);
        return rc;
    }
    if (exec_ok(f->conn, "SET statement_timeout = '120s'", "set statement_timeout", err, errlen) <
            0 ||
        exec_ok(f->conn, SQL_TEMP_TABLES, "create temp tables", err, errlen) < 0)
        goto fail;
    return 0;
fail:
    disconnect(f);
    return -1;
}

/* Grow the COPY text buffer to hold `more` bytes (and a NUL) after *len.
 * 0 or -1. */
static int copy_reserve(char **buf, size_t *len, size_t *cap, size_t more)
{
    size_t need = *len + more + 1;
    if (need <= *cap)
        return 0;
    size_t ncap = *cap ? *cap : 4096;
    while (ncap < need)
        ncap *= 2;
    char *nb = realloc(*buf, ncap);
    if (!nb)
        return -1;
    *buf = nb;
    *cap = ncap;
    return 0;
}

/* Append `s` as one COPY text field, escaping what COPY's text format
 * treats specially; bytes that are not UTF-8 become '?' so that one bad
 * line cannot wedge a batch forever. */
static int copy_field(char **buf, size_t *len, size_t *cap, const char *s)
{
    if (copy_reserve(buf, len, cap, 2 * strlen(s)) < 0)
        return -1;
    char *o = *buf + *len;
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        int extra = *p < 0x80             ? 0
                    : (*p & 0xe0) == 0xc0 ? 1
                    : (*p & 0xf0) == 0xe0 ? 2
                    : (*p & 0xf8) == 0xf0 ? 3
                                          : -1;
        for (int k = 1; k <= extra; k++)
            if ((p[k] & 0xc0) != 0x80)
                extra = -1;
        if (extra < 0) {
            *o++ = '?';
            p++;
            continue;
        }
        if (extra > 0) {
            memcpy(o, p, (size_t)extra + 1);
            o += extra + 1;
            p += extra + 1;
            continue;
        }
        switch (*p) {
        case '\\':
            *o++ = '\\';
            *o++ = '\\';
            break;
        case '\n':
            *o++ = '\\';
            *o++ = 'n';
            break;
        case '\r':
            *o++ = '\\';
            *o++ = 'r';
            break;
        case '\t':
            *o++ = '\\';
            *o++ = 't';
            break;
        default:
            *o++ = (char)*p;
        }
        p++;
    }
    *len = (size_t)(o - *buf);
    return 0;
}

/* Append formatted text as is: numbers and the tab/newline separators. */
static int copy_raw(char **buf, size_t *len, size_t *cap, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int copy_raw(char **buf, size_t *len, size_t *cap, const char *fmt, ...)
{
    char tmp[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(tmp) || copy_reserve(buf, len, cap, (size_t)n) < 0)
        return -1;
    memcpy(*buf + *len, tmp, (size_t)n);
    *len += (size_t)n;
    return 0;
}

/* Send a COPY FROM STDIN: rows are produced by `row(i)` appending to the
 * buffer, sent in chunks. 0 or -1. */
struct copy_src {
    const struct counter_deltas *d;
    const struct flush_event *ev;
    size_t nev;
    int relays;          /* d: 1 relay rows, 0 non-relay rows */
    const char *gateway; /* relay rows: their first field */
};

static int copy_row(const struct copy_src *src, size_t i, char **buf, size_t *len, size_t *cap)
{
    if (src->ev) {
        const struct flush_event *e = &src->ev[i];
        return copy_raw(buf, len, cap, "%" PRId64 "\t%d\t", e->ts_ms, e->severity) < 0 ||
                       copy_field(buf, len, cap, e->message) < 0 ||
                       copy_raw(buf, len, cap, "\t%" PRId64 "\n", e->seq) < 0
                   ? -1
                   : 1;
    }
    const struct counter_delta *r = &src->d->rows[i];
    if (r->n == 0 || (src->relays != (r->chain != NULL)))
        return 0;
    if (r->chain)
        return copy_field(buf, len, cap, src->gateway) < 0 || copy_raw(buf, len, cap, "\t") < 0 ||
                       copy_field(buf, len, cap, r->chain) < 0 ||
                       copy_raw(buf, len, cap, "\t") < 0 ||
                       copy_field(buf, len, cap, r->account) < 0 ||
                       copy_raw(buf, len, cap, "\t%" PRId64 "\t%" PRId64 "\n", r->bucket, r->n) < 0
                   ? -1
                   : 1;
    const char *reason = counter_reason_name((enum non_relay_reason)r->reason);
    if (!reason)
        return 0;
    return copy_raw(buf, len, cap, "%s\t%" PRId64 "\t%" PRId64 "\n", reason, r->bucket, r->n);
}

static int copy_in(PGconn *conn, const char *table, const struct copy_src *src, size_t n, char *err,
                   size_t errlen)
{
    char sql[160], *buf = NULL;
    size_t len = 0, cap = 0;
    snprintf(sql, sizeof(sql), "COPY %s FROM STDIN", table);
    PGresult *r = PQexec(conn, sql);
    if (PQresultStatus(r) != PGRES_COPY_IN) {
        conn_err(conn, sql, err, errlen);
        PQclear(r);
        return -1;
    }
    PQclear(r);
    const char *fail_msg = NULL;
    for (size_t i = 0; i < n; i++) {
        if (copy_row(src, i, &buf, &len, &cap) < 0) {
            fail_msg = "out of memory";
            break;
        }
        if (len >= COPY_CHUNK || (i + 1 == n && len)) {
            if (PQputCopyData(conn, buf, (int)len) != 1) {
                fail_msg = "connection lost";
                break;
            }
            len = 0;
        }
    }
    free(buf);
    if (PQputCopyEnd(conn, fail_msg) != 1) {
        conn_err(conn, "COPY end", err, errlen);
        return -1;
    }
    int rc = 0;
    while ((r = PQgetResult(conn)) != NULL) {
        if (PQresultStatus(r) != PGRES_COMMAND_OK && rc == 0) {
            conn_err(conn, sql, err, errlen);
            rc = -1;
        }
        PQclear(r);
    }
    if (fail_msg && rc == 0) {
        sys_set_err(err, errlen, "postgres: %s: %s", sql, fail_msg);
        rc = -1;
    }
    return rc;
}

/* Run a parameterised statement (rows it returns are ignored); *affected
 * gets the row count. */
static int exec_params(PGconn *conn, const char *sql, int n, const char *const *vals,
                       const char *what, long *affected, char *err, size_t errlen)
{
    PGresult *r = PQexecParams(conn, sql, n, NULL, vals, NULL, NULL, 0);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
    if (!ok)
        conn_err(conn, what, err, errlen);
    else if (affected)
        *affected = atol(PQcmdTuples(r));
    PQclear(r);
    return ok ? 0 : -1;
}

/* COMMIT, acknowledged only when PostgreSQL says it is durable as configured:
 * with a synchronous standby, on the standby too. The COMMIT itself has no
 * statement_timeout: a cancelled wait for the standby returns success with a
 * WARNING, and so would the timeout; instead the wait lasts until the standby
 * answers or the connection breaks (keepalives, tcp_user_timeout), and a
 * WARNING makes it a failure whose retry asks the ledger.
 *
 * commit() adds the test hook: send COMMIT, wait until the server answered
 * (so it did commit), then drop the connection unread: the answer is lost. */
static int commit_checked(flush_pg_t *f, char *err, size_t errlen)
{
    if (exec_ok(f->conn, "SET LOCAL statement_timeout = 0", "SET LOCAL statement_timeout", err,
                errlen) < 0)
        return -1;
    f->in_commit = 1;
    f->commit_warning[0] = '\0';
    int rc = exec_ok(f->conn, "COMMIT", "COMMIT", err, errlen);
    f->in_commit = 0;
    if (rc == 0 && f->commit_warning[0]) {
        sys_set_err(
            err, errlen,
            "postgres: COMMIT answered with a warning, not counted as acknowledged (retried): "
            "%s",
            f->commit_warning);
        return -1;
    }
    return rc;
}

static int commit(flush_pg_t *f, char *err, size_t errlen)
{
    if (f->lose_commit_acks > 0) {
        f->lose_commit_acks--;
        if (PQsendQuery(f->conn, "COMMIT") != 1) {
            conn_err(f->conn, "COMMIT", err, errlen);
            return -1;
        }
        struct pollfd pfd = {.fd = PQsocket(f->conn), .events = POLLIN};
        poll(&pfd, 1, 10000);
        sys_set_err(err, errlen, "postgres: connection lost after COMMIT was sent (test hook)");
        return -1;
    }
    return commit_checked(f, err, errlen);
}

/* The ledger already has this flush: an earlier COMMIT whose answer was lost
 * (or came with a warning). It may be on this server alone, not yet on the
 * synchronous standby. A transaction with an xid commits after it in the WAL,
 * and its COMMIT returns when the standby has the WAL up to there: then the
 * earlier flush is replicated too. Without synchronous replication this
 * costs one xid and waits for nothing. */
static int confirm_replicated(flush_pg_t *f, char *err, size_t errlen)
{
    PGresult *r = PQexec(f->conn, "SELECT pg_current_xact_id()");
    int ok = PQresultStatus(r) == PGRES_TUPLES_OK;
    if (!ok)
        conn_err(f->conn, "pg_current_xact_id", err, errlen);
    PQclear(r);
    if (!ok)
        return -1;
    return commit(f, err, errlen);
}

/* -1 with err when the ledger holds a flush of `instance` after `seq`. */
static int ledger_check(flush_pg_t *f, const char *instance, const char *sseq, char *err,
                        size_t errlen)
{
    const char *vals[] = {f->gateway, instance, sseq};
    PGresult *r = PQexecParams(f->conn, SQL_LEDGER_AHEAD, 3, NULL, vals, NULL, NULL, 0);
    int rc = 0;
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
        conn_err(f->conn, "reading relay_flushes", err, errlen);
        rc = -1;
    } else if (!PQgetisnull(r, 0, 0)) {
        sys_set_err(
            err, errlen,
            "relay_flushes has flush %s of instance %s, later than flush %s of the journal: "
            "the journal is older than the database (data_dir restored or copied?); not "
            "flushing, the counts stay in the journal",
            PQgetvalue(r, 0, 0), instance, sseq);
        rc = -1;
    }
    PQclear(r);
    return rc;
}

int flush_pg_apply(void *ctx, const char *instance, int64_t seq, const struct counter_deltas *d,
                   int *already_applied, char *err, size_t errlen)
{
    flush_pg_t *f = ctx;
    *already_applied = 0;
    if (flush_pg_connect(f, err, errlen) != 0)
        return -1;
    size_t rows = 0, relay_rows = 0;
    int64_t relays = 0, non_relays = 0;
    for (size_t i = 0; i < d->nrows; i++) {
        if (d->rows[i].n == 0)
            continue;
        rows++;
        if (d->rows[i].chain) {
            relays += d->rows[i].n;
            relay_rows++;
        } else {
            non_relays += d->rows[i].n;
        }
    }
    char sseq[24], srows[24], srelays[24], snon[24];
    snprintf(sseq, sizeof(sseq), "%" PRId64, seq);
    snprintf(srows, sizeof(srows), "%zu", rows);
    snprintf(srelays, sizeof(srelays), "%" PRId64, relays);
    snprintf(snon, sizeof(snon), "%" PRId64, non_relays);
    const char *ledger[] = {f->gateway, instance, sseq, f->source, srows, srelays, snon};
    const char *gw[] = {f->gateway};
    long inserted = 0;
    struct copy_src rel = {.d = d, .relays = 1, .gateway = f->gateway};
    struct copy_src non = {.d = d, .relays = 0};

    if (exec_ok(f->conn, "BEGIN", "BEGIN", err, errlen) < 0 ||
        exec_params(f->conn, SQL_LOCK, 1, gw, "lock the gateway's counts", NULL, err, errlen) < 0 ||
        ledger_check(f, instance, sseq, err, errlen) < 0 ||
        exec_params(f->conn, SQL_LEDGER, 7, ledger, "insert relay_flushes", &inserted, err,
                    errlen) < 0)
        goto fail;
    if (inserted == 0) {
        /* the ledger has it: an earlier attempt committed, its answer got lost */
        const char *same[] = {f->gateway, instance, sseq, srows, srelays, snon};
        PGresult *r = PQexecParams(f->conn, SQL_LEDGER_SAME, 6, NULL, same, NULL, NULL, 0);
        int ok = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;
        int match = ok && strcmp(PQgetvalue(r, 0, 0), "t") == 0;
        if (!ok)
            conn_err(f->conn, "reading relay_flushes", err, errlen);
        else if (!match)
            sys_set_err(err, errlen,
                        "relay_flushes has flush %s of instance %s with other totals than the "
                        "journal's: the journal is older than the database (data_dir restored or "
                        "copied?); not flushing, the counts stay in the journal",
                        sseq, instance);
        PQclear(r);
        if (!match || confirm_replicated(f, err, errlen) < 0)
            goto fail;
        *already_applied = 1;
        return 0;
    }
    if ((relay_rows && copy_in(f->conn, COPY_DELTAS, &rel, d->nrows, err, errlen) < 0) ||
        (rows > relay_rows &&
         (copy_in(f->conn, "flush_non_relays", &non, d->nrows, err, errlen) < 0 ||
          exec_params(f->conn, SQL_NON_RELAYS, 1, gw, "upsert non_relay_counts", NULL, err,
                      errlen) < 0)) ||
        commit(f, err, errlen) < 0)
        goto fail;
    return 0;
fail:
    /* the outcome of a COMMIT without an answer is unknown: the retry asks
     * the ledger; anything else was rolled back by the disconnect */
    disconnect(f);
    return -1;
}

int flush_pg_fold(flush_pg_t *f, int64_t *folded, char *err, size_t errlen)
{
    *folded = 0;
    if (flush_pg_connect(f, err, errlen) != 0)
        return -1;
    const char *gw[] = {f->gateway};
    /* one statement, its own transaction: a lost answer leaves the deltas
     * either all folded or all pending, both exact */
    PGresult *r = PQexecParams(f->conn, SQL_FOLD, 1, NULL, gw, NULL, NULL, 0);
    int ok = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;
    if (ok)
        *folded = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    else
        conn_err(f->conn, "fold relay_deltas", err, errlen);
    PQclear(r);
    if (!ok && PQstatus(f->conn) != CONNECTION_OK)
        disconnect(f);
    return ok ? 0 : -1;
}

int flush_pg_events(flush_pg_t *f, const char *origin, const struct flush_event *ev, size_t n,
                    char *err, size_t errlen)
{
    if (n == 0)
        return 0;
    if (flush_pg_connect(f, err, errlen) != 0)
        return -1;
    const char *params[] = {f->gateway, f->source, origin};
    struct copy_src src = {.ev = ev, .nev = n};
    if (exec_ok(f->conn, "BEGIN", "BEGIN", err, errlen) < 0 ||
        copy_in(f->conn, "flush_events", &src, n, err, errlen) < 0 ||
        exec_params(f->conn, SQL_EVENTS, 3, params, "insert gateway_events", NULL, err, errlen) <
            0 ||
        commit_checked(f, err, errlen) < 0) {
        disconnect(f);
        return -1;
    }
    return 0;
}
