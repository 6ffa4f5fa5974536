/* Base58Check and Bech32(m) address decoding. */
#include "address.h"

#include <string.h>

#include "codec.h"
#include "sys.h"

#define P2PKH_VERSION 0x6f
#define P2SH_VERSION 0xc4
#define BECH32_HRP "bcrt"
#define BECH32_CONST 1u
#define BECH32M_CONST 0x2bc830a3u

static int base58_decode(const char *s, uint8_t *out, size_t *outlen)
{
    static const char alphabet[] = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
    uint8_t buf[64] = {0};
    size_t len = strlen(s), zeros = 0, size = 0;

    if (len == 0 || len > 90)
        return -1;
    while (s[zeros] == '1')
        zeros++;
    for (size_t i = zeros; i < len; i++) {
        const char *p = strchr(alphabet, s[i]);
        if (!p || !s[i])
            return -1;
        unsigned carry = (unsigned)(p - alphabet);
        for (size_t k = 0; k < size; k++) {
            carry += 58u * buf[sizeof(buf) - 1 - k];
            buf[sizeof(buf) - 1 - k] = (uint8_t)carry;
            carry >>= 8;
        }
        while (carry) {
            if (size == sizeof(buf))
                return -1;
            buf[sizeof(buf) - 1 - size++] = (uint8_t)carry;
            carry >>= 8;
        }
    }
    if (zeros + size > sizeof(buf))
        return -1;
    memset(out, 0, zeros);
    memcpy(out + zeros, buf + sizeof(buf) - size, size);
    *outlen = zeros + size;
    return 0;
}

static int base58check_script(const char *addr, uint8_t *script, size_t *script_len)
{
    uint8_t raw[64], sum[32];
    size_t n;
    if (base58_decode(addr, raw, &n) != 0 || n != 25)
        return -1;
    if (node_codec_sha256d(raw, 21, NULL, 0, sum) != 0 || memcmp(sum, raw + 21, 4) != 0)
        return -1;
    if (raw[0] == P2PKH_VERSION) {
        static const uint8_t pre[] = {0x76, 0xa9, 0x14};
        memcpy(script, pre, sizeof(pre));
        memcpy(script + 3, raw + 1, 20);
        script[23] = 0x88;
        script[24] = 0xac;
        *script_len = 25;
        return 0;
    }
    if (raw[0] == P2SH_VERSION) {
        script[0] = 0xa9;
        script[1] = 0x14;
        memcpy(script + 2, raw + 1, 20);
        script[22] = 0x87;
        *script_len = 23;
        return 0;
    }
    return -1;
}

static uint32_t bech32_polymod(const uint8_t *v, size_t n)
{
    static const uint32_t gen[5] = {0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3};
    uint32_t chk = 1;
    for (size_t i = 0; i < n; i++) {
        uint8_t top = (uint8_t)(chk >> 25);
        chk = (chk & 0x1ffffff) << 5 ^ v[i];
        for (size_t k = 0; k < ARRAY_LEN(gen); k++)
            if ((top >> k) & 1)
                chk ^= gen[k];
    }
    return chk;
}

static int bech32_script(const char *addr, uint8_t *script, size_t *script_len)
{
    static const char charset[] = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";
    const size_t hrp_len = strlen(BECH32_HRP);
    uint8_t v[128], prog[64];
    size_t len = strlen(addr), nv = 0, ndata, nprog = 0;
    int lower = 0, upper = 0;

    if (len < hrp_len + 8 || len > 90 || addr[hrp_len] != '1')
        return -1;
    for (size_t i = 0; i < len; i++) {
        lower |= addr[i] >= 'a' && addr[i] <= 'z';
        upper |= addr[i] >= 'A' && addr[i] <= 'Z';
    }
    if (lower && upper)
        return -1;
    for (size_t i = 0; i < hrp_len; i++) {
        char c = addr[i] | 0x20;
        if (c != BECH32_HRP[i])
            return -1;
        v[nv++] = (uint8_t)(c >> 5);
    }
    v[nv++] = 0;
    for (size_t i = 0; i < hrp_len; i++)
        v[nv++] = (uint8_t)((addr[i] | 0x20) & 31);
    for (size_t i = hrp_len + 1; i < len; i++) {
        const char *p = strchr(charset, addr[i] | 0x20);
        if (!p || !addr[i])
            return -1;
        v[nv++] = (uint8_t)(p - charset);
    }
    ndata = len - hrp_len - 1;
    const uint8_t *data = v + nv - ndata;
    uint8_t witver = data[0];
    uint32_t want = witver == 0 ? BECH32_CONST : BECH32M_CONST;
    if (witver > 16 || bech32_polymod(v, nv) != want)
        return -1;
    /* 5-bit groups (without version and checksum) to bytes, no padding left over. */
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 1; i < ndata - 6; i++) {
        acc = acc << 5 | data[i];
        bits += 5;
        if (bits >= 8) {
            bits -= 8;
            if (nprog == sizeof(prog))
                return -1;
            prog[nprog++] = (uint8_t)(acc >> bits);
        }
    }
    if (bits >= 5 || (acc & ((1u << bits) - 1)))
        return -1;
    if (nprog < 2 || nprog > 40 || (witver == 0 && nprog != 20 && nprog != 32))
        return -1;
    script[0] = witver == 0 ? 0x00 : (uint8_t)(0x50 + witver);
    script[1] = (uint8_t)nprog;
    memcpy(script + 2, prog, nprog);
    *script_len = nprog + 2;
    return 0;
}

int node_address_script(const char *addr, uint8_t *script, size_t *script_len)
{
    if (strncasecmp(addr, BECH32_HRP "1", strlen(BECH32_HRP) + 1) == 0)
        return bech32_script(addr, script, script_len);
    return base58check_script(addr, script, script_len);
}
