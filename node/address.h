/* Regtest addresses to output scripts: Base58Check (P2PKH 0x6f, P2SH 0xc4)
 * and Bech32/Bech32m segwit ("bcrt1..."), as generatetoaddress needs. */
#ifndef CCNODE_ADDRESS_H
#define CCNODE_ADDRESS_H

#include <stddef.h>
#include <stdint.h>

#define NODE_SCRIPT_MAX 42

/* Decode `addr` into its scriptPubKey (script, at least NODE_SCRIPT_MAX
 * bytes). 0, or -1 when it is not a valid regtest address. */
int node_address_script(const char *addr, uint8_t *script, size_t *script_len);

#endif
