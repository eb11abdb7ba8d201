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
//! ```

use serde_json::{Map, Value};

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
            "eq" | "ne" | "lt" | "le" | "gt" | "ge" => {
                let cmp = match op {
                    "eq" => Cmp::Eq,
                    "ne" => Cmp::Ne,
                    "lt" => Cmp::Lt,
                    "le" => Cmp::Le,
                    "gt" => Cmp::Gt,
                    _ => Cmp::Ge,
                };
                let mut l = list(2, 2)?;
                let b = l.pop().expect("two operands");
                let a = l.pop().expect("two operands");
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
            Expr::Not(e) | Expr::Includes(e, _) => e.fields(out),
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
        }
    }
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
