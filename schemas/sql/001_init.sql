-- 001_init: the results store of DESIGN.md, in schema "maintq".
--
-- job_runs        one row per attempt of a job, written by the worker when the attempt ends
--                 (ok, warning, critical, failed, timeout, cancelled) or by whoever decides a
--                 job will not run (dead, skipped, missed_window). UNIQUE (job_id, attempt)
--                 makes a redelivered entry's second write a no-op (INSERT ... ON CONFLICT
--                 DO NOTHING), so the queue may deliver twice and the history still says once.
--                 The hot path writes this table only.
-- jobs            a view: the latest attempt of each job, for `maintq status`. Because it is
--                 derived, there is no second row to keep in step, and a worker that finishes
--                 a reclaimed, older attempt late cannot overwrite what a newer attempt
--                 recorded: the higher attempt number always wins.
-- schedules       the loaded schedule definitions with their next and last fire and the last
--                 status, written by the scheduler, for queries and `maintq schedules`.
-- schedule_fires  every tick the scheduler handled: fired, or why not (skipped by the
--                 concurrency policy, missed after downtime, outside its maintenance window,
--                 replaced). UNIQUE (schedule, fire_at) records a tick once even when two
--                 schedulers hand over, so "what should have run last night, and did it?"
--                 is one query.
--
-- The worker writes rows in batches, one INSERT per batch, and the same statement sends
-- one NOTIFY on channel maintq_results per batch (not per row: at tens of thousands of rows
-- a second, a per-row notification would cost more than the row). `maintq submit --wait`
-- listens there and re-reads its job when woken, so it returns the moment a result commits.
--
-- job_runs is the hot path, so it carries only the indexes the queries need: the primary
-- key (job_id, attempt) (idempotent writes, `maintq status`, the jobs view), finish time
-- (every `maintq results`), type, schedule, and non-ok statuses (most rows are ok; the
-- question is "what failed?"). A queue filter reads the finish-time index.
--
-- Status and outcome words are CHECK constraints rather than enums: adding one later is an
-- ALTER of a constraint, not of a type that every query depends on.

CREATE SCHEMA IF NOT EXISTS maintq;

CREATE TABLE maintq.job_runs (
    job_id        uuid NOT NULL,
    attempt       integer NOT NULL CHECK (attempt >= 1),
    type          text NOT NULL,
    queue         text NOT NULL DEFAULT 'default',
    schedule      text,                      -- null for ad-hoc jobs
    scheduled_for timestamptz,               -- the tick a scheduled job belongs to
    status        text NOT NULL CHECK (status IN ('ok', 'warning', 'critical', 'failed',
                      'timeout', 'cancelled', 'dead', 'skipped', 'missed_window')),
    started_at    timestamptz,               -- null when the job never started
    finished_at   timestamptz NOT NULL,
    duration_ms   bigint GENERATED ALWAYS AS
                      ((extract(epoch FROM (finished_at - started_at)) * 1000)::bigint) STORED,
    worker        text,                      -- consumer name, host:pid
    params        jsonb NOT NULL DEFAULT '{}',
    result        jsonb,                     -- metrics and message from the handler
    error         text,
    lock_fence    bigint,                    -- fencing number of the lock the run held
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (job_id, attempt)
);

CREATE INDEX job_runs_finished_at ON maintq.job_runs (finished_at DESC);
CREATE INDEX job_runs_type_finished_at ON maintq.job_runs (type, finished_at DESC);
CREATE INDEX job_runs_status_finished_at ON maintq.job_runs (status, finished_at DESC)
    WHERE status <> 'ok';
CREATE INDEX job_runs_schedule_finished_at ON maintq.job_runs (schedule, finished_at DESC)
    WHERE schedule IS NOT NULL;

CREATE VIEW maintq.jobs AS
    SELECT DISTINCT ON (job_id)
           job_id, attempt, type, queue, schedule, scheduled_for, status, started_at,
           finished_at, duration_ms, worker, params, result, error, lock_fence
      FROM maintq.job_runs
     ORDER BY job_id, attempt DESC;

CREATE TABLE maintq.schedules (
    name          text PRIMARY KEY,
    cron          text NOT NULL,
    zone          text NOT NULL DEFAULT 'UTC',   -- IANA time zone name
    definition    jsonb NOT NULL,                -- the whole validated schedule document
    paused        boolean NOT NULL DEFAULT false,
    next_fire_at  timestamptz,
    last_fire_at  timestamptz,
    last_status   text,
    updated_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE maintq.schedule_fires (
    schedule      text NOT NULL,                 -- no foreign key: history outlives a schedule
    fire_at       timestamptz NOT NULL,
    outcome       text NOT NULL CHECK (outcome IN ('fired', 'skipped', 'missed',
                      'missed_window', 'replaced')),
    reason        text,
    job_id        uuid,                          -- the job a fire made, null otherwise
    recorded_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (schedule, fire_at)
);

CREATE INDEX schedule_fires_fire_at ON maintq.schedule_fires (fire_at DESC);
