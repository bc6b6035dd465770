/* maintq-scheduler's Postgres records: every tick (fired, skipped, missed, missed_window)
 * into maintq.schedule_fires, the schedules' rows in maintq.schedules (all definitions of a
 * load in one statement, which also marks the schedules a leader's load lacks as removed;
 * next/last fire and status on every tick), and `replaced` marks. Writes are queued in
 * memory and retried whenever the connection comes back: firing never waits for Postgres.
 * Every statement is idempotent (ON CONFLICT DO NOTHING, monotonic updates), so a retry of
 * a statement that did run changes nothing. */
#pragma once

#include <stdbool.h>
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

/* A loaded set's rows go to maintq.schedules as one statement (one round trip and one
 * transaction however many schedules): fire_log_load_begin starts gathering,
 * fire_log_definition adds each schedule, fire_log_load_end queues the statement. When
 * leader is true the set is the truth about what exists: rows of schedules it lacks are
 * marked removed (removed_at = now(); the row and its fires stay) and rows it has are
 * unmarked; n_defined is the number of schedules in the set, and when fewer definitions
 * reached the batch (memory ran out) no removal is marked. A standby's load (leader false)
 * upserts definitions but leaves removed_at alone, since its files may lag behind.
 * fire_log_load_end returns 0, -EINVAL (no load begun) or -ENOMEM (nothing queued). */
void fire_log_load_begin(struct fire_log *fl);
int fire_log_load_end(struct fire_log *fl, bool leader, size_t n_defined);
/* Drops the load begun (the set was not installed): nothing is queued. */
void fire_log_load_cancel(struct fire_log *fl);

/* Adds a loaded schedule's row — cron, zone, definition (JSON text, inserted as it is),
 * paused (the file's value), next fire (INT64_MIN when unknown) — to the load begun;
 * outside one, upserts that row alone. Returns 0 or -ENOMEM. */
int fire_log_definition(struct fire_log *fl, const char *name, const char *cron,
                        const char *zone, const char *definition, int paused, int64_t next_us);

/* Marks removed the rows of schedules missing from the last complete load, and unmarks the
 * others: what a new leader does, since a standby's loads leave removed_at alone. Nothing
 * when no load completed yet. Returns 0 or -ENOMEM. */
int fire_log_mark_removed(struct fire_log *fl);

/* Sends every queued record that is not in flight (call when the store connects). */
void fire_log_flush(struct fire_log *fl);

/* Records queued or in flight. */
size_t fire_log_pending(const struct fire_log *fl);
