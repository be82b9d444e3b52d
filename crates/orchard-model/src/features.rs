//! The feature spec stored with a model (`feature_spec.json` in the model directory): which input fields a
//! request carries, which columns are derived from them (`sepal_mul = sepal_length * sepal_width`), the order
//! of the model's columns, the class labels and the name of the answer field. Training writes it, serving reads
//! it: the transform is defined once, as data, instead of a pickled pipeline re-run on every request.
//!
//! Derived columns are small arithmetic expressions: numbers, column names (backticks for names with spaces),
//! `+ - * /`, unary minus, parentheses, and `log exp sqrt abs min max pow`.

use serde::{Deserialize, Serialize};

use crate::error::ModelError;

/// The file name inside a model directory.
pub const FILE_NAME: &str = "feature_spec.json";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Derived {
    pub name: String,
    pub expr: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FeatureSpec {
    /// The input fields a request must carry (nested objects flattened with `_`).
    pub inputs: Vec<String>,
    /// Columns computed from the inputs (and from earlier derived columns), in order.
    #[serde(default)]
    pub derived: Vec<Derived>,
    /// The model's columns, in its order: names from `inputs` and `derived`.
    pub columns: Vec<String>,
    /// Class labels by class index, for classifiers.
    #[serde(default)]
    pub classes: Vec<String>,
    /// The field of the answer that holds the prediction (the iris endpoint answers `"flower": "setosa"`).
    #[serde(default = "default_label")]
    pub label: String,
}

fn default_label() -> String {
    "prediction".into()
}

/// A compiled spec: expressions resolved to slots, ready to turn an input row into a model row.
#[derive(Clone, Debug)]
pub struct Compiled {
    spec: FeatureSpec,
    exprs: Vec<Expr>,
    /// For each model column, its slot among inputs + derived.
    order: Vec<usize>,
}

impl FeatureSpec {
    pub fn from_json(text: &str) -> Result<FeatureSpec, ModelError> {
        serde_json::from_str(text).map_err(|e| ModelError::Format {
            format: "feature spec",
            reason: e.to_string(),
        })
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Checks the spec and resolves every name: an unknown column, a duplicate or a bad expression is an error
    /// naming it.
    pub fn compile(&self) -> Result<Compiled, ModelError> {
        let bad = |reason: String| ModelError::Format {
            format: "feature spec",
            reason,
        };
        let mut slots: Vec<&str> = Vec::new();
        for name in &self.inputs {
            if slots.contains(&name.as_str()) {
                return Err(bad(format!("input '{name}' is listed twice")));
            }
            slots.push(name);
        }
        let mut exprs = Vec::new();
        for d in &self.derived {
            let expr = Expr::parse(&d.expr)
                .and_then(|e| e.resolve(&slots))
                .map_err(|e| bad(format!("derived column '{}': {e}", d.name)))?;
            if slots.contains(&d.name.as_str()) {
                return Err(bad(format!("derived column '{}' is already a column", d.name)));
            }
            slots.push(&d.name);
            exprs.push(expr);
        }
        let order = self
            .columns
            .iter()
            .map(|c| {
                slots
                    .iter()
                    .position(|s| s == c)
                    .ok_or_else(|| bad(format!("column '{c}' is neither an input nor a derived column")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Compiled {
            spec: self.clone(),
            exprs,
            order,
        })
    }
}

impl Compiled {
    pub fn spec(&self) -> &FeatureSpec {
        &self.spec
    }

    /// The model row for one input row (values in `inputs` order), appended to `out`.
    pub fn transform(&self, inputs: &[f64], out: &mut Vec<f64>) {
        let mut slots: Vec<f64> = Vec::with_capacity(inputs.len() + self.exprs.len());
        slots.extend_from_slice(inputs);
        for e in &self.exprs {
            let v = e.eval(&slots);
            slots.push(v);
        }
        out.extend(self.order.iter().map(|&i| slots[i]));
    }
}

// ------------------------------------------------------------------------------------------------ expressions

/// An arithmetic expression over columns.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    Num(f64),
    /// A column by name (before [`Expr::resolve`]) …
    Column(String),
    /// … or by slot (after).
    Slot(usize),
    Neg(Box<Expr>),
    Bin(Op, Box<Expr>, Box<Expr>),
    Call(Func, Vec<Expr>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Add,
    Sub,
    Mul,
    Div,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Func {
    Log,
    Exp,
    Sqrt,
    Abs,
    Min,
    Max,
    Pow,
}

impl Func {
    fn by_name(name: &str) -> Option<(Func, usize)> {
        Some(match name {
            "log" => (Func::Log, 1),
            "exp" => (Func::Exp, 1),
            "sqrt" => (Func::Sqrt, 1),
            "abs" => (Func::Abs, 1),
            "min" => (Func::Min, 2),
            "max" => (Func::Max, 2),
            "pow" => (Func::Pow, 2),
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Func::Log => "log",
            Func::Exp => "exp",
            Func::Sqrt => "sqrt",
            Func::Abs => "abs",
            Func::Min => "min",
            Func::Max => "max",
            Func::Pow => "pow",
        }
    }
}

/// Deeper nesting is refused, so a hostile spec cannot exhaust the stack.
const MAX_DEPTH: usize = 64;

struct Parser<'a> {
    chars: Vec<char>,
    pos: usize,
    depth: usize,
    text: &'a str,
}

impl Parser<'_> {
    fn err<T>(&self, what: impl std::fmt::Display) -> Result<T, String> {
        Err(format!("{what} at column {} of '{}'", self.pos + 1, self.text))
    }

    fn skip_ws(&mut self) {
        while self.chars.get(self.pos).is_some_and(|c| c.is_whitespace()) {
            self.pos += 1;
        }
    }

    fn peek(&mut self) -> Option<char> {
        self.skip_ws();
        self.chars.get(self.pos).copied()
    }

    /// Steps over `c` if it comes next.
    fn eat(&mut self, c: char) -> bool {
        let next = self.peek() == Some(c);
        self.pos += usize::from(next);
        next
    }

    fn nest<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T, String>) -> Result<T, String> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return self.err(format!("expression nested deeper than {MAX_DEPTH}"));
        }
        let r = f(self);
        self.depth -= 1;
        r
    }

    fn expr(&mut self) -> Result<Expr, String> {
        self.nest(|p| p.chain(&[('+', Op::Add), ('-', Op::Sub)], Self::term))
    }

    fn term(&mut self) -> Result<Expr, String> {
        self.chain(&[('*', Op::Mul), ('/', Op::Div)], Self::unary)
    }

    /// `operand (op operand)*` for the operators of one precedence level, grouped to the left.
    fn chain(&mut self, ops: &[(char, Op)], operand: fn(&mut Self) -> Result<Expr, String>) -> Result<Expr, String> {
        let mut left = operand(self)?;
        while let Some(&(_, op)) = ops.iter().find(|(c, _)| self.peek() == Some(*c)) {
            self.pos += 1;
            left = Expr::Bin(op, Box::new(left), Box::new(operand(self)?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, String> {
        if self.eat('-') {
            return self.nest(|p| Ok(Expr::Neg(Box::new(p.unary()?))));
        }
        self.atom()
    }

    fn atom(&mut self) -> Result<Expr, String> {
        match self.peek() {
            None => self.err("expected a value"),
            Some('(') => {
                self.pos += 1;
                let e = self.expr()?;
                if !self.eat(')') {
                    return self.err("expected ')'");
                }
                Ok(e)
            }
            Some('`') => {
                self.pos += 1;
                let start = self.pos;
                while self.chars.get(self.pos).is_some_and(|c| *c != '`') {
                    self.pos += 1;
                }
                if self.pos >= self.chars.len() {
                    return self.err("unclosed '`'");
                }
                let name: String = self.chars[start..self.pos].iter().collect();
                self.pos += 1;
                if name.is_empty() {
                    return self.err("empty column name");
                }
                Ok(Expr::Column(name))
            }
            Some(c) if c.is_ascii_digit() || c == '.' => {
                let start = self.pos;
                while self.chars.get(self.pos).is_some_and(|c| c.is_ascii_digit() || *c == '.') {
                    self.pos += 1;
                }
                // An exponent: 1e-3, 2.5E+4.
                if self.chars.get(self.pos).is_some_and(|c| *c == 'e' || *c == 'E') {
                    let mark = self.pos;
                    self.pos += 1;
                    if self.chars.get(self.pos).is_some_and(|c| *c == '+' || *c == '-') {
                        self.pos += 1;
                    }
                    if self.chars.get(self.pos).is_some_and(|c| c.is_ascii_digit()) {
                        while self.chars.get(self.pos).is_some_and(|c| c.is_ascii_digit()) {
                            self.pos += 1;
                        }
                    } else {
                        self.pos = mark;
                    }
                }
                let text: String = self.chars[start..self.pos].iter().collect();
                match text.parse::<f64>() {
                    Ok(v) => Ok(Expr::Num(v)),
                    Err(_) => {
                        self.pos = start;
                        self.err(format!("bad number '{text}'"))
                    }
                }
            }
            Some(c) if c.is_alphabetic() || c == '_' => {
                let start = self.pos;
                while self
                    .chars
                    .get(self.pos)
                    .is_some_and(|c| c.is_alphanumeric() || *c == '_' || *c == '.')
                {
                    self.pos += 1;
                }
                let name: String = self.chars[start..self.pos].iter().collect();
                if self.peek() == Some('(') {
                    let Some((func, arity)) = Func::by_name(&name) else {
                        self.pos = start;
                        return self.err(format!("unknown function '{name}'"));
                    };
                    self.pos += 1;
                    let mut args = Vec::new();
                    if !self.eat(')') {
                        loop {
                            args.push(self.expr()?);
                            if self.eat(')') {
                                break;
                            }
                            if !self.eat(',') {
                                return self.err("expected ',' or ')'");
                            }
                        }
                    }
                    if args.len() != arity {
                        return self.err(format!("{name}() takes {arity} argument(s), got {}", args.len()));
                    }
                    return Ok(Expr::Call(func, args));
                }
                Ok(Expr::Column(name))
            }
            Some(c) => self.err(format!("unexpected '{c}'")),
        }
    }
}

impl Expr {
    pub fn parse(text: &str) -> Result<Expr, String> {
        let mut p = Parser {
            chars: text.chars().collect(),
            pos: 0,
            depth: 0,
            text,
        };
        let e = p.expr()?;
        if p.peek().is_some() {
            return p.err(format!("unexpected '{}'", p.chars[p.pos]));
        }
        Ok(e)
    }

    /// Replaces column names by their slot in `slots`.
    pub fn resolve(self, slots: &[&str]) -> Result<Expr, String> {
        Ok(match self {
            Expr::Column(name) => match slots.iter().position(|s| *s == name) {
                Some(i) => Expr::Slot(i),
                None => return Err(format!("unknown column '{name}'")),
            },
            Expr::Neg(e) => Expr::Neg(Box::new(e.resolve(slots)?)),
            Expr::Bin(op, a, b) => Expr::Bin(op, Box::new(a.resolve(slots)?), Box::new(b.resolve(slots)?)),
            Expr::Call(f, args) => Expr::Call(
                f,
                args.into_iter()
                    .map(|a| a.resolve(slots))
                    .collect::<Result<_, _>>()?,
            ),
            other => other,
        })
    }

    /// Evaluates with IEEE arithmetic (a division by zero gives ±inf or NaN, as NumPy would).
    pub fn eval(&self, slots: &[f64]) -> f64 {
        match self {
            Expr::Num(v) => *v,
            Expr::Slot(i) => slots.get(*i).copied().unwrap_or(f64::NAN),
            Expr::Column(_) => f64::NAN,
            Expr::Neg(e) => -e.eval(slots),
            Expr::Bin(op, a, b) => {
                let (a, b) = (a.eval(slots), b.eval(slots));
                match op {
                    Op::Add => a + b,
                    Op::Sub => a - b,
                    Op::Mul => a * b,
                    Op::Div => a / b,
                }
            }
            Expr::Call(f, args) => {
                let a = args.first().map(|e| e.eval(slots)).unwrap_or(f64::NAN);
                let b = args.get(1).map(|e| e.eval(slots)).unwrap_or(f64::NAN);
                match f {
                    Func::Log => a.ln(),
                    Func::Exp => a.exp(),
                    Func::Sqrt => a.sqrt(),
                    Func::Abs => a.abs(),
                    Func::Min => a.min(b),
                    Func::Max => a.max(b),
                    Func::Pow => a.powf(b),
                }
            }
        }
    }
}

impl std::fmt::Display for Expr {
    /// Fully parenthesised, so that printing and parsing again gives the same expression.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Expr::Num(v) => write!(f, "{v:?}"),
            Expr::Column(name) => write!(f, "`{name}`"),
            Expr::Slot(i) => write!(f, "`#{i}`"),
            Expr::Neg(e) => write!(f, "(-{e})"),
            Expr::Bin(op, a, b) => {
                let op = match op {
                    Op::Add => "+",
                    Op::Sub => "-",
                    Op::Mul => "*",
                    Op::Div => "/",
                };
                write!(f, "({a} {op} {b})")
            }
            Expr::Call(func, args) => {
                write!(f, "{}(", func.name())?;
                for (i, a) in args.iter().enumerate() {
                    if i > 0 {
                        write!(f, ", ")?;
                    }
                    write!(f, "{a}")?;
                }
                write!(f, ")")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn iris_spec() -> FeatureSpec {
        FeatureSpec {
            inputs: vec!["sepal_length".into(), "sepal_width".into(), "petal_length".into(), "petal_width".into()],
            derived: vec![
                Derived { name: "sepal_mul".into(), expr: "sepal_length * sepal_width".into() },
                Derived { name: "ratio".into(), expr: "(petal_length + 1) / -petal_width - sepal_mul".into() },
            ],
            columns: vec!["sepal_mul".into(), "sepal_length".into(), "ratio".into()],
            classes: vec!["setosa".into(), "versicolor".into(), "virginica".into()],
            label: "flower".into(),
        }
    }

    #[test]
    fn derived_columns_are_computed_in_order() {
        let c = iris_spec().compile().unwrap();
        let mut out = Vec::new();
        c.transform(&[5.0, 3.0, 1.0, 0.5], &mut out);
        assert_eq!(out, vec![15.0, 5.0, (1.0 + 1.0) / -0.5 - 15.0]);
        let back = FeatureSpec::from_json(&iris_spec().to_json()).unwrap();
        assert_eq!(back, iris_spec());
    }

    #[test]
    fn bad_specs_name_the_problem() {
        let mut s = iris_spec();
        s.derived[0].expr = "sepal_length * nope".into();
        assert!(s.compile().unwrap_err().to_string().contains("unknown column 'nope'"));
        let mut s = iris_spec();
        s.columns.push("missing".into());
        assert!(s.compile().unwrap_err().to_string().contains("'missing'"));
        for (text, needle) in [
            ("a +", "expected a value"),
            ("(a", "expected ')'"),
            ("f(a)", "unknown function 'f'"),
            ("pow(a)", "takes 2"),
            ("a $ b", "unexpected '$'"),
            ("`a", "unclosed"),
        ] {
            let e = Expr::parse(text).unwrap_err();
            assert!(e.contains(needle), "{text}: {e}");
        }
        assert!(Expr::parse(&"(".repeat(100)).unwrap_err().contains("nested deeper"));
        assert!(Expr::parse(&"-".repeat(100)).unwrap_err().contains("nested deeper"));
        assert_eq!(Expr::parse("1e-3 * `sepal length (cm)`").unwrap().to_string(), "(0.001 * `sepal length (cm)`)");
        assert_eq!(Expr::parse("max(1, 2) + sqrt(4) - log(exp(1))").unwrap().eval(&[]), 3.0);
    }

    fn arb_expr() -> impl Strategy<Value = Expr> {
        let leaf = prop_oneof![
            (-1e6f64..1e6).prop_map(Expr::Num),
            prop::sample::select(vec!["a", "b", "c d"]).prop_map(|s| Expr::Column(s.into())),
        ];
        leaf.prop_recursive(5, 40, 3, |inner| {
            prop_oneof![
                inner.clone().prop_map(|e| Expr::Neg(Box::new(e))),
                (prop::sample::select(vec![Op::Add, Op::Sub, Op::Mul, Op::Div]), inner.clone(), inner.clone())
                    .prop_map(|(op, a, b)| Expr::Bin(op, Box::new(a), Box::new(b))),
                (prop::sample::select(vec![Func::Log, Func::Sqrt, Func::Abs]), inner.clone())
                    .prop_map(|(f, a)| Expr::Call(f, vec![a])),
                (prop::sample::select(vec![Func::Min, Func::Max, Func::Pow]), inner.clone(), inner)
                    .prop_map(|(f, a, b)| Expr::Call(f, vec![a, b])),
            ]
        })
    }

    proptest! {
        /// Any text either parses or is refused with a message; never a panic or a stack overflow.
        #[test]
        fn parser_never_panics(text in "[-+*/() a-z0-9.,`eE]{0,80}") {
            let _ = Expr::parse(&text);
        }

        /// Printing an expression and parsing it back gives an expression that evaluates identically.
        #[test]
        fn printed_expressions_parse_back(e in arb_expr(), a in -100.0f64..100.0, b in -100.0f64..100.0, c in -100.0f64..100.0) {
            let text = e.to_string();
            let back = Expr::parse(&text).map_err(TestCaseError::fail)?;
            let slots = ["a", "b", "c d"];
            let x = e.resolve(&slots).unwrap().eval(&[a, b, c]);
            let y = back.resolve(&slots).unwrap().eval(&[a, b, c]);
            prop_assert!(x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()), "{} -> {} vs {}", text, x, y);
        }
    }
}
