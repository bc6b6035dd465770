/* Schedule sets: loads every *.json file of a folder (sorted by name), a list of files, or a
 * text already in memory into one `struct schedule_set`, refusing the whole set at the first
 * bad definition or at a name defined twice, and owns what its schedules share (zones, file
 * names). The files are read by schedule_file.c, each document checked by schedule_check.c;
 * the decisions taken with a loaded schedule live in schedule_window.c, schedule_misfire.c
 * and schedule_tick.c. */
#include "schedule_internal.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int set_append(struct schedule_set *set, struct schedule *s)
{
    /* The capacity is implied by n: 8, then doubled each time n reaches a power of two. */
    if (set->n == 0 || (set->n >= 8 && (set->n & (set->n - 1)) == 0)) {
        size_t want = set->n == 0 ? 8 : set->n * 2;
        struct schedule **items = realloc(set->items, want * sizeof(*items));
        if (!items)
            return -ENOMEM;
        set->items = items;
    }
    set->items[set->n++] = s;
    return 0;
}

static int load_doc(json_t *doc, size_t index, void *data)
{
    struct load_ctx *cx = data;
    struct schedule *s = NULL;
    int r;

    cx->index = index;
    cx->name = NULL;
    r = schedule_from_json(cx, doc, &s);
    if (r < 0)
        return r;
    r = set_append(cx->set, s);
    if (r < 0)
        schedule_free(s);
    return r;
}

static int check_unique_names(const struct schedule_set *set, struct errbuf *eb);

/* Records origin (a file path) in the set, which schedules borrow it from. */
static int add_origin(struct schedule_set *set, const char *origin, const char **ret)
{
    char **files = realloc(set->files, (set->n_files + 1) * sizeof(*files));

    if (!files)
        return -ENOMEM;
    set->files = files;
    if (!(set->files[set->n_files] = strdup(origin)))
        return -ENOMEM;
    *ret = set->files[set->n_files++];
    return 0;
}

/* Loads one file's schedules and appends them to set. */
static int load_file(struct schedule_set *set, const char *path, struct errbuf *eb)
{
    struct load_ctx cx = {.set = set, .eb = eb};
    int r = add_origin(set, path, &cx.file);

    return r < 0 ? r : schedule_file_foreach(path, load_doc, &cx, eb);
}

int schedule_set_load_text(const char *origin, const char *text, size_t len,
                           struct schedule_set **ret, struct errbuf *eb)
{
    struct schedule_set *set = calloc(1, sizeof(*set));
    struct load_ctx cx = {.set = set, .eb = eb};
    int r;

    if (!set)
        return -ENOMEM;
    r = add_origin(set, origin, &cx.file);
    if (r >= 0)
        r = schedule_text_foreach(origin, text, len, load_doc, &cx, eb);
    if (r >= 0)
        r = check_unique_names(set, eb);
    if (r < 0) {
        schedule_set_free(set);
        return r;
    }
    *ret = set;
    return 0;
}

struct name_pos {
    const struct schedule *s;
    size_t pos;
};

static int name_pos_cmp(const void *a, const void *b)
{
    const struct name_pos *x = a, *y = b;
    int c = strcmp(x->s->name, y->s->name);

    if (c)
        return c;
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

/* Names must be unique in a set: they key the Redis dedupe, the job ids and the Postgres
 * rows. Sorting keeps this O(n log n) for sets of thousands; the later definition is the
 * one reported. */
static int check_unique_names(const struct schedule_set *set, struct errbuf *eb)
{
    struct name_pos *v;
    int r = 0;

    if (set->n < 2)
        return 0;
    v = calloc(set->n, sizeof(*v));
    if (!v)
        return -ENOMEM;
    for (size_t i = 0; i < set->n; i++)
        v[i] = (struct name_pos){set->items[i], i};
    qsort(v, set->n, sizeof(*v), name_pos_cmp);
    for (size_t i = 1; i < set->n; i++)
        if (strcmp(v[i - 1].s->name, v[i].s->name) == 0) {
            errbuf_set(eb, "%s: schedule \"%s\": name: already defined in %s", v[i].s->file,
                       v[i].s->name, v[i - 1].s->file);
            r = -EINVAL;
            break;
        }
    free(v);
    return r;
}

int schedule_set_load_files(const char *const *paths, size_t n, struct schedule_set **ret,
                            struct errbuf *eb)
{
    struct schedule_set *set = calloc(1, sizeof(*set));
    int r;

    if (!set)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        r = load_file(set, paths[i], eb);
        if (r < 0)
            goto fail;
    }
    r = check_unique_names(set, eb);
    if (r < 0)
        goto fail;
    *ret = set;
    return 0;
fail:
    schedule_set_free(set);
    return r;
}

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void strv_release(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

int schedule_set_load_dir(const char *dir, struct schedule_set **ret, struct errbuf *eb)
{
    DIR *dh = opendir(dir);
    char **paths = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    int r;

    if (!dh) {
        r = -errno;
        errbuf_set(eb, "%s: %s", dir, strerror(errno));
        return r;
    }
    while ((de = readdir(dh))) {
        size_t nl = strlen(de->d_name);
        struct stat st;
        char *p;

        /* Hidden files are editor droppings (.x.json.swp, .#x.json), not schedules. */
        if (de->d_name[0] == '.' || nl < 6 || strcmp(de->d_name + nl - 5, ".json") != 0)
            continue;
        if (asprintf(&p, "%s/%s", dir, de->d_name) < 0) {
            r = -ENOMEM;
            goto fail;
        }
        if (stat(p, &st) < 0 || !S_ISREG(st.st_mode)) {
            free(p);
            continue;
        }
        if (n == cap) {
            char **np;
            cap = cap ? cap * 2 : 16;
            np = realloc(paths, cap * sizeof(*np));
            if (!np) {
                free(p);
                r = -ENOMEM;
                goto fail;
            }
            paths = np;
        }
        paths[n++] = p;
    }
    closedir(dh);
    dh = NULL;
    if (n > 1)
        qsort(paths, n, sizeof(*paths), str_cmp);
    r = schedule_set_load_files((const char *const *)paths, n, ret, eb);
fail:
    if (dh)
        closedir(dh);
    strv_release(paths, n);
    return r;
}

const struct schedule *schedule_set_find(const struct schedule_set *set, const char *name)
{
    for (size_t i = 0; set && i < set->n; i++)
        if (strcmp(set->items[i]->name, name) == 0)
            return set->items[i];
    return NULL;
}

struct schedule_set *schedule_set_free(struct schedule_set *set)
{
    if (!set)
        return NULL;
    for (size_t i = 0; i < set->n; i++)
        schedule_free(set->items[i]);
    free(set->items);
    for (size_t i = 0; i < set->n_zones; i++)
        tz_free(set->zones[i]);
    free(set->zones);
    for (size_t i = 0; i < set->n_files; i++)
        free(set->files[i]);
    free(set->files);
    free(set);
    return NULL;
}
