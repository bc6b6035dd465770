-- 002: schedules that are no longer defined.
--
-- maintq.schedules mirrors the definitions the scheduler loaded. When a schedule leaves the
-- schedule files, its row stays (with its last fire and status, and its fires in
-- schedule_fires, which has no foreign key) and is marked removed_at: the time the leader
-- loaded a set without it. A schedule that is defined again gets removed_at back to NULL.
-- `maintq schedules list` shows only rows with removed_at IS NULL unless asked for --all.

ALTER TABLE maintq.schedules ADD COLUMN removed_at timestamptz;
