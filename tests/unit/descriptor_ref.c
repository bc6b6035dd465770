/* The reference serialiser for the tests (see descriptor_ref.h): every field set on a
 * jansson object, dumped with the flags that define the canonical form. Kept exactly as
 * core/descriptor.c wrote it before the direct writer, so that any difference between the
 * two is a change of the canonical form -- which would break every signature. */
#include "descriptor_ref.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"

int descriptor_ref_serialise(const struct descriptor *d, bool with_sig, char **ret_text,
                             size_t *ret_len)
{
    char buf[CLOCK_RFC3339_MAX];
    json_t *o = json_object(), *b = json_object();
    int bad = !o || !b;

    if (!bad) {
        if (d->id[0])
            bad |= json_object_set_new_nocheck(o, "id", json_string(d->id));
        bad |= json_object_set_new_nocheck(o, "type", json_string(d->type));
        bad |= json_object_set_new_nocheck(o, "queue", json_string(d->queue));
        bad |= json_object_set_nocheck(o, "params", d->params);
        bad |= json_object_set_new_nocheck(o, "timeout_s", json_integer(d->timeout_s));
        bad |= json_object_set_new_nocheck(o, "max_attempts", json_integer(d->max_attempts));
        bad |= json_object_set_new_nocheck(b, "base_s", json_integer(d->backoff_base_s));
        bad |= json_object_set_new_nocheck(b, "max_s", json_integer(d->backoff_max_s));
        bad |= json_object_set_nocheck(o, "backoff", b);
        if (d->lock)
            bad |= json_object_set_new_nocheck(o, "lock", json_string(d->lock));
        if (d->unique_key) {
            bad |= json_object_set_new_nocheck(o, "unique_key", json_string(d->unique_key));
            bad |= json_object_set_new_nocheck(o, "unique_for_s", json_integer(d->unique_for_s));
        }
        if (d->schedule) {
            bad |= json_object_set_new_nocheck(o, "schedule", json_string(d->schedule));
            bad |= json_object_set_new_nocheck(
                o, "scheduled_for", json_string(clock_format_rfc3339_us(d->scheduled_for_us, buf)));
        }
        if (d->not_after_us != DESCRIPTOR_TIME_UNSET)
            bad |= json_object_set_new_nocheck(
                o, "not_after", json_string(clock_format_rfc3339_us(d->not_after_us, buf)));
        if (d->created_at_us != DESCRIPTOR_TIME_UNSET)
            bad |= json_object_set_new_nocheck(
                o, "created_at", json_string(clock_format_rfc3339_us(d->created_at_us, buf)));
        if (d->submitted_by)
            bad |= json_object_set_new_nocheck(o, "submitted_by", json_string(d->submitted_by));
        if (with_sig && d->sig)
            bad |= json_object_set_new_nocheck(o, "sig", json_string(d->sig));
    }
    char *text =
        bad ? NULL : json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(17));
    json_decref(b);
    json_decref(o);
    if (!text)
        return -ENOMEM;
    *ret_text = text;
    *ret_len = strlen(text);
    return 0;
}
