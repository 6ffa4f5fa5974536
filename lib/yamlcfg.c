/* Schema-driven YAML loading: libyaml builds the document tree (with marks
 * for line and column), this file walks it against a yamlcfg_schema. */
#include "yamlcfg.h"
#include "sys.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

/* Aliases let a small document reference one node many times; bound the
 * number of nodes decoded so a "billion laughs" file fails instead of eating
 * memory and time. */
#define YAMLCFG_MAX_DECODED_NODES 2000000
#define YAMLCFG_PATH_MAX 256

struct yamlcfg_ctx {
    const char *file;
    yaml_document_t *doc;
    struct yamlcfg_error *err;
    size_t decoded;
    char path[YAMLCFG_PATH_MAX];
};

static void set_error_at(struct yamlcfg_ctx *cx, const yaml_node_t *node, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_error_at(struct yamlcfg_ctx *cx, const yaml_node_t *node, const char *fmt, ...)
{
    char msg[YAMLCFG_ERROR_TEXT];
    va_list ap;
    int line = node ? (int)node->start_mark.line + 1 : 0;
    int col = node ? (int)node->start_mark.column + 1 : 0;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    cx->err->line = line;
    cx->err->column = col;
    if (cx->path[0])
        snprintf(cx->err->text, sizeof(cx->err->text), "%s:%d:%d: %s: %s", cx->file, line, col,
                 cx->path, msg);
    else
        snprintf(cx->err->text, sizeof(cx->err->text), "%s:%d:%d: %s", cx->file, line, col, msg);
}

static void error_vformat(struct yamlcfg_error *err, const char *file,
                          const struct yamlcfg_mark *mark, const char *path, const char *fmt,
                          va_list ap)
{
    char msg[YAMLCFG_ERROR_TEXT];
    char where[YAMLCFG_ERROR_TEXT];

    vsnprintf(msg, sizeof(msg), fmt, ap);
    err->line = mark ? mark->line : 0;
    err->column = mark ? mark->column : 0;
    if (err->line > 0)
        snprintf(where, sizeof(where), "%s:%d:%d", file, err->line, err->column);
    else
        snprintf(where, sizeof(where), "%s", file);
    if (path && path[0])
        snprintf(err->text, sizeof(err->text), "%s: %s: %s", where, path, msg);
    else
        snprintf(err->text, sizeof(err->text), "%s: %s", where, msg);
}

void yamlcfg_error_set(struct yamlcfg_error *err, const char *file, const char *path,
                       const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    error_vformat(err, file, NULL, path, fmt, ap);
    va_end(ap);
}

void yamlcfg_error_at(struct yamlcfg_error *err, const char *file, const struct yamlcfg_mark *mark,
                      const char *path, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    error_vformat(err, file, mark, path, fmt, ap);
    va_end(ap);
}

static const char *node_kind(const yaml_node_t *n)
{
    switch (n->type) {
    case YAML_SCALAR_NODE:
        return "a scalar";
    case YAML_SEQUENCE_NODE:
        return "a sequence";
    case YAML_MAPPING_NODE:
        return "a mapping";
    default:
        return "nothing";
    }
}

/* A plain scalar spelled like YAML's null: "", "~", "null". */
static int scalar_is_null(const yaml_node_t *n)
{
    const char *v = (const char *)n->data.scalar.value;

    if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return 0;
    return v[0] == '\0' || strcmp(v, "~") == 0 || strcasecmp(v, "null") == 0;
}

/* Append ".key" or "[i]" to the path; returns the previous length to restore. */
static size_t path_push_key(struct yamlcfg_ctx *cx, const char *key)
{
    size_t len = strlen(cx->path);
    snprintf(cx->path + len, sizeof(cx->path) - len, "%s%s", len ? "." : "", key);
    return len;
}

static size_t path_push_index(struct yamlcfg_ctx *cx, size_t i)
{
    size_t len = strlen(cx->path);
    snprintf(cx->path + len, sizeof(cx->path) - len, "[%zu]", i);
    return len;
}

static void path_pop(struct yamlcfg_ctx *cx, size_t len)
{
    cx->path[len] = '\0';
}

int yamlcfg_parse_size(const char *s, int64_t *out)
{
    static const struct {
        const char *unit;
        double mult;
    } units[] = {
        {"", 1},
        {"b", 1},
        {"k", 1e3},
        {"kb", 1e3},
        {"kib", 1024.0},
        {"m", 1e6},
        {"mb", 1e6},
        {"mib", 1048576.0},
        {"g", 1e9},
        {"gb", 1e9},
        {"gib", 1073741824.0},
        {"t", 1e12},
        {"tb", 1e12},
        {"tib", 1099511627776.0},
    };
    char *end;
    double v;

    if (!s || !*s || isspace((unsigned char)*s) || *s == '-' || *s == '+')
        return -1;
    errno = 0;
    v = strtod(s, &end);
    if (errno || end == s || !isfinite(v) || v < 0)
        return -1;
    while (*end == ' ')
        end++;
    for (size_t i = 0; i < ARRAY_LEN(units); i++) {
        if (strcasecmp(end, units[i].unit) == 0) {
            double bytes = v * units[i].mult;
            if (bytes > 9.2e18)
                return -1;
            *out = (int64_t)bytes;
            return 0;
        }
    }
    return -1;
}

static int parse_int64(const char *s, int64_t *out)
{
    char *end;
    long long v;

    if (!*s || isspace((unsigned char)*s))
        return -1;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno || *end != '\0')
        return -1;
    *out = v;
    return 0;
}

static int parse_bool(const char *s, int *out)
{
    static const char *const yes[] = {"true", "yes", "on"};
    static const char *const no[] = {"false", "no", "off"};

    _Static_assert(ARRAY_LEN(yes) == ARRAY_LEN(no), "one no per yes");
    for (size_t i = 0; i < ARRAY_LEN(yes); i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = 1;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = 0;
            return 0;
        }
    }
    return -1;
}

static int check_range(struct yamlcfg_ctx *cx, const yaml_node_t *n, const struct yamlcfg_field *f,
                       double v)
{
    if (f->min == f->max)
        return 0;
    if (v < f->min || v > f->max) {
        set_error_at(cx, n, "must be between %.15g and %.15g", f->min, f->max);
        return -1;
    }
    return 0;
}

static int decode_struct(struct yamlcfg_ctx *cx, const yaml_node_t *n,
                         const struct yamlcfg_schema *schema, void *obj);

static int decode_scalar_string(struct yamlcfg_ctx *cx, const yaml_node_t *n, char **slot)
{
    if (n->type != YAML_SCALAR_NODE || scalar_is_null(n)) {
        set_error_at(cx, n, "expected a string, got %s",
                     n->type == YAML_SCALAR_NODE ? "null" : node_kind(n));
        return -1;
    }
    if (memchr(n->data.scalar.value, '\0', n->data.scalar.length)) {
        set_error_at(cx, n, "string contains a NUL character");
        return -1;
    }
    char *s = strndup((const char *)n->data.scalar.value, n->data.scalar.length);
    if (!s) {
        set_error_at(cx, n, "out of memory");
        return -1;
    }
    free(*slot);
    *slot = s;
    return 0;
}

static int decode_list(struct yamlcfg_ctx *cx, const yaml_node_t *n, const struct yamlcfg_field *f,
                       void *obj)
{
    void **arrp = (void **)((char *)obj + f->offset);
    size_t *countp = (size_t *)((char *)obj + f->count_offset);
    size_t count;
    char *arr;

    if (n->type != YAML_SEQUENCE_NODE) {
        set_error_at(cx, n, "expected a sequence, got %s", node_kind(n));
        return -1;
    }
    count = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    arr = count ? calloc(count, f->elem_size) : NULL;
    if (count && !arr) {
        set_error_at(cx, n, "out of memory");
        return -1;
    }
    /* Store first so that yamlcfg_free() releases partially decoded lists. */
    *arrp = arr;
    *countp = 0;
    for (size_t i = 0; i < count; i++) {
        yaml_node_t *item = yaml_document_get_node(cx->doc, n->data.sequence.items.start[i]);
        size_t saved = path_push_index(cx, i);
        int rc;

        (*countp)++;
        if (f->sub)
            rc = decode_struct(cx, item, f->sub, arr + i * f->elem_size);
        else
            rc = decode_scalar_string(cx, item, (char **)(arr + i * f->elem_size));
        if (rc < 0)
            return -1;
        path_pop(cx, saved);
    }
    return 0;
}

static int decode_field(struct yamlcfg_ctx *cx, const yaml_node_t *n, const struct yamlcfg_field *f,
                        void *obj)
{
    void *slot = (char *)obj + f->offset;
    const char *v;

    if (++cx->decoded > YAMLCFG_MAX_DECODED_NODES) {
        set_error_at(cx, n, "document too large (more than %d nodes after aliases)",
                     YAMLCFG_MAX_DECODED_NODES);
        return -1;
    }
    switch (f->type) {
    case YAMLCFG_STR:
        return decode_scalar_string(cx, n, (char **)slot);
    case YAMLCFG_STRUCT:
        return decode_struct(cx, n, f->sub, slot);
    case YAMLCFG_LIST:
        return decode_list(cx, n, f, obj);
    default:
        break;
    }
    if (n->type != YAML_SCALAR_NODE || scalar_is_null(n)) {
        static const char *const want[] = {
            [YAMLCFG_INT] = "an integer", [YAMLCFG_DOUBLE] = "a number",
            [YAMLCFG_BOOL] = "a boolean", [YAMLCFG_SIZE] = "a size",
            [YAMLCFG_ENUM] = "a string",
        };
        set_error_at(cx, n, "expected %s, got %s", want[f->type],
                     n->type == YAML_SCALAR_NODE ? "null" : node_kind(n));
        return -1;
    }
    v = (const char *)n->data.scalar.value;
    switch (f->type) {
    case YAMLCFG_INT: {
        int64_t x;
        if (parse_int64(v, &x) < 0) {
            set_error_at(cx, n, "expected an integer, got \"%s\"", v);
            return -1;
        }
        if (check_range(cx, n, f, (double)x) < 0)
            return -1;
        *(int64_t *)slot = x;
        return 0;
    }
    case YAMLCFG_DOUBLE: {
        char *end;
        double x;
        errno = 0;
        x = strtod(v, &end);
        if (!*v || errno || *end || !isfinite(x)) {
            set_error_at(cx, n, "expected a number, got \"%s\"", v);
            return -1;
        }
        if (check_range(cx, n, f, x) < 0)
            return -1;
        *(double *)slot = x;
        return 0;
    }
    case YAMLCFG_BOOL:
        if (parse_bool(v, (int *)slot) < 0) {
            set_error_at(cx, n, "expected a boolean (true/false), got \"%s\"", v);
            return -1;
        }
        return 0;
    case YAMLCFG_SIZE: {
        int64_t x;
        if (yamlcfg_parse_size(v, &x) < 0) {
            set_error_at(cx, n, "expected a size such as 40MB or 512KiB, got \"%s\"", v);
            return -1;
        }
        if (check_range(cx, n, f, (double)x) < 0)
            return -1;
        *(int64_t *)slot = x;
        return 0;
    }
    case YAMLCFG_ENUM: {
        char choices[256] = "";
        for (int i = 0; f->enums[i]; i++) {
            if (strcmp(v, f->enums[i]) == 0) {
                *(int *)slot = i;
                return 0;
            }
            size_t len = strlen(choices);
            snprintf(choices + len, sizeof(choices) - len, "%s%s", i ? ", " : "", f->enums[i]);
        }
        set_error_at(cx, n, "expected one of %s, got \"%s\"", choices, v);
        return -1;
    }
    default:
        set_error_at(cx, n, "internal error: bad schema type %d", (int)f->type);
        return -1;
    }
}

static int decode_struct(struct yamlcfg_ctx *cx, const yaml_node_t *n,
                         const struct yamlcfg_schema *schema, void *obj)
{
    unsigned char seen[64] = {0};
    yaml_node_pair_t *pair;

    if (schema->nfields > ARRAY_LEN(seen)) {
        set_error_at(cx, n, "internal error: schema %s has too many fields", schema->name);
        return -1;
    }
    if (n->type != YAML_MAPPING_NODE) {
        set_error_at(cx, n, "expected a mapping, got %s", node_kind(n));
        return -1;
    }
    if (schema->has_mark) {
        struct yamlcfg_mark *m = (struct yamlcfg_mark *)((char *)obj + schema->mark_offset);
        m->line = (int)n->start_mark.line + 1;
        m->column = (int)n->start_mark.column + 1;
    }
    for (pair = n->data.mapping.pairs.start; pair < n->data.mapping.pairs.top; pair++) {
        yaml_node_t *k = yaml_document_get_node(cx->doc, pair->key);
        yaml_node_t *v = yaml_document_get_node(cx->doc, pair->value);
        const char *key;
        size_t i, saved;

        if (k->type != YAML_SCALAR_NODE) {
            set_error_at(cx, k, "keys must be strings, got %s", node_kind(k));
            return -1;
        }
        key = (const char *)k->data.scalar.value;
        for (i = 0; i < schema->nfields; i++)
            if (strcmp(schema->fields[i].key, key) == 0)
                break;
        saved = path_push_key(cx, key);
        if (i == schema->nfields) {
            set_error_at(cx, k, "unknown key");
            return -1;
        }
        if (seen[i]) {
            set_error_at(cx, k, "duplicate key");
            return -1;
        }
        seen[i] = 1;
        if (schema->fields[i].track_present)
            *(int *)((char *)obj + schema->fields[i].present_offset) = 1;
        if (decode_field(cx, v, &schema->fields[i], obj) < 0)
            return -1;
        path_pop(cx, saved);
    }
    for (size_t i = 0; i < schema->nfields; i++) {
        if (schema->fields[i].required && !seen[i]) {
            set_error_at(cx, n, "missing required key \"%s\"", schema->fields[i].key);
            return -1;
        }
    }
    return 0;
}

static int load_parser(const char *name, yaml_parser_t *parser, const struct yamlcfg_schema *schema,
                       void *out, struct yamlcfg_error *err)
{
    yaml_document_t doc;
    struct yamlcfg_ctx cx = {.file = name, .err = err, .doc = &doc};
    yaml_node_t *root;
    int rc = -1;

    memset(err, 0, sizeof(*err));
    if (!yaml_parser_load(parser, &doc)) {
        const yaml_mark_t *m = &parser->problem_mark;
        err->line = (int)m->line + 1;
        err->column = (int)m->column + 1;
        if (parser->error == YAML_MEMORY_ERROR)
            snprintf(err->text, sizeof(err->text), "%s: out of memory", name);
        else if (parser->context)
            snprintf(err->text, sizeof(err->text), "%s:%d:%d: syntax error: %s %s at %d:%d", name,
                     err->line, err->column, parser->problem ? parser->problem : "invalid YAML",
                     parser->context, (int)parser->context_mark.line + 1,
                     (int)parser->context_mark.column + 1);
        else
            snprintf(err->text, sizeof(err->text), "%s:%d:%d: syntax error: %s", name, err->line,
                     err->column, parser->problem ? parser->problem : "invalid YAML");
        return -1;
    }
    root = yaml_document_get_root_node(&doc);
    if (!root) {
        err->line = err->column = 1;
        snprintf(err->text, sizeof(err->text), "%s:1:1: empty document, expected a mapping", name);
        goto out;
    }
    if (decode_struct(&cx, root, schema, out) < 0) {
        yamlcfg_free(schema, out);
        goto out;
    }
    /* A second document in the same stream is almost always a mistake. */
    {
        yaml_document_t extra;
        if (yaml_parser_load(parser, &extra)) {
            yaml_node_t *r2 = yaml_document_get_root_node(&extra);
            if (r2) {
                err->line = (int)r2->start_mark.line + 1;
                err->column = (int)r2->start_mark.column + 1;
                snprintf(err->text, sizeof(err->text),
                         "%s:%d:%d: a second YAML document is not allowed", name, err->line,
                         err->column);
                yaml_document_delete(&extra);
                yamlcfg_free(schema, out);
                goto out;
            }
            yaml_document_delete(&extra);
        }
    }
    rc = 0;
out:
    yaml_document_delete(&doc);
#ifdef __GLIBC__
    /* The node tree (about 40 MB for 200,000 hosts) was allocated between
     * the decoded values, so glibc cannot shrink the heap past them: give
     * the freed pages back, or a long-running gateway keeps them for good. */
    malloc_trim(0);
#endif
    return rc;
}

int yamlcfg_load_string(const char *name, const char *text, size_t len,
                        const struct yamlcfg_schema *schema, void *out, struct yamlcfg_error *err)
{
    yaml_parser_t parser;
    int rc;

    if (!yaml_parser_initialize(&parser)) {
        snprintf(err->text, sizeof(err->text), "%s: out of memory", name);
        return -1;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    rc = load_parser(name, &parser, schema, out, err);
    yaml_parser_delete(&parser);
    return rc;
}

int yamlcfg_load_file(const char *path, const struct yamlcfg_schema *schema, void *out,
                      struct yamlcfg_error *err)
{
    yaml_parser_t parser;
    FILE *f;
    int rc;

    memset(err, 0, sizeof(*err));
    f = fopen(path, "rb");
    if (!f) {
        snprintf(err->text, sizeof(err->text), "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    if (!yaml_parser_initialize(&parser)) {
        fclose(f);
        snprintf(err->text, sizeof(err->text), "%s: out of memory", path);
        return -1;
    }
    yaml_parser_set_input_file(&parser, f);
    rc = load_parser(path, &parser, schema, out, err);
    yaml_parser_delete(&parser);
    fclose(f);
    return rc;
}

void yamlcfg_free(const struct yamlcfg_schema *schema, void *obj)
{
    for (size_t i = 0; i < schema->nfields; i++) {
        const struct yamlcfg_field *f = &schema->fields[i];
        void *slot = (char *)obj + f->offset;

        switch (f->type) {
        case YAMLCFG_STR:
            free(*(char **)slot);
            *(char **)slot = NULL;
            break;
        case YAMLCFG_STRUCT:
            yamlcfg_free(f->sub, slot);
            break;
        case YAMLCFG_LIST: {
            char *arr = *(char **)slot;
            size_t *countp = (size_t *)((char *)obj + f->count_offset);
            for (size_t j = 0; arr && j < *countp; j++) {
                if (f->sub)
                    yamlcfg_free(f->sub, arr + j * f->elem_size);
                else
                    free(*(char **)(arr + j * f->elem_size));
            }
            free(arr);
            *(char **)slot = NULL;
            *countp = 0;
            break;
        }
        default:
            break;
        }
    }
}
