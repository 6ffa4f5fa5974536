/* The bitcoin flavour's method table, shaped like Bitcoin Core's replies,
 * with the network and control methods; the other families are in
 * rpc_btcchain.c, rpc_btcmempool.c and rpc_btcmining.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "btcjson.h"
#include "node.h"
#include "peerinfo.h"
#include "peermgr.h"
#include "rpc_bitcoin.h"
#include "rpc_btcchain.h"
#include "rpc_btcmempool.h"
#include "rpc_btcmining.h"

static int m_getnetworkinfo(struct node *n, json_t *params, json_t **result,
                            struct node_method_error *e)
{
    size_t in, out;
    (void)params;
    node_peermgr_counts(n->peers, &in, &out);
    *result =
        json_pack("{s:i,s:s,s:i,s:s,s:[],s:b,s:i,s:b,s:I,s:I,s:I,s:[],s:f,s:f,s:[],s:s}", "version",
                  NODE_VERSION_NUM, "subversion", NODE_SUBVERSION, "protocolversion", 70016,
                  "localservices", "0000000000000409", "localservicesnames", "localrelay", 1,
                  "timeoffset", 0, "networkactive", 1, "connections", (json_int_t)(in + out),
                  "connections_in", (json_int_t)in, "connections_out", (json_int_t)out, "networks",
                  "relayfee", 0.00001, "incrementalfee", 0.00001, "localaddresses", "warnings", "");
    return *result ? 0 : node_btcjson_oom(e);
}

static int m_getpeerinfo(struct node *n, json_t *params, json_t **result,
                         struct node_method_error *e)
{
    (void)params;
    *result = node_peerinfo_json(n->peers);
    return *result ? 0 : node_btcjson_oom(e);
}

static int m_getconnectioncount(struct node *n, json_t *params, json_t **result,
                                struct node_method_error *e)
{
    size_t in, out;
    (void)params;
    node_peermgr_counts(n->peers, &in, &out);
    *result = json_integer((json_int_t)(in + out));
    return *result ? 0 : node_btcjson_oom(e);
}

static int m_uptime(struct node *n, json_t *params, json_t **result, struct node_method_error *e)
{
    (void)params;
    *result = json_integer(node_uptime(n));
    return *result ? 0 : node_btcjson_oom(e);
}

static int m_help(struct node *n, json_t *params, json_t **result, struct node_method_error *e)
{
    (void)n; /* a bitcoin node: its table is node_rpc_bitcoin_methods */
    const char *cmd = NULL;
    if (json_array_size(params) > 0 && node_btcjson_arg_str(params, 0, &cmd, e) != 0)
        return -1;
    if (cmd) {
        const struct node_method *m = node_method_find(node_rpc_bitcoin_methods, cmd);
        if (!m) {
            char buf[160];
            snprintf(buf, sizeof(buf), "help: unknown command: %.100s", cmd);
            *result = json_string(buf);
        } else {
            *result = json_string(m->help);
        }
        return *result ? 0 : node_btcjson_oom(e);
    }
    size_t cap = 64, len = 0;
    char *text = malloc(cap);
    if (!text)
        return node_btcjson_oom(e);
    text[0] = '\0';
    for (const struct node_method *m = node_rpc_bitcoin_methods; m->name; m++) {
        size_t need = strlen(m->help) + 2;
        if (len + need >= cap) {
            while (len + need >= cap)
                cap *= 2;
            char *t = realloc(text, cap);
            if (!t) {
                free(text);
                return node_btcjson_oom(e);
            }
            text = t;
        }
        len += (size_t)snprintf(text + len, cap - len, "%s%s", len ? "\n" : "", m->help);
    }
    *result = json_string(text);
    free(text);
    return *result ? 0 : node_btcjson_oom(e);
}

const struct node_method node_rpc_bitcoin_methods[] = {
    {"getbestblockhash", node_rpc_btcchain_getbestblockhash, 0, 0, {NULL}, "getbestblockhash"},
    {"getblock",
     node_rpc_btcchain_getblock,
     1,
     2,
     {"blockhash", "verbosity"},
     "getblock \"blockhash\" ( verbosity )"},
    {"getblockchaininfo", node_rpc_btcchain_getblockchaininfo, 0, 0, {NULL}, "getblockchaininfo"},
    {"getblockcount", node_rpc_btcchain_getblockcount, 0, 0, {NULL}, "getblockcount"},
    {"getblockhash", node_rpc_btcchain_getblockhash, 1, 1, {"height"}, "getblockhash height"},
    {"getblockheader",
     node_rpc_btcchain_getblockheader,
     1,
     2,
     {"blockhash", "verbose"},
     "getblockheader \"blockhash\" ( verbose )"},
    {"getblocktemplate",
     node_rpc_btcmining_getblocktemplate,
     0,
     1,
     {"template_request"},
     "getblocktemplate {\"rules\":[\"segwit\"]}"},
    {"getconnectioncount", m_getconnectioncount, 0, 0, {NULL}, "getconnectioncount"},
    {"getmempoolinfo", node_rpc_btcmempool_getmempoolinfo, 0, 0, {NULL}, "getmempoolinfo"},
    {"getnetworkinfo", m_getnetworkinfo, 0, 0, {NULL}, "getnetworkinfo"},
    {"getpeerinfo", m_getpeerinfo, 0, 0, {NULL}, "getpeerinfo"},
    {"getrawmempool",
     node_rpc_btcmempool_getrawmempool,
     0,
     2,
     {"verbose", "mempool_sequence"},
     "getrawmempool ( verbose )"},
    {"generate", node_rpc_btcmining_generate, 0, 1, {"nblocks"}, "generate ( nblocks )"},
    {"generatetoaddress",
     node_rpc_btcmining_generatetoaddress,
     2,
     3,
     {"nblocks", "address", "maxtries"},
     "generatetoaddress nblocks \"address\" ( maxtries )"},
    {"help", m_help, 0, 1, {"command"}, "help ( \"command\" )"},
    {"pruneblockchain",
     node_rpc_btcchain_pruneblockchain,
     1,
     1,
     {"height"},
     "pruneblockchain height"},
    {"sendrawtransaction",
     node_rpc_btcmempool_sendrawtransaction,
     1,
     2,
     {"hexstring", "maxfeerate"},
     "sendrawtransaction \"hexstring\" ( maxfeerate )"},
    {"uptime", m_uptime, 0, 0, {NULL}, "uptime"},
    {NULL, NULL, 0, 0, {NULL}, NULL},
};
