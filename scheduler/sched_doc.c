/* Reads schedule documents back from their files (see sched_doc.h). A file holds one
 * schedule object or {"schedules": [...]}, as schedule.c loads them. */
#include "sched_doc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void sched_doc_cache_release(struct sched_doc_cache *cache)
{
    free(cache->path);
    json_decref(cache->byname);
    cache->path = NULL;
    cache->byname = NULL;
}

/* Keeps the compact text of each named document, not its tree: the text is a tenth of the
 * size, and it is all sched_doc_json hands out. */
static int index_one(json_t *doc, size_t index, void *data)
{
    json_t *byname = data;
    const char *name = json_string_value(json_object_get(doc, "name"));
    char *text;
    int r;

    if (!json_is_object(doc) || !name)
        return 0;
    text = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
    if (!text)
        return -ENOMEM;
    r = json_object_set_new(byname, name, json_string(text)) < 0 ? -ENOMEM : 0;
    free(text);
    return r;
}

static int cache_load(struct sched_doc_cache *cache, const char *path)
{
    json_t *byname;

    sched_doc_cache_release(cache);
    byname = json_object();
    cache->path = strdup(path);
    if (!byname || !cache->path || schedule_file_foreach(path, index_one, byname, NULL) < 0) {
        json_decref(byname);
        return -1;
    }
    cache->byname = byname;
    return 0;
}

char *sched_doc_json(const struct schedule *s, struct sched_doc_cache *cache)
{
    const char *text;

    if (!s->file)
        return NULL;
    if (!cache->path || strcmp(cache->path, s->file) != 0 || !cache->byname)
        if (cache_load(cache, s->file) < 0)
            return NULL;
    text = json_string_value(json_object_get(cache->byname, s->name));
    return text ? strdup(text) : NULL;
}
