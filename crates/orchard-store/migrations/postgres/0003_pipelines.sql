-- Pipeline runs, postgres dialect. Kept column-for-column in step with ../sqlite/0003_pipelines.sql.
-- A pipeline run is one `orchard repro` (run here, or queued for workers); each of its stages has a stage run.
CREATE TABLE pipeline_runs (
    run_id          TEXT PRIMARY KEY,
    project         TEXT NOT NULL,
    targets         TEXT NOT NULL,
    overrides       TEXT NOT NULL,
    options         TEXT NOT NULL,
    status          TEXT NOT NULL,
    mode            TEXT NOT NULL,
    tracking_run_id TEXT,
    schedule        TEXT,
    created_ms      BIGINT NOT NULL,
    start_ms        BIGINT,
    end_ms          BIGINT
);
CREATE INDEX pipeline_runs_created ON pipeline_runs (created_ms);
-- Stage runs are leased by workers: a worker owns one while lease_until_ms is in the future and renews it
-- with heartbeats; an expired lease is taken over by another worker.
CREATE TABLE stage_runs (
    run_id          TEXT NOT NULL REFERENCES pipeline_runs(run_id) ON DELETE CASCADE,
    stage           TEXT NOT NULL,
    position        INTEGER NOT NULL,
    status          TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    exit_code       INTEGER,
    error           TEXT,
    start_ms        BIGINT,
    end_ms          BIGINT,
    stdout          TEXT NOT NULL DEFAULT '',
    stderr          TEXT NOT NULL DEFAULT '',
    tracking_run_id TEXT,
    worker          TEXT,
    lease_until_ms  BIGINT,
    PRIMARY KEY (run_id, stage)
);
CREATE INDEX stage_runs_status ON stage_runs (run_id, status);
CREATE INDEX stage_runs_waiting ON stage_runs (status);
-- Which stages of the same run must succeed first.
CREATE TABLE stage_run_deps (
    run_id          TEXT NOT NULL,
    stage           TEXT NOT NULL,
    upstream        TEXT NOT NULL,
    PRIMARY KEY (run_id, stage, upstream),
    FOREIGN KEY (run_id, stage) REFERENCES stage_runs(run_id, stage) ON DELETE CASCADE
);
-- Cron schedules that `orchard server` turns into queued pipeline runs.
CREATE TABLE pipeline_schedules (
    name            TEXT PRIMARY KEY,
    cron            TEXT NOT NULL,
    project         TEXT NOT NULL,
    targets         TEXT NOT NULL,
    overrides       TEXT NOT NULL,
    enabled         INTEGER NOT NULL DEFAULT 1,
    next_ms         BIGINT NOT NULL,
    created_ms      BIGINT NOT NULL
);
