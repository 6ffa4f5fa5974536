/* Time buckets and HAProxy accept dates.
 *
 * A relay is bucketed by HAProxy's accept time to the five-minute bucket
 * floor(epoch/300)*300 (UTC). HAProxy's httplog date ("21/Nov/2026:10:22:33.685")
 * has no zone: it is the HAProxy process's local time. We read it as UTC unless
 * a fixed offset is configured ("UTC", "Z", "+01:00", "-0530"). */
#ifndef CCGW_BUCKET_H
#define CCGW_BUCKET_H

#include <stddef.h>
#include <stdint.h>

#define BUCKET_SECS 300

/* floor(epoch / 300) * 300, correct for negative epochs too. */
int64_t bucket_start(int64_t epoch);

/* Floor to any step (300, 3600, 86400); step > 0. */
int64_t bucket_floor(int64_t epoch, int64_t step);

/* Parse a zone: "UTC", "Z", "+HH:MM", "-HHMM", "+HH". Offset is seconds east
 * of UTC. 0 or -1. */
int bucket_zone_parse(const char *s, int32_t *offset_secs);

/* Parse HAProxy's accept date "DD/Mon/YYYY:HH:MM:SS.mmm" (milliseconds
 * optional, surrounding brackets allowed) of `len` bytes, interpreted at
 * `offset_secs` east of UTC. Stores epoch milliseconds (UTC). Validates ranges
 * (day of month, 24h clock, leap years). 0 or -1. No allocation, no locale,
 * no libc time functions: this runs once per log line. */
int bucket_parse_haproxy_date(const char *s, size_t len, int32_t offset_secs, int64_t *epoch_ms);

/* Days since 1970-01-01 of a proleptic Gregorian date (month 1-12). */
int64_t bucket_days_from_civil(int64_t y, unsigned m, unsigned d);

/* Format epoch seconds as "2026-11-21T10:20:00Z" into buf (>= 21 bytes). */
void bucket_format_iso(int64_t epoch, char *buf, size_t size);

/* Parse ISO 8601 UTC "2026-11-21T10:20:00Z", "2026-11-21T10:20Z", "2026-11-21"
 * (optionally with +HH:MM offset). 0 or -1. */
int bucket_parse_iso(const char *s, int64_t *epoch);

#endif
