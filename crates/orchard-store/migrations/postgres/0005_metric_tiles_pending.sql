-- Finite points logged since the tiles were last brought up to date (see src/metric_tiles.rs). The log writer
-- adds each point here in the transaction that stores it; a later pass folds them into `metric_tiles` and
-- deletes them in one transaction, so a point is in the tiles or here, never both and never neither. Charts read
-- both, a series at a time. Small by design (a pass runs every quarter second while points arrive), so it
-- has no index to keep up beside the rows: a chart scans it.
CREATE TABLE metric_tiles_pending (
    id       BIGSERIAL        PRIMARY KEY,
    run_uuid TEXT             NOT NULL,
    key      TEXT             NOT NULL,
    step     BIGINT           NOT NULL,
    -- The value's IEEE 754 bits as an integer: exact through the JSON a pass reads the queue as.
    bits     BIGINT           NOT NULL
);
