-- Metric histories pre-reduced for charts (see src/metric_tiles.rs): per series (run, key), level and row
-- number, up to 32 tiles packed in `data`. Level 0 holds one tile for the whole series. Series logged before
-- this migration get their tiles at their next point; until then charts read their points.
CREATE TABLE metric_tiles (
    run_uuid TEXT NOT NULL REFERENCES runs(run_uuid),
    key      TEXT NOT NULL,
    level    INTEGER NOT NULL,
    page     INTEGER NOT NULL,
    data     BLOB NOT NULL,
    PRIMARY KEY (run_uuid, key, level, page)
) WITHOUT ROWID;
