//! A small builder for dynamic SQL: text plus positional arguments, bound in order.
//! Placeholders are written `$n`, which both PostgreSQL and sqlx's SQLite driver understand.

use sqlx::any::AnyArguments;
use sqlx::query::Query;
use sqlx::{Any, Executor};

use crate::error::Result;

/// A transaction on either engine.
pub(crate) type Tx<'a> = sqlx::Transaction<'a, Any>;

#[derive(Clone, Debug)]
pub(crate) enum Arg {
    Str(String),
    I64(i64),
    F64(f64),
    /// NULL in a text column, and in an integer one: PostgreSQL declares the type of every parameter, so a
    /// NULL says what it stands for (as binding a `None::<&str>` or `None::<i64>` does).
    NullStr,
    NullI64,
    Bytes(Vec<u8>),
}

impl From<&str> for Arg {
    fn from(s: &str) -> Arg {
        Arg::Str(s.to_string())
    }
}

impl From<&String> for Arg {
    fn from(s: &String) -> Arg {
        Arg::Str(s.clone())
    }
}

impl From<String> for Arg {
    fn from(s: String) -> Arg {
        Arg::Str(s)
    }
}

impl From<i64> for Arg {
    fn from(v: i64) -> Arg {
        Arg::I64(v)
    }
}

impl From<f64> for Arg {
    fn from(v: f64) -> Arg {
        Arg::F64(v)
    }
}

/// Flags are integers on both engines (SQLite has no boolean): 1 or 0.
impl From<bool> for Arg {
    fn from(v: bool) -> Arg {
        Arg::I64(i64::from(v))
    }
}

impl From<Option<&str>> for Arg {
    fn from(v: Option<&str>) -> Arg {
        v.map_or(Arg::NullStr, Arg::from)
    }
}

impl From<Option<i64>> for Arg {
    fn from(v: Option<i64>) -> Arg {
        v.map_or(Arg::NullI64, Arg::I64)
    }
}

/// Binds `args` to `$1, $2, …` in order.
fn bind_all<'q>(mut q: Query<'q, Any, AnyArguments<'q>>, args: &'q [Arg]) -> Query<'q, Any, AnyArguments<'q>> {
    for a in args {
        q = match a {
            Arg::Str(s) => q.bind(s.as_str()),
            Arg::I64(v) => q.bind(*v),
            Arg::F64(v) => q.bind(*v),
            Arg::NullStr => q.bind(None::<&str>),
            Arg::NullI64 => q.bind(None::<i64>),
            Arg::Bytes(v) => q.bind(v.as_slice()),
        };
    }
    q
}

/// A statement written whole, with its own `$1, $2, …`, and the arguments for them in order: what most reads
/// and writes are. Run on a pool or, as `&mut **tx`, inside a transaction.
pub(crate) fn statement<'q>(text: &'q str, args: &'q [Arg]) -> Query<'q, Any, AnyArguments<'q>> {
    bind_all(sqlx::query(text), args)
}

/// Runs a [`statement`]; returns how many rows it changed.
pub(crate) async fn exec<'c>(on: impl Executor<'c, Database = Any>, text: &str, args: &[Arg]) -> Result<u64> {
    Ok(statement(text, args).execute(on).await?.rows_affected())
}

#[derive(Default, Debug)]
pub(crate) struct Sql {
    pub text: String,
    args: Vec<Arg>,
}

impl Sql {
    pub fn new(text: &str) -> Sql {
        Sql {
            text: text.to_string(),
            args: Vec::new(),
        }
    }

    pub fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    /// Appends a placeholder for `arg` and remembers the argument.
    pub fn arg(&mut self, arg: Arg) -> &mut Self {
        self.args.push(arg);
        self.text.push('$');
        self.text.push_str(&self.args.len().to_string());
        self
    }

    pub fn str(&mut self, s: impl Into<String>) -> &mut Self {
        self.arg(Arg::Str(s.into()))
    }

    pub fn i64(&mut self, v: i64) -> &mut Self {
        self.arg(Arg::I64(v))
    }

    /// `($a, $b, …)` for an IN list.
    pub fn list<I: IntoIterator<Item = Arg>>(&mut self, items: I) -> &mut Self {
        self.text.push('(');
        let mut empty = true;
        for (i, a) in items.into_iter().enumerate() {
            if i > 0 {
                self.text.push_str(", ");
            }
            self.arg(a);
            empty = false;
        }
        // `IN ()` is a syntax error on both engines; `IN (NULL)` holds for no row, which is what an empty list means.
        self.text.push_str(if empty { "NULL)" } else { ")" });
        self
    }

    /// `(a, b, NULL), (c, d, e)` for a multi-row INSERT; `None` cells are written as NULL.
    pub fn values<R, C>(&mut self, rows: R) -> &mut Self
    where
        R: IntoIterator<Item = C>,
        C: IntoIterator<Item = Option<Arg>>,
    {
        for (i, row) in rows.into_iter().enumerate() {
            self.push(if i == 0 { "(" } else { ", (" });
            for (j, cell) in row.into_iter().enumerate() {
                if j > 0 {
                    self.push(", ");
                }
                match cell {
                    Some(a) => self.arg(a),
                    None => self.push("NULL"),
                };
            }
            self.push(")");
        }
        self
    }

    /// ` ORDER BY … LIMIT n OFFSET m`: the tail of every paged search.
    pub fn order_limit(&mut self, order: &str, limit: i64, offset: i64) -> &mut Self {
        self.push(" ORDER BY ")
            .push(order)
            .push(" LIMIT ")
            .i64(limit)
            .push(" OFFSET ")
            .i64(offset)
    }

    /// Appends another fragment, renumbering its placeholders to follow this one's.
    pub fn append(&mut self, other: Sql) -> &mut Self {
        let offset = self.args.len();
        let chars: Vec<char> = other.text.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            if chars[i] == '$' && chars.get(i + 1).is_some_and(|c| c.is_ascii_digit()) {
                let mut j = i + 1;
                while j < chars.len() && chars[j].is_ascii_digit() {
                    j += 1;
                }
                let n: usize = chars[i + 1..j]
                    .iter()
                    .collect::<String>()
                    .parse()
                    .unwrap_or(0);
                self.text.push('$');
                self.text.push_str(&(n + offset).to_string());
                i = j;
            } else {
                self.text.push(chars[i]);
                i += 1;
            }
        }
        self.args.extend(other.args);
        self
    }

    pub fn query(&self) -> Query<'_, Any, AnyArguments<'_>> {
        bind_all(sqlx::query(&self.text), &self.args)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn append_renumbers_placeholders() {
        let mut a = Sql::new("SELECT 1 WHERE x = ");
        a.str("a");
        let mut b = Sql::new(" AND y = ");
        b.i64(2).push(" AND z = ").i64(3);
        a.append(b);
        assert_eq!(a.text, "SELECT 1 WHERE x = $1 AND y = $2 AND z = $3");
        assert_eq!(a.args.len(), 3);
    }
}
