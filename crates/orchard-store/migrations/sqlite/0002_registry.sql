-- Model registry, SQLite dialect. Kept column-for-column in step with ../postgres/0002_registry.sql.
-- A registered model is keyed by its name; renaming it cascades to everything that refers to it.
CREATE TABLE registered_models (
    name                      TEXT PRIMARY KEY,
    creation_timestamp_ms     INTEGER NOT NULL,
    last_updated_timestamp_ms INTEGER NOT NULL,
    description               TEXT
);
CREATE TABLE registered_model_tags (
    name  TEXT NOT NULL REFERENCES registered_models(name) ON UPDATE CASCADE ON DELETE CASCADE,
    key   TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (name, key)
);
-- Versions are soft-deleted (current_stage = 'Deleted_Internal') so that their numbers are never reused.
-- `id` is a surrogate key for the version's tags: a rename then touches only this table's name column.
CREATE TABLE model_versions (
    id                        INTEGER PRIMARY KEY,
    name                      TEXT NOT NULL REFERENCES registered_models(name) ON UPDATE CASCADE ON DELETE CASCADE,
    version                   INTEGER NOT NULL,
    creation_timestamp_ms     INTEGER NOT NULL,
    last_updated_timestamp_ms INTEGER NOT NULL,
    description               TEXT,
    current_stage             TEXT NOT NULL DEFAULT 'None',
    source                    TEXT NOT NULL,
    storage_location          TEXT NOT NULL,
    run_id                    TEXT,
    run_link                  TEXT,
    status                    TEXT NOT NULL DEFAULT 'READY',
    status_message            TEXT,
    model_id                  TEXT,
    UNIQUE (name, version)
);
CREATE INDEX model_versions_by_update ON model_versions (last_updated_timestamp_ms DESC, name, version DESC);
CREATE TABLE model_version_tags (
    version_id INTEGER NOT NULL REFERENCES model_versions(id) ON DELETE CASCADE,
    key        TEXT NOT NULL,
    value      TEXT NOT NULL,
    PRIMARY KEY (version_id, key)
);
CREATE TABLE registered_model_aliases (
    name    TEXT NOT NULL REFERENCES registered_models(name) ON UPDATE CASCADE ON DELETE CASCADE,
    alias   TEXT NOT NULL,
    version INTEGER NOT NULL,
    PRIMARY KEY (name, alias)
);
