/* Schema-driven YAML loading (libyaml) into typed C structs.
 *
 * A schema is a table of fields; each names a key, a type and where the value
 * goes in the target struct. Unknown keys, wrong types, missing required keys
 * and out-of-range values are errors that name the file, line, column and the
 * key path, in the form
 *     ccgw.yaml:12:5: chains[2].backends: expected a sequence
 * Loaded strings and lists are heap memory owned by the struct; release them
 * with yamlcfg_free() and the same schema. */
#ifndef CCGW_YAMLCFG_H
#define CCGW_YAMLCFG_H

#include <stddef.h>
#include <stdint.h>

enum yamlcfg_type {
    YAMLCFG_STR,    /* char *, NUL-terminated, malloc'd */
    YAMLCFG_INT,    /* int64_t, decimal, within [min, max] */
    YAMLCFG_DOUBLE, /* double, within [min, max] */
    YAMLCFG_BOOL,   /* int 0/1: true/false/yes/no/on/off */
    YAMLCFG_SIZE,   /* int64_t bytes: 123, 40MB, 1.5GiB, 512k (1000 and 1024 units) */
    YAMLCFG_ENUM,   /* int: index of the value in `enums` (NULL-terminated) */
    YAMLCFG_STRUCT, /* nested mapping decoded with `sub` into the struct at offset */
    YAMLCFG_LIST,   /* sequence: `elem` of `elem_size` bytes each; the array pointer
                     * is stored at offset, the count (size_t) at count_offset.
                     * Elements are YAMLCFG_STRUCT (sub set) or YAMLCFG_STR (sub NULL). */
};

struct yamlcfg_schema;

struct yamlcfg_field {
    const char *key;
    enum yamlcfg_type type;
    size_t offset;
    int required;
    const struct yamlcfg_schema *sub; /* YAMLCFG_STRUCT, and YAMLCFG_LIST of structs */
    size_t elem_size;                 /* YAMLCFG_LIST */
    size_t count_offset;              /* YAMLCFG_LIST */
    const char *const *enums;         /* YAMLCFG_ENUM */
    double min, max;       /* YAMLCFG_INT, YAMLCFG_DOUBLE, YAMLCFG_SIZE; ignored when min == max */
    int track_present;     /* if set, an int at present_offset becomes 1 when the */
    size_t present_offset; /* key is in the file (tells "false" from "absent") */
};

/* Where a mapping started in the file (1-based), for errors found after
 * decoding ("chains[1]: no backends" at the chain's line). */
struct yamlcfg_mark {
    int line, column;
};

struct yamlcfg_schema {
    const char *name; /* for messages only */
    const struct yamlcfg_field *fields;
    size_t nfields;
    int has_mark; /* store the mapping's struct yamlcfg_mark at mark_offset */
    size_t mark_offset;
};

#define YAMLCFG_ERROR_TEXT 512
struct yamlcfg_error {
    char text[YAMLCFG_ERROR_TEXT]; /* "file:line:col: path: message" */
    int line, column;              /* 1-based; 0 when not known */
};

/* Parse `path` and decode it into `out` (zeroed by the caller; numeric
 * defaults set before the call survive keys that are absent; string fields
 * must be NULL: apply string defaults after loading). Returns 0, or -1 with `err`
 * filled; on error whatever was decoded is freed. */
int yamlcfg_load_file(const char *path, const struct yamlcfg_schema *schema, void *out,
                      struct yamlcfg_error *err);

/* Same, from memory; `name` stands for the file name in messages. */
int yamlcfg_load_string(const char *name, const char *text, size_t len,
                        const struct yamlcfg_schema *schema, void *out, struct yamlcfg_error *err);

/* Free the strings and lists of a decoded struct (not the struct itself). */
void yamlcfg_free(const struct yamlcfg_schema *schema, void *obj);

/* Format an error for a semantic check done after decoding (line/column of
 * the whole file unknown): "file: path: message". */
void yamlcfg_error_set(struct yamlcfg_error *err, const char *file, const char *path,
                       const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* An error found after decoding, at a mark: "file:line:col: path: message"
 * (without line and column when mark is NULL or unset). */
void yamlcfg_error_at(struct yamlcfg_error *err, const char *file, const struct yamlcfg_mark *mark,
                      const char *path, const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Parse "40MB"-style sizes; returns 0 or -1. */
int yamlcfg_parse_size(const char *s, int64_t *out);

#endif
