//! How values are stored and read back: rows' columns, doubles (NaN has no place in a SQLite REAL, so it is a
//! flag beside the value), and timestamps.

use sqlx::any::AnyRow;

use crate::error::Result;

/// Parses a double written by [`Backend::json_metrics`].
pub(crate) fn parse_stored_double(text: &str) -> f64 {
    match text {
        "Inf" | "Infinity" | "inf" => f64::INFINITY,
        "-Inf" | "-Infinity" | "-inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        t => t.parse().unwrap_or(f64::NAN),
    }
}

/// NaN cannot be stored in a SQLite REAL: store (0, is_nan = 1) instead.
pub(crate) fn stored_value(v: f64) -> (f64, i64) {
    if v.is_nan() {
        (0.0, 1)
    } else {
        (v, 0)
    }
}

/// Current wall-clock time in milliseconds since the epoch, the unit MLflow uses everywhere.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

pub(crate) fn get<'r, T>(row: &'r AnyRow, col: &str) -> Result<T>
where
    T: sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any>,
{
    use sqlx::Row;
    Ok(row.try_get(col)?)
}
