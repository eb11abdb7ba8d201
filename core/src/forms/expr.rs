//! Conditions and rules as a small JSON expression tree, parsed once into
//! [`Expr`] and evaluated against answers. A tree rather than a text
//! syntax: nothing to tokenise, and every node names what it reads.
//!
//! ```json
//! {"le": [{"field": "ballots_cast"}, {"field": "ballots_issued"}]}
//! {"eq": [{"field": "ballots_received"},
//!         {"sum": [{"field": "ballots_issued"}, {"field": "ballots_spoiled"}, {"field": "ballots_unused"}]}]}
//! {"and": [{"answered": "reason"}, {"not": {"eq": [{"field": "event"}, "admitted"]}}]}
//! {"includes": [{"field": "problems"}, "ballot_stuffing"]}
//! {"matches": [{"field": "station_code"}, "KZ-[A-Z]{3}-[0-9]{4}"]}
//! {"if": [{"field": "second_round"}, {"sub": [{"field": "a"}, {"field": "b"}]}, 0]}
//! ```
//!
//! The XLSForm importer (`observer-xlsform`) translates ODK's XPath subset
//! into these trees, so every operator here has an XPath spelling there.

use std::sync::Arc;

use serde_json::{Map, Value};

/// Longest regular expression accepted, in bytes.
pub const MAX_PATTERN_BYTES: usize = 512;

/// Deepest expression accepted (a hostile definition cannot overflow the stack).
const MAX_DEPTH: usize = 32;

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cmp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// An arithmetic operator other than `sum` (which takes any number of
/// operands).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arith {
    Sub,
    Mul,
    /// Division as XPath's `div`: always a decimal; by zero, unknown.
    Div,
    /// Remainder with the sign of the dividend, as XPath's `mod`.
    Mod,
}

/// A regular expression that must match the whole text (ODK's `regex()`
/// means a complete match). `regex-lite` runs in time linear in the text,
/// so a hostile pattern cannot stall the phone.
#[derive(Clone)]
pub struct Pattern {
    source: String,
    re: Arc<regex_lite::Regex>,
}

impl Pattern {
    /// Compiles `source`; errors say why in words.
    pub fn new(source: &str) -> Result<Self, String> {
        if source.len() > MAX_PATTERN_BYTES {
            return Err(format!(
                "a pattern is at most {MAX_PATTERN_BYTES} bytes, this one {}",
                source.len()
            ));
        }
        let re = regex_lite::RegexBuilder::new(&format!("^(?:{source})$"))
            .size_limit(1 << 20)
            .nest_limit(32)
            .build()
            .map_err(|e| format!("not a regular expression: {e}"))?;
        Ok(Self {
            source: source.to_string(),
            re: Arc::new(re),
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl std::fmt::Debug for Pattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Pattern({:?})", self.source)
    }
}

/// A parsed expression.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    /// A constant.
    Literal(Value),
    /// The answer to a field.
    Field(String),
    /// Whether a field was answered.
    Answered(String),
    /// The sum of numbers.
    Sum(Vec<Expr>),
    /// A comparison of two values.
    Compare(Cmp, Box<Expr>, Box<Expr>),
    /// All hold.
    And(Vec<Expr>),
    /// Any holds.
    Or(Vec<Expr>),
    /// Does not hold.
    Not(Box<Expr>),
    /// A multiple-choice answer includes an option.
    Includes(Box<Expr>, String),
    /// Subtraction, multiplication, division or remainder.
    Arith(Arith, Box<Expr>, Box<Expr>),
    /// The second operand if the first holds, else the third.
    If(Box<Expr>, Box<Expr>, Box<Expr>),
    /// The first operand unless it is unknown or empty text, else the second.
    Coalesce(Box<Expr>, Box<Expr>),
    /// The length of a text in characters.
    Length(Box<Expr>),
    /// How many options a choice answer holds.
    Count(Box<Expr>),
    /// Whether a text matches a pattern completely.
    Matches(Box<Expr>, Pattern),
}

/// A number, exact for integers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Num {
    Int(i128),
    Float(f64),
}

impl Num {
    fn from_json(n: &serde_json::Number) -> Option<Num> {
        n.as_i64()
            .map(|i| Num::Int(i.into()))
            .or_else(|| n.as_f64().map(Num::Float))
    }

    fn add(self, o: Num) -> Num {
        match (self, o) {
            (Num::Int(a), Num::Int(b)) => Num::Int(a + b),
            (a, b) => Num::Float(a.f() + b.f()),
        }
    }

    fn arith(self, op: Arith, o: Num) -> Option<Num> {
        let float = |a: f64, b: f64| {
            let r = match op {
                Arith::Sub => a - b,
                Arith::Mul => a * b,
                Arith::Div => a / b,
                Arith::Mod => a % b,
            };
            r.is_finite().then_some(Num::Float(r))
        };
        match (op, self, o) {
            (Arith::Sub, Num::Int(a), Num::Int(b)) => a.checked_sub(b).map(Num::Int),
            (Arith::Mul, Num::Int(a), Num::Int(b)) => a.checked_mul(b).map(Num::Int),
            (Arith::Mod, Num::Int(a), Num::Int(b)) => a.checked_rem(b).map(Num::Int),
            (_, a, b) => float(a.f(), b.f()),
        }
    }

    fn f(self) -> f64 {
        match self {
            Num::Int(i) => i as f64,
            Num::Float(f) => f,
        }
    }

    fn cmp(self, o: Num) -> Option<std::cmp::Ordering> {
        match (self, o) {
            (Num::Int(a), Num::Int(b)) => Some(a.cmp(&b)),
            (a, b) => a.f().partial_cmp(&b.f()),
        }
    }
}

/// The value of an expression; `Unknown` when it reads an unanswered field,
/// so a rule about missing numbers neither holds nor fails.
#[derive(Clone, Debug, PartialEq)]
pub enum Eval {
    Num(Num),
    Bool(bool),
    Text(String),
    List(Vec<String>),
    Unknown,
}

impl Expr {
    /// Parses `v`; errors say what is wrong in words.
    pub fn parse(v: &Value) -> Result<Expr, String> {
        Self::parse_at(v, 0)
    }

    fn parse_at(v: &Value, depth: usize) -> Result<Expr, String> {
        if depth > MAX_DEPTH {
            return Err(format!("nested deeper than {MAX_DEPTH}"));
        }
        let obj = match v {
            Value::Object(o) => o,
            Value::Array(_) => return Err("an array is not an expression".into()),
            scalar => return Ok(Expr::Literal(scalar.clone())),
        };
        let (op, arg) = single(obj)?;
        let list = |min: usize, max: usize| -> Result<Vec<Expr>, String> {
            let items = arg
                .as_array()
                .ok_or_else(|| format!("{op:?} takes a list"))?;
            if items.len() < min || items.len() > max {
                return Err(format!(
                    "{op:?} takes {min} to {max} operands, got {}",
                    items.len()
                ));
            }
            items.iter().map(|i| Self::parse_at(i, depth + 1)).collect()
        };
        let name = || -> Result<String, String> {
            arg.as_str()
                .map(str::to_string)
                .ok_or_else(|| format!("{op:?} takes a field id"))
        };
        Ok(match op {
            "field" => Expr::Field(name()?),
            "answered" => Expr::Answered(name()?),
            "sum" => Expr::Sum(list(1, 256)?),
            "and" => Expr::And(list(1, 64)?),
            "or" => Expr::Or(list(1, 64)?),
            "not" => Expr::Not(Box::new(Self::parse_at(arg, depth + 1)?)),
            "includes" => {
                let mut l = list(2, 2)?;
                let option = match l.pop() {
                    Some(Expr::Literal(Value::String(s))) => s,
                    _ => return Err("\"includes\" takes a field and an option id".into()),
                };
                Expr::Includes(Box::new(l.remove(0)), option)
            }
            "sub" | "mul" | "div" | "mod" => {
                let op = match op {
                    "sub" => Arith::Sub,
                    "mul" => Arith::Mul,
                    "div" => Arith::Div,
                    _ => Arith::Mod,
                };
                let [a, b] = exactly(list(2, 2)?)?;
                Expr::Arith(op, Box::new(a), Box::new(b))
            }
            "if" => {
                let [c, a, b] = exactly(list(3, 3)?)?;
                Expr::If(Box::new(c), Box::new(a), Box::new(b))
            }
            "coalesce" => {
                let [a, b] = exactly(list(2, 2)?)?;
                Expr::Coalesce(Box::new(a), Box::new(b))
            }
            "length" => Expr::Length(Box::new(Self::parse_at(arg, depth + 1)?)),
            "count" => Expr::Count(Box::new(Self::parse_at(arg, depth + 1)?)),
            "matches" => {
                let [e, p] = exactly(list(2, 2)?)?;
                let Expr::Literal(Value::String(p)) = p else {
                    return Err("\"matches\" takes a text and a pattern".into());
                };
                Expr::Matches(Box::new(e), Pattern::new(&p)?)
            }
            "eq" | "ne" | "lt" | "le" | "gt" | "ge" => {
                let cmp = match op {
                    "eq" => Cmp::Eq,
                    "ne" => Cmp::Ne,
                    "lt" => Cmp::Lt,
                    "le" => Cmp::Le,
                    "gt" => Cmp::Gt,
                    _ => Cmp::Ge,
                };
                let [a, b] = exactly(list(2, 2)?)?;
                Expr::Compare(cmp, Box::new(a), Box::new(b))
            }
            other => return Err(format!("unknown operator {other:?}")),
        })
    }

    /// Every field id the expression reads.
    pub fn fields(&self, out: &mut Vec<String>) {
        match self {
            Expr::Literal(_) => {}
            Expr::Field(f) | Expr::Answered(f) => out.push(f.clone()),
            Expr::Sum(l) | Expr::And(l) | Expr::Or(l) => l.iter().for_each(|e| e.fields(out)),
            Expr::Compare(_, a, b) => {
                a.fields(out);
                b.fields(out);
            }
            Expr::Not(e)
            | Expr::Includes(e, _)
            | Expr::Length(e)
            | Expr::Count(e)
            | Expr::Matches(e, _) => e.fields(out),
            Expr::Arith(_, a, b) | Expr::Coalesce(a, b) => {
                a.fields(out);
                b.fields(out);
            }
            Expr::If(c, a, b) => {
                c.fields(out);
                a.fields(out);
                b.fields(out);
            }
        }
    }

    /// The expression as JSON, the inverse of [`Expr::parse`].
    pub fn to_json(&self) -> Value {
        use serde_json::json;
        let all = |l: &[Expr]| Value::Array(l.iter().map(Expr::to_json).collect());
        match self {
            Expr::Literal(v) => v.clone(),
            Expr::Field(f) => json!({ "field": f }),
            Expr::Answered(f) => json!({ "answered": f }),
            Expr::Sum(l) => json!({ "sum": all(l) }),
            Expr::And(l) => json!({ "and": all(l) }),
            Expr::Or(l) => json!({ "or": all(l) }),
            Expr::Not(e) => json!({ "not": e.to_json() }),
            Expr::Includes(e, o) => json!({ "includes": [e.to_json(), o] }),
            Expr::Compare(c, a, b) => {
                let op = match c {
                    Cmp::Eq => "eq",
                    Cmp::Ne => "ne",
                    Cmp::Lt => "lt",
                    Cmp::Le => "le",
                    Cmp::Gt => "gt",
                    Cmp::Ge => "ge",
                };
                json!({ op: [a.to_json(), b.to_json()] })
            }
            Expr::Arith(op, a, b) => {
                let op = match op {
                    Arith::Sub => "sub",
                    Arith::Mul => "mul",
                    Arith::Div => "div",
                    Arith::Mod => "mod",
                };
                json!({ op: [a.to_json(), b.to_json()] })
            }
            Expr::If(c, a, b) => json!({ "if": [c.to_json(), a.to_json(), b.to_json()] }),
            Expr::Coalesce(a, b) => json!({ "coalesce": [a.to_json(), b.to_json()] }),
            Expr::Length(e) => json!({ "length": e.to_json() }),
            Expr::Count(e) => json!({ "count": e.to_json() }),
            Expr::Matches(e, p) => json!({ "matches": [e.to_json(), p.as_str()] }),
        }
    }

    /// Evaluates against `answers` (only visible answers should be passed).
    pub fn eval(&self, answers: &Map<String, Value>) -> Eval {
        match self {
            Expr::Literal(v) => from_json(v),
            Expr::Field(f) => answers.get(f).map_or(Eval::Unknown, from_json),
            Expr::Answered(f) => Eval::Bool(answers.get(f).is_some_and(|v| !v.is_null())),
            Expr::Sum(l) => {
                let mut total = Num::Int(0);
                for e in l {
                    match e.eval(answers) {
                        Eval::Num(n) => total = total.add(n),
                        _ => return Eval::Unknown,
                    }
                }
                Eval::Num(total)
            }
            Expr::Compare(c, a, b) => compare(*c, a.eval(answers), b.eval(answers)),
            Expr::And(l) => {
                let mut unknown = false;
                for e in l {
                    match e.eval(answers) {
                        Eval::Bool(false) => return Eval::Bool(false),
                        Eval::Bool(true) => {}
                        _ => unknown = true,
                    }
                }
                if unknown {
                    Eval::Unknown
                } else {
                    Eval::Bool(true)
                }
            }
            Expr::Or(l) => {
                let mut unknown = false;
                for e in l {
                    match e.eval(answers) {
                        Eval::Bool(true) => return Eval::Bool(true),
                        Eval::Bool(false) => {}
                        _ => unknown = true,
                    }
                }
                if unknown {
                    Eval::Unknown
                } else {
                    Eval::Bool(false)
                }
            }
            Expr::Not(e) => match e.eval(answers) {
                Eval::Bool(b) => Eval::Bool(!b),
                _ => Eval::Unknown,
            },
            Expr::Includes(e, option) => match e.eval(answers) {
                Eval::List(l) => Eval::Bool(l.contains(option)),
                Eval::Text(t) => Eval::Bool(&t == option),
                _ => Eval::Unknown,
            },
            Expr::Arith(op, a, b) => match (a.eval(answers), b.eval(answers)) {
                (Eval::Num(x), Eval::Num(y)) => x.arith(*op, y).map_or(Eval::Unknown, Eval::Num),
                _ => Eval::Unknown,
            },
            Expr::If(c, a, b) => match c.eval(answers) {
                Eval::Bool(true) => a.eval(answers),
                Eval::Bool(false) => b.eval(answers),
                _ => Eval::Unknown,
            },
            Expr::Coalesce(a, b) => match a.eval(answers) {
                Eval::Unknown => b.eval(answers),
                Eval::Text(t) if t.is_empty() => b.eval(answers),
                v => v,
            },
            Expr::Length(e) => match e.eval(answers) {
                Eval::Text(t) => Eval::Num(Num::Int(t.chars().count() as i128)),
                _ => Eval::Unknown,
            },
            Expr::Count(e) => match e.eval(answers) {
                Eval::List(l) => Eval::Num(Num::Int(l.len() as i128)),
                Eval::Text(_) => Eval::Num(Num::Int(1)),
                _ => Eval::Unknown,
            },
            Expr::Matches(e, p) => match e.eval(answers) {
                Eval::Text(t) => Eval::Bool(p.re.is_match(&t)),
                _ => Eval::Unknown,
            },
        }
    }
}

/// A list of operands as a fixed number of them.
fn exactly<const N: usize>(l: Vec<Expr>) -> Result<[Expr; N], String> {
    l.try_into()
        .map_err(|l: Vec<Expr>| format!("expected {N} operands, got {}", l.len()))
}

fn single(obj: &Map<String, Value>) -> Result<(&str, &Value), String> {
    let mut it = obj.iter();
    match (it.next(), it.next()) {
        (Some((k, v)), None) => Ok((k.as_str(), v)),
        _ => Err("an expression object has exactly one operator key".into()),
    }
}

fn from_json(v: &Value) -> Eval {
    match v {
        Value::Number(n) => Num::from_json(n).map_or(Eval::Unknown, Eval::Num),
        Value::Bool(b) => Eval::Bool(*b),
        Value::String(s) => Eval::Text(s.clone()),
        Value::Array(a) => Eval::List(
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect(),
        ),
        _ => Eval::Unknown,
    }
}

fn compare(c: Cmp, a: Eval, b: Eval) -> Eval {
    use std::cmp::Ordering::*;
    let ord = match (&a, &b) {
        (Eval::Num(x), Eval::Num(y)) => x.cmp(*y),
        (Eval::Text(x), Eval::Text(y)) => Some(x.cmp(y)),
        (Eval::Bool(x), Eval::Bool(y)) if matches!(c, Cmp::Eq | Cmp::Ne) => Some(x.cmp(y)),
        _ => None,
    };
    let Some(o) = ord else { return Eval::Unknown };
    Eval::Bool(match c {
        Cmp::Eq => o == Equal,
        Cmp::Ne => o != Equal,
        Cmp::Lt => o == Less,
        Cmp::Le => o != Greater,
        Cmp::Gt => o == Greater,
        Cmp::Ge => o != Less,
    })
}
