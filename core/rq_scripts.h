/* The Lua scripts that make each queue transition atomic in Redis. Every script takes its
 * fixed keys in KEYS and builds per-queue keys from the prefix (all keys of a deployment
 * share the `{maintq}` hash tag, so they live in one cluster slot).
 *
 * Stream entry fields: d = descriptor JSON, n = attempt number (1-based), m = max attempts,
 * r = optional note (why this entry exists: "reclaimed ...", "dlq retry").
 * Delayed members (sorted set scored by due time in ms): "queue\nattempt\nmax\ndescriptor". */
#pragma once

/* KEYS: none. ARGV: prefix, then per job 6 values: queue, job id, descriptor, max attempts,
 * delay ms (0 = now), unique window ms (0 = not unique; the unique key is the 7th value)...
 * exactly: queue, id, descriptor, max, delay_ms, unique_ms, unique_key (7 per job).
 * Returns per job the id that stands for it: its own, or the earlier job's id when a unique
 * key is still inside its window. */
extern const char rq_lua_submit[];

/* KEYS: delayed, dead. ARGV: prefix, limit. Moves due members into their streams.
 * Returns {moved, next_due_ms or -1, now_ms}. */
extern const char rq_lua_promote[];

/* KEYS: delayed, dead. ARGV: group, then per entry: stream, entry id, action, lock key
 * ("" = none), lock token, and after those for action retry or delay: delay ms, delayed
 * member; for dead: descriptor, attempt, max, error; for ack nothing more.
 * An entry is acted on only if acknowledging it succeeds, i.e. it was still pending: the
 * reclaim script acknowledges every entry it takes over in the same call, so a pending
 * entry is still the finisher's. (Should Redis lose its last writes, an entry may be
 * delivered again while its first consumer still runs it; then whichever finishes first
 * acts, and the other's row for the same attempt is a no-op.) The lock is released if this
 * token still holds it.
 * Finished entries leave the stream (trimmed below the oldest pending entry, deleted
 * above it). Returns per entry 1 (done) or 0 (not ours any more). */
extern const char rq_lua_finish[];

/* KEYS: stream. ARGV: group, consumer, min idle ms, count, start id. Claims entries idle
 * longer than min idle (their consumer died), re-adds each as the next attempt with a note,
 * and acknowledges + deletes the old one. Returns {next start id, reclaimed count}. */
extern const char rq_lua_reclaim[];

/* KEYS: lock, fence counter. ARGV: token, ttl ms. Returns the fencing number (>= 1) or 0
 * when the lock is held by someone else. */
extern const char rq_lua_lock_acquire[];

/* KEYS: lock. ARGV: token, ttl ms. Returns 1 when renewed, 0 when the token lost it. */
extern const char rq_lua_lock_renew[];

/* KEYS: lock. ARGV: token. Compare-and-delete. Returns 1 or 0. */
extern const char rq_lua_lock_release[];

/* KEYS: dead. ARGV: prefix, dead entry id. Moves one dead-letter entry back onto its queue
 * as the next attempt with a fresh budget of the descriptor's max_attempts (attempt numbers
 * continue, so the earlier rows stay and the new ones are distinct). Returns the new
 * stream entry id, or nil when there is no such entry. */
extern const char rq_lua_dlq_retry[];

/* The scheduler's tick. KEYS: fired (<prefix>:fired:<schedule>:<fire ms>), last
 * (<prefix>:sched:last), paused (<prefix>:sched:paused), stream (<prefix>:q:<queue>), delayed,
 * last fired (<prefix>:sched:fired).
 * ARGV: schedule name, fire ms, mode (fire | skip), paused default ("0" or "1" from the
 * schedule file; "" = do not look at paused), job id, descriptor, max attempts, queue,
 * delay ms (jitter; 0 = into the stream now), dedupe ttl ms, record last ("1" | "0").
 * mode fire: unless paused (the paused hash's value for the schedule wins over the file's),
 * claims the tick with SET fired job_id NX PX ttl; only the first claim of a tick adds the
 * job (stream entry n=1, or the delayed set at server time + delay) and raises the last
 * fired hash's field to fire ms (whose job id the concurrency policies ask about), so
 * schedulers that hand over, or one that retries after losing a reply, never double a tick.
 * mode skip: only the last-tick bookkeeping (a tick handled without a job: outside its
 * window, forbidden). With record last "1" the last hash's field for the schedule is raised
 * to fire ms (never lowered: catch-up ticks may arrive out of order); it says up to where
 * ticks were handled, which is where a new leader's misfire plan starts. Returns 1 fired,
 * 0 duplicate (the tick was already fired: nothing changed), 2 paused (not fired; last
 * recorded), 3 skip recorded. */
extern const char rq_lua_fire[];
