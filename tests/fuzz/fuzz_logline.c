/* libFuzzer target for the HAProxy log line parser and the relay rule: the
 * input is split into lines (the first byte picks the read size, so lines
 * also arrive split across reads) and each goes through the whole ingest
 * path; the whole input is also parsed as one line, checked against the
 * reference whole-line pattern (tests/unit/logline_ref.h), and as a Host.
 * fuzz-components: gateway */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bucket.h"
#include "ccgwconf.h"
#include "ingest.h"
#include "lines.h"
#include "../unit/logline_ref.h"

static const char routing[] =
    "gateway: {name: gw-fuzz, routing_domain: chains.example.tech}\n"
    "chains:\n"
    "  - {id: \"0021\", backends: [{name: a, address: \"127.0.0.1:1\"}]}\n"
    "  - {id: \"0001\", backends: [{name: b, address: \"127.0.0.1:2\"}]}\n"
    "providers:\n"
    "  - name: p\n"
    "    accounts:\n"
    "      - {id: 894334g9f403, chains: [\"0021\", \"0001\"]}\n";

static struct ccgwconf conf;
static relay_table_t *table;
static struct logline_ref ref;

static void on_line(void *ctx, const char *line, size_t len, int too_long)
{
    struct ingest *in = ctx;
    struct logline l;
    if (too_long) {
        ingest_too_long(in, INGEST_STDOUT, 0);
        return;
    }
    logline_parse(in->parser, line, len, &l);
    if (logline_ref_diff(&ref, line, len, &l))
        abort();
    ingest_line(in, line, len, INGEST_STDOUT, 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512];
    struct yamlcfg_error cerr;
    if (!table) {
        if (ccgwconf_load_string("fuzz.yaml", routing, strlen(routing), &conf, &cerr) < 0)
            abort();
        table = relay_table_new(&conf, err, sizeof(err));
        if (!table || logline_ref_init(&ref) < 0)
            abort();
    }
    if (size == 0)
        return 0;
    size_t chunk = (size_t)data[0] + 1;
    counter_t *counter = counter_new();
    struct ingest in;
    struct lines lines;
    if (!counter || ingest_init(&in, 3600, table, counter, 1, err, sizeof(err)) < 0)
        abort();
    if (lines_init(&lines, 4096, 1024) < 0)
        abort();
    for (size_t off = 1; off < size; off += chunk)
        lines_feed(&lines, (const char *)data + off, off + chunk <= size ? chunk : size - off,
                   on_line, &in);
    lines_finish(&lines, on_line, &in);
    uint64_t judged = in.stats.relays;
    for (int r = 0; r < NR_COUNT; r++)
        judged += in.stats.non_relays[r];
    /* every request or unparsable line is judged exactly once */
    if (judged != in.stats.by_kind[LOGLINE_REQUEST] + in.stats.by_kind[LOGLINE_UNPARSABLE])
        abort();
    if ((int64_t)in.stats.relays != counter_total_relays(counter))
        abort();

    struct logline l;
    logline_parse(in.parser, (const char *)data, size, &l);
    if (logline_ref_diff(&ref, (const char *)data, size, &l))
        abort();
    char host[RELAY_HOST_MAX];
    if (logline_host_normalise((const char *)data, size, host, sizeof(host)) >= 0 &&
        strlen(host) > sizeof(host))
        abort();
    lines_free(&lines);
    ingest_destroy(&in);
    counter_free(counter);
    return 0;
}
