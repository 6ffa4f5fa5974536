/* libFuzzer target: the deployment config loader on arbitrary bytes. It
 * must return 0 or -1 with a message, never crash or leak.
 * fuzz-components: (none: lib/ only) */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ccgwconf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ccgwconf c;
    struct yamlcfg_error err;

    if (ccgwconf_load_string("fuzz.yaml", (const char *)data, size, &c, &err) == 0) {
        ccgwconf_free(&c);
    } else if (err.text[0] == '\0') {
        __builtin_trap(); /* every failure must say why */
    }
    return 0;
}
