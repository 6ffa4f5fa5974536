/* Following the request-log segments (segment.h) as the supervisor writes
 * them: the worker's input. Reads from a position to the end of what is
 * there, hands out whole lines, moves on to the next segment once the
 * current one is complete, and says where it stands as a segment position
 * (the start of the first line not handed out yet). Reads in large blocks
 * on the caller's clock (one wake-up per batch, never per line). Not
 * thread-safe. */
#ifndef CCGW_FOLLOW_H
#define CCGW_FOLLOW_H

#include <stddef.h>
#include <stdint.h>

#include "lines.h"
#include "segment.h"

struct follow {
    char *dir;
    int fd;           /* current segment, -1 when not open */
    int64_t seg;      /* current segment number */
    int64_t read_off; /* bytes of it read into `lines` */
    struct lines lines;
    int64_t missing_bytes; /* segment bytes found deleted before being read */
    int64_t skipped_segments;
    /* segments found deleted while still being written: their lines are
     * still read (the file stays open), the kept log lost them */
    int64_t deleted_segments;
    int64_t deleted_seen_seg; /* the last one reported, 0: none */
};

/* Start at `from` (seg 0: the oldest segment there is, or the first one to
 * appear). 0, or -1 with err (out of memory). */
int follow_open(struct follow *f, const char *dir, const struct segment_pos *from, char *err,
                size_t errlen);
void follow_close(struct follow *f);

/* Read up to `max_bytes` of what is there and hand out every complete line
 * to fn. Returns the bytes read (0: nothing new; *at_end is set when the
 * newest segment was read to its end), or -1 with err on a read error. */
int64_t follow_step(struct follow *f, size_t max_bytes, lines_fn fn, void *ctx, int *at_end,
                    char *err, size_t errlen);

/* Bytes of the current segment not read yet (later segments not included). */
int64_t follow_lag(const struct follow *f);

/* The position of the first line not handed out yet. */
struct segment_pos follow_pos(const struct follow *f);

#endif
