/* Reads schedule documents back from their files (see sched_doc.h). A file holds one
 * schedule object or {"schedules": [...]}, as schedule.c loads them. */
#include "sched_doc.h"

#include <stdlib.h>
#include <string.h>

void sched_doc_cache_release(struct sched_doc_cache *cache)
{
    free(cache->path);
    json_decref(cache->byname);
    cache->path = NULL;
    cache->byname = NULL;
}

static void index_one(json_t *byname, json_t *obj)
{
    const char *name = json_string_value(json_object_get(obj, "name"));

    if (json_is_object(obj) && name)
        json_object_set(byname, name, obj);
}

static int cache_load(struct sched_doc_cache *cache, const char *path)
{
    json_t *root, *list, *byname;
    size_t i;
    json_t *v;

    sched_doc_cache_release(cache);
    root = json_load_file(path, JSON_REJECT_DUPLICATES, NULL);
    if (!root)
        return -1;
    byname = json_object();
    cache->path = strdup(path);
    if (!byname || !cache->path) {
        json_decref(byname);
        json_decref(root);
        return -1;
    }
    list = json_object_get(root, "schedules");
    if (json_is_array(list)) {
        json_array_foreach(list, i, v)
            index_one(byname, v);
    } else {
        index_one(byname, root);
    }
    json_decref(root);
    cache->byname = byname;
    return 0;
}

char *sched_doc_json(const struct schedule *s, struct sched_doc_cache *cache)
{
    json_t *obj;

    if (!s->file)
        return NULL;
    if (!cache->path || strcmp(cache->path, s->file) != 0 || !cache->byname)
        if (cache_load(cache, s->file) < 0)
            return NULL;
    obj = json_object_get(cache->byname, s->name);
    if (!obj)
        return NULL;
    return json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS);
}
