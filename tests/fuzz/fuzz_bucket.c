/* libFuzzer target: HAProxy accept dates, ISO 8601 times and zones, the
 * parsers that see every log line and every API query. Whatever they accept
 * must round-trip through bucket_format_iso/bucket_parse_iso.
 * fuzz-components: (none: lib/ only) */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bucket.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    int64_t ms, epoch, back;
    int32_t off;
    char iso[64];

    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    /* the date parser takes a length: it must not read past it */
    if (bucket_parse_haproxy_date((const char *)data, size, 0, &ms) == 0) {
        int64_t sec = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
        if (bucket_start(sec) > sec || sec - bucket_start(sec) >= BUCKET_SECS)
            __builtin_trap();
    }
    if (bucket_parse_iso(s, &epoch) == 0 && epoch >= 0) {
        bucket_format_iso(epoch, iso, sizeof(iso));
        if (bucket_parse_iso(iso, &back) != 0 || back != epoch)
            __builtin_trap();
    }
    (void)bucket_zone_parse(s, &off);
    free(s);
    return 0;
}
