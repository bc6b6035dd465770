/* Reading the descriptor fixtures for the tests (see descriptor_fixtures.h): one walk of
 * the folder shared by test_descriptor.c and test_descriptor_fast.c. */
#include "descriptor_fixtures.h"

#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "descriptor.h"

char *fixture_read(const char *path, size_t *ret_len)
{
    FILE *f = fopen(path, "rb");
    char *buf = malloc(DESCRIPTOR_MAX_BYTES * 2);
    size_t n;

    assert_non_null(f);
    assert_non_null(buf);
    n = fread(buf, 1, DESCRIPTOR_MAX_BYTES * 2 - 1, f);
    fclose(f);
    buf[n] = '\0';
    *ret_len = n;
    return buf;
}

size_t fixture_each(const char *kind,
                    void (*fn)(const char *path, const char *name, const char *text, size_t len))
{
    const char *root = getenv("MAINTQ_SOURCE_ROOT");
    char dir[1024], path[1400];
    struct dirent *e;
    size_t count = 0;

    assert_non_null(root);
    snprintf(dir, sizeof(dir), "%s/tests/fixtures/descriptors/%s", root, kind);
    DIR *dh = opendir(dir);
    assert_non_null(dh);
    while ((e = readdir(dh))) {
        size_t nl = strlen(e->d_name), len = 0;
        if (nl < 6 || strcmp(e->d_name + nl - 5, ".json") != 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        char *text = fixture_read(path, &len);
        fn(path, e->d_name, text, len);
        free(text);
        count++;
    }
    closedir(dh);
    return count;
}
