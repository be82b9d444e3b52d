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

/// A column that is an INTEGER on PostgreSQL (which the driver reads as `i32`) and an integer on SQLite (`i64`).
pub(crate) fn int(row: &AnyRow, col: &str) -> Result<i64> {
    get::<i64>(row, col).or_else(|_| get::<i32>(row, col).map(i64::from))
}

/// Like [`int`], for a column that may be NULL.
pub(crate) fn optional_int(row: &AnyRow, col: &str) -> Result<Option<i64>> {
    get::<Option<i64>>(row, col).or_else(|_| get::<Option<i32>>(row, col).map(|v| v.map(i64::from)))
}

/// `T { field: get(row, "field")?, … }`: a record whose fields are read from the columns of the same names,
/// each name written once. The fields after `;` are given as written: those read otherwise, or not at all.
macro_rules! from_columns {
    ($row:expr, $T:ident { $($col:ident),+ $(; $($field:ident: $value:expr),* $(,)?)? }) => {
        $T {
            $($col: $crate::values::get($row, stringify!($col))?,)+
            $($($field: $value,)*)?
        }
    };
}
pub(crate) use from_columns;
