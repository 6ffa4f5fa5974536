/* libFuzzer target: the deployment config loader on arbitrary bytes. It
 * must return 0 or -1 with a message, never crash or leak.
 * fuzz-components: (none: lib/ only) */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct conf c;
    struct cfg_error err;

    if (conf_load_string("fuzz.yaml", (const char *)data, size, &c, &err) == 0) {
        conf_free(&c);
    } else if (err.text[0] == '\0') {
        __builtin_trap(); /* every failure must say why */
    }
    return 0;
}
