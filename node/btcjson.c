/* Arguments, hashes and hex in Bitcoin Core's JSON shapes. */
#include "btcjson.h"

#include <stdlib.h>
#include <string.h>

#include "codec.h"

/* Bitcoin Core's type error text: "JSON value of type string is not of expected type number". */
const char *node_btcjson_type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "object";
    case JSON_ARRAY:
        return "array";
    case JSON_STRING:
        return "string";
    case JSON_INTEGER:
    case JSON_REAL:
        return "number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "bool";
    default:
        return "null";
    }
}

int node_btcjson_arg_int(json_t *params, size_t i, int64_t *out, struct node_method_error *e)
{
    json_t *v = json_array_get(params, i);
    if (!json_is_integer(v))
        return node_method_fail(e, RPC_TYPE_ERROR,
                                "JSON value of type %s is not of expected type number",
                                node_btcjson_type_name(v));
    *out = (int64_t)json_integer_value(v);
    return 0;
}

int node_btcjson_arg_str(json_t *params, size_t i, const char **out, struct node_method_error *e)
{
    json_t *v = json_array_get(params, i);
    if (!json_is_string(v))
        return node_method_fail(e, RPC_TYPE_ERROR,
                                "JSON value of type %s is not of expected type string",
                                node_btcjson_type_name(v));
    *out = json_string_value(v);
    return 0;
}

/* Core's ParseHashV: 64 hex characters, displayed byte order. */
int node_btcjson_arg_hash(json_t *params, size_t i, const char *name, uint8_t out[32],
                          struct node_method_error *e)
{
    const char *s;
    if (node_btcjson_arg_str(params, i, &s, e) != 0)
        return -1;
    if (strlen(s) != 64)
        return node_method_fail(e, RPC_INVALID_PARAMETER,
                                "%s must be of length 64 (not %zu, for '%.80s')", name, strlen(s),
                                s);
    if (node_codec_hex_decode32(s, 1, out) != 0)
        return node_method_fail(e, RPC_INVALID_PARAMETER,
                                "%s must be hexadecimal string (not '%.80s')", name, s);
    return 0;
}

json_t *node_btcjson_hash(const uint8_t h[32])
{
    char hex[65];
    node_codec_hex_encode(h, 32, 1, hex);
    return json_string(hex);
}

json_t *node_btcjson_hex(const uint8_t *p, size_t len)
{
    char *hex = malloc(len * 2 + 1);
    if (!hex)
        return NULL;
    node_codec_hex_encode(p, len, 0, hex);
    json_t *s = json_string(hex);
    free(hex);
    return s;
}

int node_btcjson_oom(struct node_method_error *e)
{
    return node_method_fail(e, RPC_OUT_OF_MEMORY, "Out of memory");
}
