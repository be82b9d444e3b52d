//! The two engines, and the few places where their SQL differs.

/// Which engine a store runs on. The dialects differ in few places: these are they.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// A correlated sub-query giving `[[key, value], …]` as JSON text for the rows of `table` that belong to
    /// `owner`: one row per run instead of one per param or tag.
    pub(crate) fn json_pairs(self, table: &str, fk: &str, owner: &str) -> String {
        match self {
            Backend::Sqlite => {
                format!("(SELECT json_group_array(json_array(x.key, x.value)) FROM {table} x WHERE x.{fk} = {owner})")
            }
            Backend::Postgres => format!(
                "(SELECT COALESCE(json_agg(json_build_array(x.key, x.value)), '[]')::text FROM {table} x WHERE x.{fk} = {owner})"
            ),
        }
    }

    /// Like [`Backend::json_pairs`] for metric points: `[[key, value, timestamp, step, is_nan], …]`, the value as
    /// text that parses back to the exact same double (17 significant digits; "Inf"/"Infinity" for ±∞).
    pub(crate) fn json_metrics(self, table: &str, fk: &str, owner: &str) -> String {
        match self {
            Backend::Sqlite => format!(
                "(SELECT json_group_array(json_array(x.key, printf('%!.17g', x.value), x.timestamp, x.step, x.is_nan)) \
                 FROM {table} x WHERE x.{fk} = {owner})"
            ),
            Backend::Postgres => format!(
                "(SELECT COALESCE(json_agg(json_build_array(x.key, x.value::text, x.timestamp, x.step, x.is_nan)), '[]')::text \
                 FROM {table} x WHERE x.{fk} = {owner})"
            ),
        }
    }
}

impl Backend {
    /// A JSON text produced by a sub-query, placed inside another JSON value as JSON (not as a string).
    pub(crate) fn embed_json(self, expr: &str) -> String {
        match self {
            Backend::Sqlite => format!("json({expr})"),
            Backend::Postgres => format!("({expr})::json"),
        }
    }

    /// `[…fields…]`: one JSON array, to nest in another.
    pub(crate) fn json_array(self, fields: &str) -> String {
        match self {
            Backend::Sqlite => format!("json_array({fields})"),
            Backend::Postgres => format!("json_build_array({fields})"),
        }
    }

    /// `[[…fields of row 1…], …]` over the rows of the query, in `order`, as one JSON text (`[]` when none).
    pub(crate) fn json_array_agg(self, fields: &str, order: &str) -> String {
        match self {
            Backend::Sqlite => {
                format!("COALESCE(json_group_array(json_array({fields}) ORDER BY {order}), '[]')")
            }
            Backend::Postgres => format!(
                "COALESCE(json_agg(json_build_array({fields}) ORDER BY {order}), '[]')::text"
            ),
        }
    }
}
