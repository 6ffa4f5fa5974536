/* Time buckets and date parsing with integer arithmetic only: no locale, no
 * allocation and no libc time functions, so that parsing a date costs the same
 * on every line and does not depend on the process's TZ. */
#include "bucket.h"

#include <stdio.h>
#include <string.h>

#define SECS_PER_DAY 86400

int64_t bucket_floor(int64_t epoch, int64_t step)
{
    int64_t r = epoch % step;

    /* C division truncates toward zero; a floor needs the remainder in [0, step). */
    if (r < 0)
        r += step;
    return epoch - r;
}

int64_t bucket_start(int64_t epoch)
{
    return bucket_floor(epoch, BUCKET_SECS);
}

/* Howard Hinnant's days_from_civil: eras of 400 years (146097 days), years
 * starting in March so that the leap day is the last day of the year. */
int64_t bucket_days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const int64_t yoe = y - era * 400;                         /* [0, 399] */
    const int64_t mp = (int64_t)(m > 2 ? m - 3 : m + 9);       /* [0, 11] */
    const int64_t doy = (153 * mp + 2) / 5 + (int64_t)d - 1;   /* [0, 365] */
    const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; /* [0, 146096] */
    return era * 146097 + doe - 719468;
}

/* The inverse of bucket_days_from_civil. */
static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const int64_t doe = z - era * 146097;
    const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const int64_t mp = (5 * doy + 2) / 153;
    *d = (unsigned)(doy - (153 * mp + 2) / 5 + 1);
    *m = (unsigned)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

static int is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static unsigned days_in_month(int64_t y, unsigned m)
{
    static const unsigned char mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : mdays[m - 1];
}

/* Read exactly n decimal digits at s[*i]; advances *i. 0 or -1. */
static int digits(const char *s, size_t len, size_t *i, size_t n, int64_t *out)
{
    int64_t v = 0;

    if (*i + n > len)
        return -1;
    for (size_t k = 0; k < n; k++) {
        unsigned char c = (unsigned char)s[*i + k];
        if (c < '0' || c > '9')
            return -1;
        v = v * 10 + (c - '0');
    }
    *i += n;
    *out = v;
    return 0;
}

static int expect(const char *s, size_t len, size_t *i, char c)
{
    if (*i >= len || s[*i] != c)
        return -1;
    (*i)++;
    return 0;
}

static int valid_civil(int64_t y, int64_t mo, int64_t d, int64_t h, int64_t mi, int64_t sec)
{
    if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, (unsigned)mo))
        return 0;
    return h >= 0 && h <= 23 && mi >= 0 && mi <= 59 && sec >= 0 && sec <= 59;
}

static int64_t civil_to_epoch(int64_t y, int64_t mo, int64_t d, int64_t h, int64_t mi, int64_t sec)
{
    return bucket_days_from_civil(y, (unsigned)mo, (unsigned)d) * SECS_PER_DAY + h * 3600 +
           mi * 60 + sec;
}

/* "+HH:MM", "-HHMM", "+HH" at s[*i] up to len; stores seconds east of UTC. */
static int zone_offset(const char *s, size_t len, size_t *i, int32_t *offset)
{
    int64_t hh, mm = 0;
    int sign;

    if (*i >= len || (s[*i] != '+' && s[*i] != '-'))
        return -1;
    sign = s[*i] == '-' ? -1 : 1;
    (*i)++;
    if (digits(s, len, i, 2, &hh) < 0)
        return -1;
    if (*i < len) {
        if (s[*i] == ':')
            (*i)++;
        if (digits(s, len, i, 2, &mm) < 0)
            return -1;
    }
    if (hh > 23 || mm > 59)
        return -1;
    *offset = (int32_t)(sign * (hh * 3600 + mm * 60));
    return 0;
}

int bucket_zone_parse(const char *s, int32_t *offset_secs)
{
    size_t i = 0, len;
    int32_t off;

    if (!s)
        return -1;
    if (strcmp(s, "UTC") == 0 || strcmp(s, "Z") == 0) {
        *offset_secs = 0;
        return 0;
    }
    len = strlen(s);
    if (zone_offset(s, len, &i, &off) < 0 || i != len)
        return -1;
    *offset_secs = off;
    return 0;
}

/* "Jan".."Dec" (HAProxy always writes English abbreviations); 1-12 or 0. */
static unsigned month_from_abbrev(const char *s)
{
    static const char names[] = "JanFebMarAprMayJunJulAugSepOctNovDec";

    for (unsigned m = 0; m < 12; m++)
        if (memcmp(s, names + 3 * m, 3) == 0)
            return m + 1;
    return 0;
}

int bucket_parse_haproxy_date(const char *s, size_t len, int32_t offset_secs, int64_t *epoch_ms)
{
    size_t i = 0;
    int64_t d, y, h, mi, sec, ms = 0;
    unsigned mo;

    if (!s)
        return -1;
    if (len >= 2 && s[0] == '[') {
        if (s[len - 1] != ']')
            return -1;
        i = 1;
        len--;
    }
    if (digits(s, len, &i, 2, &d) < 0 || expect(s, len, &i, '/') < 0 || i + 3 > len)
        return -1;
    mo = month_from_abbrev(s + i);
    i += 3;
    if (mo == 0 || expect(s, len, &i, '/') < 0 || digits(s, len, &i, 4, &y) < 0 ||
        expect(s, len, &i, ':') < 0 || digits(s, len, &i, 2, &h) < 0 ||
        expect(s, len, &i, ':') < 0 || digits(s, len, &i, 2, &mi) < 0 ||
        expect(s, len, &i, ':') < 0 || digits(s, len, &i, 2, &sec) < 0)
        return -1;
    if (i < len) {
        /* HAProxy writes exactly three digits; accept one to three. */
        size_t n = len - i - 1;
        if (expect(s, len, &i, '.') < 0 || n < 1 || n > 3 || digits(s, len, &i, n, &ms) < 0)
            return -1;
        for (; n < 3; n++)
            ms *= 10;
    }
    if (i != len || !valid_civil(y, mo, d, h, mi, sec))
        return -1;
    *epoch_ms = (civil_to_epoch(y, mo, d, h, mi, sec) - offset_secs) * 1000 + ms;
    return 0;
}

void bucket_format_iso(int64_t epoch, char *buf, size_t size)
{
    int64_t days = epoch / SECS_PER_DAY, secs = epoch % SECS_PER_DAY, y;
    unsigned m, d;

    if (secs < 0) {
        secs += SECS_PER_DAY;
        days--;
    }
    civil_from_days(days, &y, &m, &d);
    snprintf(buf, size, "%04lld-%02u-%02uT%02d:%02d:%02dZ", (long long)y, m, d, (int)(secs / 3600),
             (int)(secs / 60 % 60), (int)(secs % 60));
}

int bucket_parse_iso(const char *s, int64_t *epoch)
{
    size_t i = 0, len;
    int64_t y, mo, d, h = 0, mi = 0, sec = 0;
    int32_t off = 0;

    if (!s)
        return -1;
    len = strlen(s);
    if (digits(s, len, &i, 4, &y) < 0 || expect(s, len, &i, '-') < 0 ||
        digits(s, len, &i, 2, &mo) < 0 || expect(s, len, &i, '-') < 0 ||
        digits(s, len, &i, 2, &d) < 0)
        return -1;
    if (i < len) {
        if (s[i] != 'T' && s[i] != ' ')
            return -1;
        i++;
        if (digits(s, len, &i, 2, &h) < 0 || expect(s, len, &i, ':') < 0 ||
            digits(s, len, &i, 2, &mi) < 0)
            return -1;
        if (i < len && s[i] == ':') {
            i++;
            if (digits(s, len, &i, 2, &sec) < 0)
                return -1;
            /* Fractions of a second are accepted and dropped (epoch is whole seconds). */
            if (i < len && s[i] == '.') {
                size_t start = ++i;
                while (i < len && s[i] >= '0' && s[i] <= '9')
                    i++;
                if (i == start)
                    return -1;
            }
        }
        if (i < len && s[i] == 'Z')
            i++;
        else if (i < len && zone_offset(s, len, &i, &off) < 0)
            return -1;
    }
    if (i != len || !valid_civil(y, mo, d, h, mi, sec))
        return -1;
    *epoch = civil_to_epoch(y, mo, d, h, mi, sec) - off;
    return 0;
}
