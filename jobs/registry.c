/* The job type registry: one static table, so adding a type is one line here plus its
 * file, and a test can walk every type (schema present, params checked). */
#include "job.h"

#include <stddef.h>
#include <string.h>

static const struct job_type *const job_types[] = {
    &job_type_noop,
    &job_type_sleep,
    &job_type_fail,
    &job_type_exec,
    NULL,
};

const struct job_type *job_type_find(const char *name)
{
    if (!name)
        return NULL;
    for (size_t i = 0; job_types[i]; i++)
        if (strcmp(job_types[i]->name, name) == 0)
            return job_types[i];
    return NULL;
}

const struct job_type *const *job_types_all(void)
{
    return job_types;
}
