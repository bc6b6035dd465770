/* The Redis bookkeeping of a worker child's entries in flight (see inflight.c). */
#pragma once

#include "child.h"

/* Queues the finish batch to go at the end of this loop pass. */
void inflight_schedule_finish(struct child *c);

/* Sends the pending finish batch if none is in flight. */
void inflight_flush_finishes(struct child *c);

/* Resets the idle time of every entry this child holds (XCLAIM JUSTID), so no other worker
 * reclaims them, and asks whether any running job has been told to stop (cancel keys). */
void inflight_heartbeat(struct child *c);
