//! MLflow's search grammar: filter strings (`metrics.acc > 0.9 AND params.model = 'gbt'`), `order_by` entries
//! (`metrics.acc DESC`) and page tokens.
//!
//! A small hand-written lexer and parser (MLflow itself leans on an SQL tokenizer); every error names the
//! 1-based column where the input went wrong. The result is the store's typed [`Clause`] list, which the
//! store turns into SQL — nothing is matched in memory.

use base64::Engine;
use orchard_store::query::{Attribute, Clause, Comparator, DatasetField, Field, OrderBy, Value};

/// A syntax or validation error in a filter or order_by string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SearchError {
    pub message: String,
}

fn err<T>(message: impl Into<String>) -> Result<T, SearchError> {
    Err(SearchError {
        message: message.into(),
    })
}

/// What kind of thing is searched: decides the prefixes, attribute keys and comparators allowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Searched {
    Runs,
    Experiments,
    LoggedModels,
    RegisteredModels,
    ModelVersions,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Metric,
    Param,
    Tag,
    Attribute,
    Dataset,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Metric => "metric",
            Kind::Param => "parameter",
            Kind::Tag => "tag",
            Kind::Attribute => "attribute",
            Kind::Dataset => "dataset",
        }
    }
}

impl Searched {
    fn kind_of_prefix(self, prefix: &str) -> Option<Kind> {
        let kind = match prefix {
            "metric" | "metrics" => Kind::Metric,
            "parameter" | "parameters" | "param" | "params" => Kind::Param,
            "tag" | "tags" => Kind::Tag,
            "attribute" | "attributes" | "attr" => Kind::Attribute,
            "run" if self == Searched::Runs => Kind::Attribute,
            "dataset" | "datasets" if self == Searched::Runs => Kind::Dataset,
            _ => return None,
        };
        match (self, kind) {
            (
                Searched::Experiments | Searched::RegisteredModels | Searched::ModelVersions,
                Kind::Metric | Kind::Param | Kind::Dataset,
            ) => None,
            _ => Some(kind),
        }
    }

    fn valid_prefixes(self) -> &'static str {
        match self {
            Searched::Runs => "['metric', 'parameter', 'tag', 'attribute', 'dataset']",
            Searched::Experiments => "['attribute', 'tag']",
            Searched::LoggedModels => "['metric', 'parameter', 'tag', 'attribute']",
            Searched::RegisteredModels | Searched::ModelVersions => "('attribute', 'tag', 'tags')",
        }
    }

    /// Attribute keys usable in filters, with whether they are numeric.
    fn filter_attribute(self, key: &str) -> Option<Attribute> {
        use Attribute::*;
        Some(match (self, key) {
            (Searched::Runs, "run_id") => RunId,
            (Searched::Runs, "run_name" | "run name" | "Run name" | "Run Name") => RunName,
            (Searched::Runs, "status") => Status,
            (Searched::Runs, "start_time" | "created" | "Created") => StartTime,
            (Searched::Runs, "end_time") => EndTime,
            (Searched::Runs, "artifact_uri") => ArtifactUri,
            (Searched::Runs, "user_id") => UserId,
            (Searched::Experiments, "name") => Name,
            (Searched::Experiments, "creation_time") => CreationTime,
            (Searched::Experiments, "last_update_time") => LastUpdateTime,
            (Searched::LoggedModels, "name") => Name,
            (Searched::LoggedModels, "model_id") => ModelId,
            (Searched::LoggedModels, "model_type") => ModelType,
            (Searched::LoggedModels, "status") => Status,
            (Searched::LoggedModels, "source_run_id") => SourceRunId,
            (
                Searched::LoggedModels,
                "creation_time" | "creation_timestamp" | "creation_timestamp_ms",
            ) => CreationTime,
            (Searched::LoggedModels, "last_updated_timestamp" | "last_updated_timestamp_ms") => {
                LastUpdateTime
            }
            (Searched::RegisteredModels, "name") => Name,
            (Searched::ModelVersions, "name") => Name,
            (Searched::ModelVersions, "run_id") => RunId,
            (Searched::ModelVersions, "source_path") => SourcePath,
            (Searched::ModelVersions, "version_number") => VersionNumber,
            _ => return None,
        })
    }

    fn order_attribute(self, key: &str) -> Option<Attribute> {
        use Attribute::*;
        Some(match (self, key) {
            (Searched::Runs, "run name" | "Run name" | "Run Name") => return None,
            (Searched::Experiments | Searched::LoggedModels, "experiment_id") => ExperimentId,
            (Searched::RegisteredModels | Searched::ModelVersions, "name") => Name,
            (Searched::RegisteredModels, "timestamp" | "last_updated_timestamp") => LastUpdateTime,
            (Searched::ModelVersions, "version_number") => VersionNumber,
            (Searched::ModelVersions, "creation_timestamp") => CreationTime,
            (Searched::ModelVersions, "last_updated_timestamp" | "timestamp") => LastUpdateTime,
            // The registry orders by these only (its filter attributes are not sort keys).
            (Searched::RegisteredModels | Searched::ModelVersions, _) => return None,
            _ => return self.filter_attribute(key),
        })
    }

    fn attribute_keys(self) -> &'static str {
        match self {
            Searched::Runs => "run_id, run_name, status, start_time, end_time, artifact_uri, user_id, created",
            Searched::Experiments => "name, creation_time, last_update_time",
            Searched::LoggedModels => {
                "name, model_id, model_type, status, source_run_id, creation_timestamp, last_updated_timestamp"
            }
            Searched::RegisteredModels => "name (filter); name, timestamp, last_updated_timestamp (order_by)",
            Searched::ModelVersions => {
                "name, run_id, source_path, version_number (filter); name, version_number, creation_timestamp, \
                 last_updated_timestamp (order_by)"
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// Lexer

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    /// A bare word: identifiers (`metrics.acc`) and keywords (`AND`, `LIKE`).
    Word(String),
    /// A quoted string, with the quote character used.
    Quoted(String, char),
    Number(f64),
    Op(&'static str),
    LParen,
    RParen,
    Comma,
}

#[derive(Clone, Debug)]
struct Token {
    tok: Tok,
    /// 1-based column of the first character.
    col: usize,
    /// 1-based column just past the last character.
    end: usize,
    /// The source text, for messages.
    text: String,
}

fn lex(input: &str) -> Result<Vec<Token>, SearchError> {
    let chars: Vec<char> = input.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let tok = match c {
            '(' => {
                i += 1;
                Tok::LParen
            }
            ')' => {
                i += 1;
                Tok::RParen
            }
            ',' => {
                i += 1;
                Tok::Comma
            }
            '\'' | '"' | '`' => {
                // No escape processing (as MLflow): a backslash only keeps the next quote from closing.
                let mut j = i + 1;
                let mut s = String::new();
                loop {
                    match chars.get(j) {
                        None => {
                            return err(format!(
                                "Unterminated string starting at column {}",
                                start + 1
                            ))
                        }
                        Some('\\') if chars.get(j + 1) == Some(&c) => {
                            s.push('\\');
                            s.push(c);
                            j += 2;
                        }
                        Some(&q) if q == c => break,
                        Some(&other) => {
                            s.push(other);
                            j += 1;
                        }
                    }
                }
                i = j + 1;
                Tok::Quoted(s, c)
            }
            '=' | '!' | '<' | '>' => {
                let two: String = chars[i..chars.len().min(i + 2)].iter().collect();
                let op = match two.as_str() {
                    "!=" => "!=",
                    "<=" => "<=",
                    ">=" => ">=",
                    "<>" => "<>",
                    "==" => "==",
                    _ => match c {
                        '=' => "=",
                        '<' => "<",
                        '>' => ">",
                        _ => {
                            return err(format!("Unexpected character '!' at column {}", start + 1))
                        }
                    },
                };
                i += op.len();
                Tok::Op(op)
            }
            c if c.is_ascii_digit()
                || ((c == '-' || c == '.') && next_starts_number(&chars, i)) =>
            {
                let mut j = i;
                if chars[j] == '-' {
                    j += 1;
                }
                while j < chars.len() && (chars[j].is_ascii_digit() || chars[j] == '.') {
                    j += 1;
                }
                if j < chars.len() && (chars[j] == 'e' || chars[j] == 'E') {
                    let mut k = j + 1;
                    if k < chars.len() && (chars[k] == '-' || chars[k] == '+') {
                        k += 1;
                    }
                    if k < chars.len() && chars[k].is_ascii_digit() {
                        j = k;
                        while j < chars.len() && chars[j].is_ascii_digit() {
                            j += 1;
                        }
                    }
                }
                if j < chars.len() && (chars[j].is_alphanumeric() || chars[j] == '_') {
                    // `1abc` is neither a number nor a name.
                    while j < chars.len() && is_word_char(chars[j]) {
                        j += 1;
                    }
                    let text: String = chars[i..j].iter().collect();
                    return err(format!("Invalid token '{text}' at column {}", start + 1));
                }
                let text: String = chars[i..j].iter().collect();
                i = j;
                match text.parse::<f64>() {
                    Ok(n) => Tok::Number(n),
                    Err(_) => {
                        return err(format!("Invalid number '{text}' at column {}", start + 1))
                    }
                }
            }
            c if c.is_alphabetic() || c == '_' => {
                let mut j = i;
                while j < chars.len() && is_word_char(chars[j]) {
                    j += 1;
                }
                let text: String = chars[i..j].iter().collect();
                i = j;
                Tok::Word(text)
            }
            other => {
                return err(format!(
                    "Unexpected character '{other}' at column {}",
                    start + 1
                ))
            }
        };
        out.push(Token {
            tok,
            col: start + 1,
            end: i + 1,
            text: chars[start..i].iter().collect(),
        });
    }
    Ok(out)
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '.' | '-' | ':' | '/')
}

fn next_starts_number(chars: &[char], i: usize) -> bool {
    match (chars[i], chars.get(i + 1)) {
        ('-', Some(d)) if d.is_ascii_digit() => true,
        ('-', Some('.')) => chars.get(i + 2).is_some_and(|d| d.is_ascii_digit()),
        ('.', Some(d)) => d.is_ascii_digit(),
        _ => false,
    }
}

// ---------------------------------------------------------------------------------------------------------
// Parser

struct Parser<'a> {
    toks: Vec<Token>,
    pos: usize,
    input: &'a str,
    searched: Searched,
}

/// An identifier resolved to what it names.
struct Ident {
    kind: Kind,
    key: String,
    col: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<&Token> {
        self.toks.get(self.pos)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    /// Column for "ran out of input" errors.
    fn end_col(&self) -> usize {
        self.input.chars().count() + 1
    }

    fn keyword(&self, t: &Token, kw: &str) -> bool {
        matches!(&t.tok, Tok::Word(w) if w.eq_ignore_ascii_case(kw))
    }

    /// `prefix.key`, `prefix."quoted key"`, `` prefix.`quoted key` `` or a bare attribute name.
    fn identifier(&mut self) -> Result<Ident, SearchError> {
        let Some(t) = self.next() else {
            return err(format!(
                "Expected an identifier at column {}",
                self.end_col()
            ));
        };
        let col = t.col;
        let (prefix, key) = match &t.tok {
            Tok::Word(w) => match w.split_once('.') {
                Some((prefix, "")) => {
                    // `metrics."my key"`: the key is the quoted token right after the dot.
                    let key = match self.peek() {
                        Some(Token {
                            tok: Tok::Quoted(s, _),
                            col: c,
                            ..
                        }) if *c == t.end => s.clone(),
                        _ => return err(format!("Expected a key after '{w}' at column {}", t.end)),
                    };
                    self.pos += 1;
                    (Some(prefix.to_string()), key)
                }
                Some((prefix, rest)) => (Some(prefix.to_string()), unquote(rest)),
                None => (None, w.clone()),
            },
            // A quoted bare attribute, e.g. `"Run name"`.
            Tok::Quoted(s, '`' | '"') => (None, s.clone()),
            _ => {
                return err(format!(
                    "Expected an identifier at column {col}, found '{}'",
                    t.text
                ))
            }
        };
        let prefix = prefix.map(|p| p.trim_matches('`').to_string());
        let kind = match &prefix {
            None => Kind::Attribute,
            Some(p) => match self.searched.kind_of_prefix(p) {
                Some(k) => k,
                None => {
                    return err(format!(
                        "Invalid entity type '{p}' at column {col}. Valid values are {}",
                        self.searched.valid_prefixes()
                    ))
                }
            },
        };
        if key.is_empty() {
            return err(format!("Empty key at column {col}"));
        }
        Ok(Ident { kind, key, col })
    }

    fn comparator(&mut self) -> Result<(Comparator, usize), SearchError> {
        let Some(t) = self.next() else {
            return err(format!(
                "Expected a comparator at column {}",
                self.end_col()
            ));
        };
        let cmp = match &t.tok {
            Tok::Op("=") => Comparator::Eq,
            Tok::Op("!=") => Comparator::Ne,
            Tok::Op("<") => Comparator::Lt,
            Tok::Op("<=") => Comparator::Le,
            Tok::Op(">") => Comparator::Gt,
            Tok::Op(">=") => Comparator::Ge,
            Tok::Word(w) if w.eq_ignore_ascii_case("LIKE") => Comparator::Like,
            Tok::Word(w) if w.eq_ignore_ascii_case("ILIKE") => Comparator::ILike,
            Tok::Word(w) if w.eq_ignore_ascii_case("IN") => Comparator::In,
            Tok::Word(w) if w.eq_ignore_ascii_case("NOT") => match self.next() {
                Some(n) if self.keyword(&n, "IN") => Comparator::NotIn,
                _ => return err(format!("Expected 'IN' after 'NOT' at column {}", t.end)),
            },
            Tok::Word(w) if w.eq_ignore_ascii_case("IS") => {
                let n = self.next();
                match n {
                    Some(n) if self.keyword(&n, "NULL") => Comparator::IsNull,
                    Some(n) if self.keyword(&n, "NOT") => match self.next() {
                        Some(m) if self.keyword(&m, "NULL") => Comparator::IsNotNull,
                        _ => {
                            return err(format!(
                                "Expected 'NULL' after 'IS NOT' at column {}",
                                n.end
                            ))
                        }
                    },
                    _ => {
                        return err(format!(
                            "Expected 'NULL' or 'NOT NULL' after 'IS' at column {}",
                            t.end
                        ))
                    }
                }
            }
            _ => {
                return err(format!(
                    "Invalid comparator '{}' at column {}",
                    t.text, t.col
                ))
            }
        };
        Ok((cmp, t.col))
    }

    fn value(&mut self, cmp: Comparator) -> Result<(Value, Token), SearchError> {
        let Some(t) = self.next() else {
            return err(format!("Expected a value at column {}", self.end_col()));
        };
        let v = match &t.tok {
            Tok::Number(n) => Value::Num(*n),
            Tok::Quoted(s, '\'' | '"') => Value::Str(s.clone()),
            Tok::LParen if matches!(cmp, Comparator::In | Comparator::NotIn) => {
                let mut items = Vec::new();
                loop {
                    match self.next() {
                        Some(Token { tok: Tok::Quoted(s, '\'' | '"'), .. }) => items.push(s),
                        Some(Token { tok: Tok::RParen, .. }) if items.is_empty() => {
                            return err(format!(
                                "While parsing a list in the query, expected a non-empty list of string values, but got empty list (column {})",
                                t.col
                            ))
                        }
                        Some(other) => {
                            return err(format!(
                                "While parsing a list in the query, expected string value, punctuation, or whitespace, but got '{}' at column {}",
                                other.text, other.col
                            ))
                        }
                        None => return err(format!("Unclosed list starting at column {}", t.col)),
                    }
                    match self.next() {
                        Some(Token { tok: Tok::Comma, .. }) => continue,
                        Some(Token { tok: Tok::RParen, .. }) => break,
                        Some(other) => {
                            return err(format!("Expected ',' or ')' in list at column {}, found '{}'", other.col, other.text))
                        }
                        None => return err(format!("Unclosed list starting at column {}", t.col)),
                    }
                }
                Value::List(items)
            }
            _ => {
                return err(format!(
                    "Parameter value is either not quoted or unidentified quote types used for string value {} (column {}). Use either single or double quotes.",
                    t.text, t.col
                ))
            }
        };
        Ok((v, t))
    }

    fn clause(&mut self) -> Result<Clause, SearchError> {
        let ident = self.identifier()?;
        let (cmp, cmp_col) = self.comparator()?;
        let (value, vtok) = if matches!(cmp, Comparator::IsNull | Comparator::IsNotNull) {
            (Value::None, None)
        } else {
            let (v, t) = self.value(cmp)?;
            (v, Some(t))
        };
        let Ident { kind, key, col } = ident;
        let bad_cmp = |allowed: &str| {
            err(format!("Invalid comparator '{}' at column {cmp_col} for {} '{key}': expected one of {allowed}", cmp.sql_text(), kind.name()))
        };
        let value_text = vtok.as_ref().map(|t| t.text.clone()).unwrap_or_default();
        let value_col = vtok.as_ref().map(|t| t.col).unwrap_or(cmp_col);
        const NUMERIC: &str = "=, !=, <, <=, >, >=";
        const STRING: &str = "=, !=, LIKE, ILIKE";
        let field = match kind {
            Kind::Metric => {
                if !is_numeric_cmp(cmp) {
                    return bad_cmp(NUMERIC);
                }
                if !matches!(value, Value::Num(_)) {
                    return err(format!("Expected numeric value type for metric. Found {value_text} (column {value_col})"));
                }
                Field::Metric(key)
            }
            Kind::Param | Kind::Tag => {
                if !(is_string_cmp(cmp)
                    || matches!(cmp, Comparator::IsNull | Comparator::IsNotNull))
                {
                    return bad_cmp("=, !=, LIKE, ILIKE, IS NULL, IS NOT NULL");
                }
                if !matches!(value, Value::Str(_) | Value::None) {
                    return err(format!(
                        "Expected a quoted string value for {} (e.g. 'my-value'). Got value {value_text} (column {value_col})",
                        kind.name()
                    ));
                }
                if kind == Kind::Param {
                    Field::Param(key)
                } else {
                    Field::Tag(key)
                }
            }
            Kind::Dataset => {
                let df = match key.as_str() {
                    "name" => DatasetField::Name,
                    "digest" => DatasetField::Digest,
                    "context" => DatasetField::Context,
                    _ => {
                        return err(format!(
                            "Invalid dataset key '{key}' specified at column {col}. Valid keys are 'name', 'digest', 'context'"
                        ))
                    }
                };
                if !(is_string_cmp(cmp) || matches!(cmp, Comparator::In | Comparator::NotIn)) {
                    return bad_cmp("=, !=, LIKE, ILIKE, IN, NOT IN");
                }
                if !matches!(value, Value::Str(_) | Value::List(_)) {
                    return err(format!(
                        "Expected a quoted string value for dataset attributes. Got value {value_text} (column {value_col})"
                    ));
                }
                Field::Dataset(df)
            }
            Kind::Attribute => {
                let Some(attr) = self.searched.filter_attribute(&key) else {
                    return err(format!(
                        "Invalid attribute key '{key}' specified at column {col}. Valid keys are {}",
                        self.searched.attribute_keys()
                    ));
                };
                if matches!(cmp, Comparator::IsNull | Comparator::IsNotNull) {
                    return err(format!(
                        "IS NULL / IS NOT NULL is only supported for tags and params, not for 'attribute' '{key}' (column {cmp_col})"
                    ));
                }
                if attr.is_numeric() {
                    if !is_numeric_cmp(cmp) {
                        return bad_cmp(NUMERIC);
                    }
                    if !matches!(value, Value::Num(_)) {
                        return err(format!(
                            "Expected numeric value type for numeric attribute: {key}. Found {value_text} (column {value_col})"
                        ));
                    }
                } else {
                    let list_ok = matches!(attr, Attribute::RunId | Attribute::ModelId);
                    if matches!(cmp, Comparator::In | Comparator::NotIn) {
                        if !list_ok {
                            return err(format!(
                                "Only the 'run_id' attribute supports comparison with a list of quoted string values (column {cmp_col})."
                            ));
                        }
                    } else if !is_string_cmp(cmp) {
                        return bad_cmp(STRING);
                    }
                    if !matches!(value, Value::Str(_) | Value::List(_)) {
                        return err(format!(
                            "Expected a quoted string value for attributes. Got value {value_text} (column {value_col})"
                        ));
                    }
                }
                Field::Attribute(attr)
            }
        };
        Ok(Clause {
            field,
            comparator: cmp,
            value,
        })
    }
}

trait SqlText {
    fn sql_text(self) -> &'static str;
}

impl SqlText for Comparator {
    fn sql_text(self) -> &'static str {
        match self {
            Comparator::ILike => "ILIKE",
            other => other.sql(),
        }
    }
}

fn is_numeric_cmp(c: Comparator) -> bool {
    matches!(
        c,
        Comparator::Eq
            | Comparator::Ne
            | Comparator::Lt
            | Comparator::Le
            | Comparator::Gt
            | Comparator::Ge
    )
}

fn is_string_cmp(c: Comparator) -> bool {
    matches!(
        c,
        Comparator::Eq | Comparator::Ne | Comparator::Like | Comparator::ILike
    )
}

/// Strips one pair of matching outer quotes (`"`, `'` or backticks) from a key.
fn unquote(s: &str) -> String {
    for q in ['"', '\'', '`'] {
        if s.len() >= 2 && s.starts_with(q) && s.ends_with(q) {
            return s[1..s.len() - 1].to_string();
        }
    }
    s.to_string()
}

/// Parses a filter string: `clause AND clause AND …`. An empty filter is no clause.
pub fn parse_filter(input: &str, searched: Searched) -> Result<Vec<Clause>, SearchError> {
    let toks = lex(input).map_err(|e| SearchError {
        message: format!("Invalid filter '{input}': {}", e.message),
    })?;
    let mut p = Parser {
        toks,
        pos: 0,
        input,
        searched,
    };
    let mut clauses = Vec::new();
    if p.toks.is_empty() {
        return Ok(clauses);
    }
    let wrap = |e: SearchError| SearchError {
        message: format!("Invalid filter '{input}': {}", e.message),
    };
    loop {
        clauses.push(p.clause().map_err(wrap)?);
        match p.next() {
            None => break,
            Some(t) if p.keyword(&t, "AND") => {
                if p.peek().is_none() {
                    return Err(wrap(SearchError {
                        message: format!("Expected a clause after 'AND' at column {}", t.end),
                    }));
                }
            }
            Some(t) => {
                let hint = if p.keyword(&t, "OR") {
                    " (only AND is supported)"
                } else {
                    ""
                };
                return Err(wrap(SearchError {
                    message: format!(
                        "Invalid clause(s) in filter string: '{}' at column {}{hint}",
                        t.text, t.col
                    ),
                }));
            }
        }
    }
    Ok(clauses)
}

/// Parses one `order_by` entry: `<identifier> [ASC|DESC]`.
pub fn parse_order_by(input: &str, searched: Searched) -> Result<OrderBy, SearchError> {
    let wrap = |e: SearchError| SearchError {
        message: format!("Invalid order_by clause '{input}': {}", e.message),
    };
    let toks = lex(input).map_err(wrap)?;
    let mut p = Parser {
        toks,
        pos: 0,
        input,
        searched,
    };
    let ident = p.identifier().map_err(wrap)?;
    let ascending = match p.next() {
        None => true,
        Some(t) if p.keyword(&t, "ASC") => true,
        Some(t) if p.keyword(&t, "DESC") => false,
        Some(t) => {
            return Err(wrap(SearchError {
                message: format!(
                    "Invalid ordering key '{}' at column {} (expected ASC or DESC)",
                    t.text, t.col
                ),
            }))
        }
    };
    if let Some(t) = p.next() {
        return Err(wrap(SearchError {
            message: format!("Unexpected '{}' at column {}", t.text, t.col),
        }));
    }
    let field = match ident.kind {
        Kind::Metric => Field::Metric(ident.key),
        Kind::Param => Field::Param(ident.key),
        Kind::Tag => Field::Tag(ident.key),
        Kind::Dataset => {
            return Err(wrap(SearchError {
                message: "Invalid identifier type 'dataset'".into(),
            }))
        }
        Kind::Attribute => match searched.order_attribute(&ident.key) {
            Some(a) => Field::Attribute(a),
            None => {
                return Err(wrap(SearchError {
                    message: format!(
                        "Invalid attribute key '{}' specified at column {}. Valid keys are {}",
                        ident.key,
                        ident.col,
                        searched.attribute_keys()
                    ),
                }))
            }
        },
    };
    Ok(OrderBy { field, ascending })
}

/// Parses a list of `order_by` entries, refusing the same field twice.
pub fn parse_order_by_list(
    items: &[String],
    searched: Searched,
) -> Result<Vec<OrderBy>, SearchError> {
    let mut out: Vec<OrderBy> = Vec::new();
    for item in items {
        let ob = parse_order_by(item, searched)?;
        if out.iter().any(|o| o.field == ob.field) {
            return err(format!("`order_by` contains duplicate fields: {items:?}"));
        }
        out.push(ob);
    }
    Ok(out)
}

/// MLflow's page token: base64 of `{"offset": N}`.
pub fn encode_page_token(offset: i64) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("{{\"offset\": {offset}}}"))
}

pub fn decode_page_token(token: &str) -> Result<i64, SearchError> {
    if token.is_empty() {
        return Ok(0);
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(token.trim())
        .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(token.trim()))
        .map_err(|_| SearchError {
            message: "Invalid page token, could not base64-decode".into(),
        })?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|_| SearchError {
        message: format!(
            "Invalid page token, decoded value={}",
            String::from_utf8_lossy(&bytes)
        ),
    })?;
    match value.get("offset").and_then(|v| v.as_i64()) {
        Some(n) if n >= 0 => Ok(n),
        _ => err(format!("Invalid page token, parsed value={value}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn runs(s: &str) -> Result<Vec<Clause>, SearchError> {
        parse_filter(s, Searched::Runs)
    }

    #[test]
    fn parses_every_kind_of_clause() {
        let c = runs(
            "metrics.acc > 0.9 AND params.model = 'gbt' and tags.`mlflow.runName` LIKE 'a%' \
             AND attributes.status != \"FAILED\" AND attribute.run_id IN ('a', 'b') AND run_id NOT IN ('c') \
             AND tags.team IS NULL AND params.lr IS NOT NULL AND metrics.\"my key\" <= -1e-3 \
             AND start_time >= 10 AND datasets.name ILIKE 'IRIS%' AND tags.mlflow.source.type = 'LOCAL'",
        )
        .unwrap();
        assert_eq!(c.len(), 12);
        assert_eq!(
            c[0],
            Clause {
                field: Field::Metric("acc".into()),
                comparator: Comparator::Gt,
                value: Value::Num(0.9)
            }
        );
        assert_eq!(c[2].field, Field::Tag("mlflow.runName".into()));
        assert_eq!(c[4].value, Value::List(vec!["a".into(), "b".into()]));
        assert_eq!(c[5].comparator, Comparator::NotIn);
        assert_eq!(c[6].comparator, Comparator::IsNull);
        assert_eq!(
            c[8],
            Clause {
                field: Field::Metric("my key".into()),
                comparator: Comparator::Le,
                value: Value::Num(-1e-3)
            }
        );
        assert_eq!(c[9].field, Field::Attribute(Attribute::StartTime));
        assert_eq!(c[10].field, Field::Dataset(DatasetField::Name));
        assert_eq!(c[11].field, Field::Tag("mlflow.source.type".into()));
    }

    #[test]
    fn errors_name_the_column() {
        let e = runs("metrics.acc > 1 OR params.a = 'b'")
            .unwrap_err()
            .message;
        assert!(e.contains("'OR' at column 17"), "{e}");
        let e = runs("metrics.acc > 'x'").unwrap_err().message;
        assert!(
            e.contains("Expected numeric value type for metric") && e.contains("column 15"),
            "{e}"
        );
        let e = runs("params.a = 5").unwrap_err().message;
        assert!(
            e.contains("Expected a quoted string value for parameter"),
            "{e}"
        );
        let e = runs("foo.bar = 'x'").unwrap_err().message;
        assert!(e.contains("Invalid entity type 'foo' at column 1"), "{e}");
        let e = runs("attributes.nope = 'x'").unwrap_err().message;
        assert!(e.contains("Invalid attribute key 'nope'"), "{e}");
        let e = runs("params.a LIKE").unwrap_err().message;
        assert!(e.contains("Expected a value at column 14"), "{e}");
        let e = runs("status IN ('a')").unwrap_err().message;
        assert!(e.contains("Only the 'run_id' attribute"), "{e}");
        let e = runs("metrics.a LIKE 1").unwrap_err().message;
        assert!(e.contains("Invalid comparator 'LIKE'"), "{e}");
        let e = runs("params.a = 'unterminated").unwrap_err().message;
        assert!(
            e.contains("Unterminated string starting at column 12"),
            "{e}"
        );
        assert!(runs("metrics.a > 1 AND").is_err());
        assert!(runs("metrics.a <> 1").is_err());
        assert!(runs("metrics.a IS NULL").is_err());
    }

    #[test]
    fn experiments_and_models_have_their_own_keys() {
        let c = parse_filter(
            "name LIKE 'iris%' AND tags.team = 'a' AND creation_time > 5",
            Searched::Experiments,
        )
        .unwrap();
        assert_eq!(c[0].field, Field::Attribute(Attribute::Name));
        assert!(parse_filter("metrics.a > 1", Searched::Experiments).is_err());
        assert!(parse_filter("status = 'FINISHED'", Searched::Experiments).is_err());
        let c = parse_filter("source_run_id = 'abc'", Searched::LoggedModels).unwrap();
        assert_eq!(c[0].field, Field::Attribute(Attribute::SourceRunId));
    }

    #[test]
    fn order_by_entries() {
        let o = parse_order_by("metrics.`my acc` DESC", Searched::Runs).unwrap();
        assert_eq!(
            o,
            OrderBy {
                field: Field::Metric("my acc".into()),
                ascending: false
            }
        );
        let o = parse_order_by("start_time", Searched::Runs).unwrap();
        assert_eq!(
            o,
            OrderBy {
                field: Field::Attribute(Attribute::StartTime),
                ascending: true
            }
        );
        assert!(parse_order_by("metrics.a SIDEWAYS", Searched::Runs).is_err());
        assert!(parse_order_by_list(
            &["metrics.a".into(), "metrics.a DESC".into()],
            Searched::Runs
        )
        .is_err());
        assert_eq!(
            parse_order_by("experiment_id desc", Searched::Experiments)
                .unwrap()
                .field,
            Field::Attribute(Attribute::ExperimentId)
        );
    }

    #[test]
    fn page_tokens_match_mlflow() {
        assert_eq!(encode_page_token(1000), "eyJvZmZzZXQiOiAxMDAwfQ==");
        assert_eq!(decode_page_token("eyJvZmZzZXQiOiA1MH0=").unwrap(), 50);
        assert!(decode_page_token("!!!").is_err());
        assert!(
            decode_page_token(&base64::engine::general_purpose::STANDARD.encode("{\"x\":1}"))
                .is_err()
        );
    }

    proptest! {
        /// The parser never panics, whatever it is given.
        #[test]
        fn never_panics(s in "\\PC{0,80}") {
            let _ = parse_filter(&s, Searched::Runs);
            let _ = parse_order_by(&s, Searched::Runs);
        }

        /// Generated valid clauses parse back to what was generated.
        #[test]
        fn round_trips_generated_clauses(
            key in "[a-z][a-z0-9_]{0,10}",
            n in -1.0e6f64..1.0e6,
            s in "[a-zA-Z0-9 %_-]{0,12}",
            op in prop::sample::select(vec!["=", "!=", "<", "<=", ">", ">="]),
        ) {
            let f = format!("metrics.{key} {op} {n} AND params.`{key}` = '{s}'");
            let c = parse_filter(&f, Searched::Runs).unwrap();
            prop_assert_eq!(c.len(), 2);
            prop_assert_eq!(&c[0].field, &Field::Metric(key.clone()));
            prop_assert_eq!(&c[0].value, &Value::Num(n));
            prop_assert_eq!(&c[1].value, &Value::Str(s.clone()));
        }

        /// Errors point inside (or just past) the input.
        #[test]
        fn error_columns_are_in_range(s in "[a-z. ='<>()0-9]{0,40}") {
            if let Err(e) = parse_filter(&s, Searched::Runs) {
                if let Some(idx) = e.message.rfind("column ") {
                    let digits: String = e.message[idx + 7..].chars().take_while(|c| c.is_ascii_digit()).collect();
                    let col: usize = digits.parse().unwrap();
                    prop_assert!(col >= 1 && col <= s.chars().count() + 1, "{} for {:?}", e.message, s);
                }
            }
        }
    }
}
