/* maintq-scheduler's Postgres records: every tick (fired, skipped, missed, missed_window)
 * into maintq.schedule_fires, the schedule's row in maintq.schedules (definition on load,
 * next/last fire and status on every tick), and `replaced` marks. Writes are queued in
 * memory and retried whenever the connection comes back: firing never waits for Postgres.
 * Every statement is idempotent (ON CONFLICT DO NOTHING, monotonic updates), so a retry of
 * a statement that did run changes nothing. */
#pragma once

#include <stddef.h>
#include <stdint.h>

struct fire_log;
struct store;

/* Past this many queued records the oldest are dropped (and counted in a log line). */
#define FIRE_LOG_MAX_PENDING 100000

/* db is borrowed and must outlive fl's use; free the store before fl (store_free drops the
 * callbacks that point into fl). Returns 0 or -ENOMEM. */
int fire_log_new(struct store *db, struct fire_log **ret);
struct fire_log *fire_log_free(struct fire_log *fl);

/* A handled tick. outcome: fired, skipped, missed, missed_window; reason and job_id may be
 * NULL; next_us is the schedule's next fire (INT64_MIN when unknown). Strings are copied.
 * Returns 0 or -ENOMEM. */
int fire_log_tick(struct fire_log *fl, const char *name, int64_t tick_us, const char *outcome,
                  const char *reason, const char *job_id, int64_t next_us);

/* Marks an earlier fired tick as replaced by a newer one. */
int fire_log_replaced(struct fire_log *fl, const char *name, int64_t old_tick_us,
                      const char *reason);

/* Upserts a loaded schedule's row: cron, zone, definition (JSON text), paused (the file's
 * value), next fire. */
int fire_log_definition(struct fire_log *fl, const char *name, const char *cron,
                        const char *zone, const char *definition, int paused, int64_t next_us);

/* Sends every queued record that is not in flight (call when the store connects). */
void fire_log_flush(struct fire_log *fl);

/* Records queued or in flight. */
size_t fire_log_pending(const struct fire_log *fl);
