/* Prometheus text exposition format (version 0.0.4) writer.
 *
 * Build a page family by family: prom_family() writes # HELP and # TYPE, then
 * prom_sample() writes one sample line with labels. Label values are escaped
 * (\\, \", \n), HELP text too (\\, \n); metric and label names are validated.
 * Histograms are kept in struct prom_histogram (lock-free observe) and written
 * with prom_histogram_write() as _bucket{le=...}, _sum and _count. */
#ifndef CCGW_PROM_H
#define CCGW_PROM_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

typedef struct prom prom_t;

enum prom_type { PROM_COUNTER, PROM_GAUGE, PROM_HISTOGRAM };

prom_t *prom_new(void);
void prom_free(prom_t *p);

/* Start a metric family. Returns 0, or -1 if the name is invalid, the family
 * was already written, or out of memory (the page is then marked failed). */
int prom_family(prom_t *p, const char *name, enum prom_type type, const char *help);

/* One sample of the current family. `labels` is NULL or a NULL-terminated
 * array "k1","v1","k2","v2",NULL. `name` is the family name (or, for
 * histograms, family_bucket/_sum/_count). NaN and +-Inf are written as
 * Prometheus spells them. 0 or -1. */
int prom_sample(prom_t *p, const char *name, const char *const *labels, double value);

/* The page so far; NULL when any call failed. Owned by p. */
const char *prom_text(const prom_t *p, size_t *len);

#define PROM_MAX_BUCKETS 32

struct prom_histogram {
    size_t nbounds;
    double bounds[PROM_MAX_BUCKETS]; /* upper bounds, ascending, +Inf implicit */
    _Atomic uint64_t counts[PROM_MAX_BUCKETS + 1];
    _Atomic double sum; /* updated with compare-and-swap */
    _Atomic uint64_t count;
};

/* Initialise with ascending bounds (at most PROM_MAX_BUCKETS). 0 or -1. */
int prom_histogram_init(struct prom_histogram *h, const double *bounds, size_t n);

/* Record one observation; safe from any thread. */
void prom_histogram_observe(struct prom_histogram *h, double v);

/* Write _bucket (cumulative, with le), _sum and _count samples of the current
 * family `name` (call prom_family(p, name, PROM_HISTOGRAM, ...) first). */
int prom_histogram_write(prom_t *p, const char *name, const char *const *labels,
                         const struct prom_histogram *h);

/* Default latency bounds in seconds: 0.0005 ... 10. */
extern const double PROM_LATENCY_BOUNDS[];
extern const size_t PROM_LATENCY_NBOUNDS;

#endif
