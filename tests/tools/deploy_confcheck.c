/* Loads deployment files with the daemons' own config loaders, so that the
 * configs shipped under deploy/ are checked against the real schemas:
 *
 *   deploy_confcheck ccgw FILE...   ccgwconf_load() + routes_check()
 *   deploy_confcheck node FILE...   node_config_load()
 *
 * Prints "FILE: OK" or the loader's "file:line:col: ..." message per file;
 * exits 1 if any file is refused, 2 on usage errors. Built and run by
 * tests/integration/test_deploy_static.sh. */
#include <stdio.h>
#include <string.h>

#include "yamlcfg.h"
#include "ccgwconf.h"
#include "haproxy/routes.h"
#include "node/config.h"

static int check_ccgw(const char *path)
{
    struct ccgwconf c = {0};
    struct yamlcfg_error err = {0};
    int rc = -1;

    if (ccgwconf_load(path, &c, &err) < 0)
        goto out;
    if (routes_check(&c, &err) < 0)
        goto out;
    rc = 0;
out:
    if (rc < 0)
        fprintf(stderr, "%s\n", err.text);
    ccgwconf_free(&c);
    return rc;
}

static int check_node(const char *path)
{
    struct node_config c = {0};
    struct yamlcfg_error err = {0};

    if (node_config_load(path, &c, &err) < 0) {
        fprintf(stderr, "%s\n", err.text);
        return -1;
    }
    node_config_free(&c);
    return 0;
}

int main(int argc, char **argv)
{
    int (*check)(const char *);
    int failed = 0;

    if (argc < 3 || (strcmp(argv[1], "ccgw") != 0 && strcmp(argv[1], "node") != 0)) {
        fprintf(stderr, "usage: deploy_confcheck ccgw|node FILE...\n");
        return 2;
    }
    check = strcmp(argv[1], "ccgw") == 0 ? check_ccgw : check_node;
    for (int i = 2; i < argc; i++) {
        if (check(argv[i]) < 0)
            failed = 1;
        else
            printf("%s: OK\n", argv[i]);
    }
    return failed;
}
