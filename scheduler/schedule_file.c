/* Reading schedule files into documents: a file (at most SCHEDULE_FILE_MAX_BYTES) holds one
 * schedule object or {"schedules": [...]}. The usual list form is walked one document at a
 * time so that a file of 10,000 schedules never exists as one jansson tree; any other form,
 * and any broken file, goes through a whole-document parse that decides every error message.
 * What the documents mean is schedule_check.c's business. */
#include "schedule_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SCHEDULE_FILE_MAX_BYTES (16 * 1024 * 1024)

static int read_whole_file(const char *path, char **ret_text, size_t *ret_len, struct errbuf *eb)
{
    FILE *f = fopen(path, "re");
    char *buf = NULL;
    size_t len = 0, cap = 0;
    int r;

    if (!f) {
        r = -errno;
        errbuf_set(eb, "%s: %s", path, strerror(errno));
        return r;
    }
    for (;;) {
        if (len == cap) {
            char *nb;
            cap = cap ? cap * 2 : 16384;
            if (cap > SCHEDULE_FILE_MAX_BYTES + 1)
                cap = SCHEDULE_FILE_MAX_BYTES + 1;
            if (len == cap) {
                errbuf_set(eb, "%s: larger than %d bytes", path, SCHEDULE_FILE_MAX_BYTES);
                r = -EFBIG;
                goto fail;
            }
            nb = realloc(buf, cap);
            if (!nb) {
                r = -ENOMEM;
                goto fail;
            }
            buf = nb;
        }
        size_t n = fread(buf + len, 1, cap - len, f);
        len += n;
        if (n == 0) {
            if (ferror(f)) {
                errbuf_set(eb, "%s: read error", path);
                r = -EIO;
                goto fail;
            }
            break;
        }
    }
    fclose(f);
    *ret_text = buf;
    *ret_len = len;
    return 0;
fail:
    fclose(f);
    free(buf);
    return r;
}

/* JSON's insignificant whitespace (RFC 8259). */
static size_t skip_ws(const char *t, size_t len, size_t i)
{
    while (i < len && (t[i] == ' ' || t[i] == '\t' || t[i] == '\n' || t[i] == '\r'))
        i++;
    return i;
}

/* Walks text of the form {"schedules": [{...}, ...]} one element at a time, so that only
 * one schedule's tree exists at once: jansson builds about 1.5 KB of nodes per schedule,
 * which for a file of 10,000 was most of the daemon's memory. Returns 1 when the whole text
 * has exactly that form, every element being an object that parses (cb, when not NULL, was
 * called for each, in order), 0 when it does not (the caller parses the whole document
 * instead, which decides every error message; cb may have been called for some elements),
 * or cb's negative result. Anything unusual — another key, an escaped key, a scalar element,
 * a syntax error — is a 0 rather than an error of its own, so that error messages and their
 * order stay those of the whole-document path. */
static int stream_docs(const char *text, size_t len,
                       int (*cb)(json_t *doc, size_t index, void *data), void *data)
{
    static const char key[] = "\"schedules\"";
    size_t i = skip_ws(text, len, 0), index = 0;

    if (i >= len || text[i] != '{')
        return 0;
    i = skip_ws(text, len, i + 1);
    if (len - i < sizeof(key) - 1 || memcmp(text + i, key, sizeof(key) - 1) != 0)
        return 0;
    i = skip_ws(text, len, i + sizeof(key) - 1);
    if (i >= len || text[i] != ':')
        return 0;
    i = skip_ws(text, len, i + 1);
    if (i >= len || text[i] != '[')
        return 0;
    i = skip_ws(text, len, i + 1);
    while (i >= len || text[i] != ']') {
        json_error_t jerr;
        json_t *doc;
        int r;

        if (i >= len || text[i] != '{')
            return 0;
        /* Without the EOF check the decoder stops right after the object's closing brace
         * and reports in position how many bytes it read. */
        doc = json_loadb(text + i, len - i, JSON_DISABLE_EOF_CHECK | JSON_REJECT_DUPLICATES, &jerr);
        if (!doc || jerr.position <= 0 || (size_t)jerr.position > len - i) {
            json_decref(doc);
            return 0;
        }
        i += (size_t)jerr.position;
        index++;
        r = cb ? cb(doc, index, data) : 0;
        json_decref(doc);
        if (r < 0)
            return r;
        i = skip_ws(text, len, i);
        if (i < len && text[i] == ',') {
            i = skip_ws(text, len, i + 1);
            if (i < len && text[i] == ']')
                return 0; /* a trailing comma: the whole-document parse names it */
        } else if (i >= len || text[i] != ']') {
            return 0;
        }
    }
    i = skip_ws(text, len, i + 1);
    if (i >= len || text[i] != '}')
        return 0;
    return skip_ws(text, len, i + 1) == len;
}

/* The whole-document path: any form, every error message. */
static int whole_docs(const char *path, const char *text, size_t len,
                      int (*cb)(json_t *doc, size_t index, void *data), void *data,
                      struct errbuf *eb)
{
    json_error_t jerr;
    json_t *root, *list;
    int r = 0;

    root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        errbuf_set(eb, "%s: invalid json at line %d column %d: %s", path, jerr.line, jerr.column,
                   jerr.text);
        return -EINVAL;
    }
    list = json_object_get(root, "schedules");
    if (list) {
        if (json_object_size(root) != 1) {
            errbuf_set(eb, "%s: a file with \"schedules\" may hold nothing else", path);
            r = -EINVAL;
            goto out;
        }
        if (!json_is_array(list)) {
            errbuf_set(eb, "%s: schedules: expected an array", path);
            r = -EINVAL;
            goto out;
        }
    } else if (!json_is_object(root)) {
        errbuf_set(eb, "%s: expected a schedule object or {\"schedules\": [...]}", path);
        r = -EINVAL;
        goto out;
    }
    for (size_t i = 0; i < (list ? json_array_size(list) : 1) && r >= 0; i++)
        r = cb(list ? json_array_get(list, i) : root, i + 1, data);
out:
    json_decref(root);
    return r;
}

/* Calls cb per schedule document of text; origin names it in errors (a file path). */
int schedule_text_foreach(const char *origin, const char *text, size_t len,
                          int (*cb)(json_t *doc, size_t index, void *data), void *data,
                          struct errbuf *eb)
{
    int r;

    /* A first streaming pass only checks the form and the syntax, calling nothing; the second
     * calls cb. Parsing twice costs a few milliseconds per megabyte; in exchange, a file that
     * is not of the usual form or is broken anywhere is handled by the whole-document path
     * alone, before cb has seen any of it, so both paths report the same errors in the same
     * order. */
    if (stream_docs(text, len, NULL, NULL) == 1) {
        r = stream_docs(text, len, cb, data);
        if (r == 0)
            r = -ENOMEM; /* the same text parsed a moment ago: only memory can fail */
        else if (r == 1)
            r = 0;
    } else {
        r = whole_docs(origin, text, len, cb, data, eb);
    }
    return r;
}

int schedule_file_foreach(const char *path, int (*cb)(json_t *doc, size_t index, void *data),
                          void *data, struct errbuf *eb)
{
    char *text = NULL;
    size_t len = 0;
    int r;

    r = read_whole_file(path, &text, &len, eb);
    if (r < 0)
        return r;
    r = schedule_text_foreach(path, text, len, cb, data, eb);
    free(text);
    return r;
}
