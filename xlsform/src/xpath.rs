//! The XPath subset that XLSForm's `relevant`, `constraint` and
//! `calculate` columns use, parsed into Observer's expression trees and
//! printed back. Anything outside the subset is refused with the construct
//! named: a form that silently lost a condition would ask the wrong
//! questions at a polling station.
//!
//! Supported: `${field}`, `.` (the field itself, in a constraint), numbers,
//! quoted text, `= != < <= > >=`, `and`, `or`, `not()`, `+ - * div mod`,
//! unary minus, parentheses, `selected()`, `count-selected()`,
//! `string-length()`, `regex()`, `if()`, `coalesce()`, `true()`, `false()`.

use observer_core::forms::{Arith, Cmp, Expr, Pattern};
use serde_json::Value;

/// Deepest nesting the parser follows (a hostile cell cannot overflow the
/// stack; the form format itself allows 32).
const MAX_DEPTH: usize = 64;
/// Longest expression read, in bytes.
pub const MAX_EXPRESSION_BYTES: usize = 8 * 1024;

/// Why an expression was refused: where (a character offset) and what.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("at character {at}: {what}")]
pub struct XPathError {
    pub at: usize,
    pub what: String,
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Num(String),
    Str(String),
    Ref(String),
    Dot,
    Name(String),
    LParen,
    RParen,
    Comma,
    Op(&'static str),
}

fn err(at: usize, what: impl Into<String>) -> XPathError {
    XPathError {
        at,
        what: what.into(),
    }
}

fn lex(src: &str) -> Result<Vec<(usize, Tok)>, XPathError> {
    if src.len() > MAX_EXPRESSION_BYTES {
        return Err(err(
            0,
            format!("an expression is at most {MAX_EXPRESSION_BYTES} bytes"),
        ));
    }
    let chars: Vec<(usize, char)> = src.char_indices().collect();
    let mut out = Vec::new();
    let mut i = 0;
    // Character positions, 1-based, for messages a coordinator can count.
    let pos = |i: usize| i + 1;
    while i < chars.len() {
        let (_, c) = chars[i];
        let at = pos(i);
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                out.push((at, Tok::LParen));
                i += 1
            }
            ')' => {
                out.push((at, Tok::RParen));
                i += 1
            }
            ',' => {
                out.push((at, Tok::Comma));
                i += 1
            }
            '=' => {
                out.push((at, Tok::Op("=")));
                i += 1
            }
            '+' | '-' | '*' => {
                out.push((
                    at,
                    Tok::Op(match c {
                        '+' => "+",
                        '-' => "-",
                        _ => "*",
                    }),
                ));
                i += 1
            }
            '!' | '<' | '>' => {
                let eq = chars.get(i + 1).is_some_and(|&(_, n)| n == '=');
                let op = match (c, eq) {
                    ('!', true) => "!=",
                    ('<', true) => "<=",
                    ('>', true) => ">=",
                    ('<', false) => "<",
                    ('>', false) => ">",
                    _ => return Err(err(at, "`!` is not an operator (use `!=` or not())")),
                };
                out.push((at, Tok::Op(op)));
                i += if eq { 2 } else { 1 };
            }
            '\'' | '"' => {
                let end = chars[i + 1..]
                    .iter()
                    .position(|&(_, n)| n == c)
                    .ok_or_else(|| err(at, "text that is never closed"))?;
                out.push((
                    at,
                    Tok::Str(chars[i + 1..i + 1 + end].iter().map(|p| p.1).collect()),
                ));
                i += end + 2;
            }
            '$' => {
                if chars.get(i + 1).map(|p| p.1) != Some('{') {
                    return Err(err(at, "`$` outside a ${field} reference"));
                }
                let end = chars[i + 2..]
                    .iter()
                    .position(|&(_, n)| n == '}')
                    .ok_or_else(|| err(at, "a ${field} reference that is never closed"))?;
                let name: String = chars[i + 2..i + 2 + end].iter().map(|p| p.1).collect();
                if name.is_empty() {
                    return Err(err(at, "an empty ${} reference"));
                }
                out.push((at, Tok::Ref(name)));
                i += end + 3;
            }
            '.' if chars.get(i + 1).is_some_and(|p| p.1 == '.') => {
                return Err(err(at, "`..` (the parent node) is not supported"));
            }
            '.' if !chars.get(i + 1).is_some_and(|p| p.1.is_ascii_digit()) => {
                out.push((at, Tok::Dot));
                i += 1
            }
            c if c.is_ascii_digit() || c == '.' => {
                let start = i;
                while i < chars.len() && (chars[i].1.is_ascii_digit() || chars[i].1 == '.') {
                    i += 1;
                }
                let n: String = chars[start..i].iter().map(|p| p.1).collect();
                if n.matches('.').count() > 1 {
                    return Err(err(at, format!("{n:?} is not a number")));
                }
                out.push((at, Tok::Num(n)));
            }
            c if c.is_alphabetic() || c == '_' => {
                let start = i;
                while i < chars.len()
                    && (chars[i].1.is_alphanumeric() || matches!(chars[i].1, '_' | '-' | ':'))
                {
                    i += 1;
                }
                out.push((at, Tok::Name(chars[start..i].iter().map(|p| p.1).collect())));
            }
            '/' => {
                return Err(err(
                    at,
                    "path expressions (`/data/...`) are not supported; use ${field}",
                ));
            }
            '|' => return Err(err(at, "node-set union `|` is not supported")),
            '@' => return Err(err(at, "attributes (`@`) are not supported")),
            '[' | ']' => return Err(err(at, "predicates (`[...]`) are not supported")),
            other => return Err(err(at, format!("unexpected {other:?}"))),
        }
    }
    Ok(out)
}

struct Parser<'a> {
    toks: Vec<(usize, Tok)>,
    next: usize,
    end: usize,
    /// The field `.` stands for, where `.` is allowed.
    this: Option<&'a str>,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.next).map(|t| &t.1)
    }

    fn at(&self) -> usize {
        self.toks.get(self.next).map_or(self.end, |t| t.0)
    }

    fn bump(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.next).map(|t| t.1.clone());
        self.next += 1;
        t
    }

    fn eat_name(&mut self, name: &str) -> bool {
        if matches!(self.peek(), Some(Tok::Name(n)) if n == name) {
            self.next += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, t: Tok, what: &str) -> Result<(), XPathError> {
        if self.peek() == Some(&t) {
            self.next += 1;
            Ok(())
        } else {
            Err(err(self.at(), format!("expected {what}")))
        }
    }

    fn deeper(&self, depth: usize) -> Result<usize, XPathError> {
        if depth >= MAX_DEPTH {
            Err(err(self.at(), format!("nested deeper than {MAX_DEPTH}")))
        } else {
            Ok(depth + 1)
        }
    }

    fn or(&mut self, depth: usize) -> Result<Expr, XPathError> {
        let depth = self.deeper(depth)?;
        let first = self.and(depth)?;
        let mut all = vec![first];
        while self.eat_name("or") {
            all.push(self.and(depth)?);
        }
        Ok(if all.len() == 1 {
            all.remove(0)
        } else {
            Expr::Or(all)
        })
    }

    fn and(&mut self, depth: usize) -> Result<Expr, XPathError> {
        let first = self.equality(depth)?;
        let mut all = vec![first];
        while self.eat_name("and") {
            all.push(self.equality(depth)?);
        }
        Ok(if all.len() == 1 {
            all.remove(0)
        } else {
            Expr::And(all)
        })
    }

    fn comparison(&mut self, ops: &[(&str, Cmp)]) -> Option<Cmp> {
        let found = match self.peek() {
            Some(Tok::Op(o)) => ops.iter().find(|(s, _)| s == o).map(|p| p.1),
            _ => None,
        };
        if found.is_some() {
            self.next += 1;
        }
        found
    }

    fn equality(&mut self, depth: usize) -> Result<Expr, XPathError> {
        let left = self.relational(depth)?;
        let Some(cmp) = self.comparison(&[("=", Cmp::Eq), ("!=", Cmp::Ne)]) else {
            return Ok(left);
        };
        let right = self.relational(depth)?;
        if matches!(self.peek(), Some(Tok::Op("=" | "!="))) {
            return Err(err(
                self.at(),
                "chained comparisons (`a = b = c`) are not supported",
            ));
        }
        Ok(compare(cmp, left, right))
    }

    fn relational(&mut self, depth: usize) -> Result<Expr, XPathError> {
        let left = self.additive(depth)?;
        let ops = [
            ("<", Cmp::Lt),
            ("<=", Cmp::Le),
            (">", Cmp::Gt),
            (">=", Cmp::Ge),
        ];
        let Some(cmp) = self.comparison(&ops) else {
            return Ok(left);
        };
        let right = self.additive(depth)?;
        if matches!(self.peek(), Some(Tok::Op("<" | "<=" | ">" | ">="))) {
            return Err(err(
                self.at(),
                "chained comparisons (`a < b < c`) are not supported",
            ));
        }
        Ok(Expr::Compare(cmp, Box::new(left), Box::new(right)))
    }

    fn additive(&mut self, depth: usize) -> Result<Expr, XPathError> {
        let mut left = self.multiplicative(depth)?;
        // `a + b + c` is one sum; a parenthesised sum stays an operand.
        let mut summing = false;
        loop {
            match self.peek() {
                Some(Tok::Op("+")) => {
                    self.next += 1;
                    let right = self.multiplicative(depth)?;
                    left = match left {
                        Expr::Sum(mut l) if summing => {
                            l.push(right);
                            Expr::Sum(l)
                        }
                        other => Expr::Sum(vec![other, right]),
                    };
                    summing = true;
                }
                Some(Tok::Op("-")) => {
                    self.next += 1;
                    let right = self.multiplicative(depth)?;
                    left = Expr::Arith(Arith::Sub, Box::new(left), Box::new(right));
                    summing = false;
                }
                _ => return Ok(left),
            }
        }
    }

    fn multiplicative(&mut self, depth: usize) -> Result<Expr, XPathError> {
        let mut left = self.unary(depth)?;
        loop {
            let op = match self.peek() {
                Some(Tok::Op("*")) => Arith::Mul,
                Some(Tok::Name(n)) if n == "div" => Arith::Div,
                Some(Tok::Name(n)) if n == "mod" => Arith::Mod,
                _ => return Ok(left),
            };
            self.next += 1;
            let right = self.unary(depth)?;
            left = Expr::Arith(op, Box::new(left), Box::new(right));
        }
    }

    fn unary(&mut self, depth: usize) -> Result<Expr, XPathError> {
        if self.peek() == Some(&Tok::Op("-")) {
            self.next += 1;
            let depth = self.deeper(depth)?;
            return Ok(match self.unary(depth)? {
                Expr::Literal(Value::Number(n)) if n.as_i64().is_some_and(|i| i > i64::MIN) => {
                    Expr::Literal(Value::from(-n.as_i64().unwrap_or(0)))
                }
                Expr::Literal(Value::Number(n)) if n.as_f64().is_some() => {
                    Expr::Literal(number(-n.as_f64().unwrap_or(0.0)))
                }
                e => Expr::Arith(
                    Arith::Sub,
                    Box::new(Expr::Literal(Value::from(0))),
                    Box::new(e),
                ),
            });
        }
        self.primary(depth)
    }

    fn primary(&mut self, depth: usize) -> Result<Expr, XPathError> {
        let at = self.at();
        match self.bump() {
            Some(Tok::Num(n)) => {
                if n.contains('.') {
                    n.parse::<f64>()
                        .ok()
                        .filter(|f| f.is_finite())
                        .map(|f| Expr::Literal(number(f)))
                        .ok_or_else(|| err(at, format!("{n:?} is not a number")))
                } else {
                    n.parse::<i64>()
                        .map(|i| Expr::Literal(Value::from(i)))
                        .map_err(|_| err(at, format!("{n} is too large")))
                }
            }
            Some(Tok::Str(s)) => Ok(Expr::Literal(Value::String(s))),
            Some(Tok::Ref(name)) => Ok(Expr::Field(name)),
            Some(Tok::Dot) => match self.this {
                Some(this) => Ok(Expr::Field(this.to_string())),
                None => Err(err(
                    at,
                    "`.` (this field) is only meaningful in a constraint",
                )),
            },
            Some(Tok::LParen) => {
                let depth = self.deeper(depth)?;
                let e = self.or(depth)?;
                self.expect(Tok::RParen, "`)`")?;
                Ok(e)
            }
            Some(Tok::Name(name)) => {
                if self.peek() != Some(&Tok::LParen) {
                    return Err(err(
                        at,
                        format!("`{name}` is not supported here (fields are written ${{name}})"),
                    ));
                }
                self.next += 1;
                let depth = self.deeper(depth)?;
                self.call(&name, at, depth)
            }
            Some(Tok::RParen) => Err(err(at, "unexpected `)`")),
            Some(Tok::Comma) => Err(err(at, "unexpected `,`")),
            Some(Tok::Op(o)) => Err(err(at, format!("unexpected `{o}`"))),
            None => Err(err(at, "the expression ends too early")),
        }
    }

    fn args(&mut self, depth: usize) -> Result<Vec<Expr>, XPathError> {
        let mut args = Vec::new();
        if self.peek() == Some(&Tok::RParen) {
            self.next += 1;
            return Ok(args);
        }
        loop {
            args.push(self.or(depth)?);
            match self.bump() {
                Some(Tok::Comma) => {}
                Some(Tok::RParen) => return Ok(args),
                _ => return Err(err(self.at(), "expected `,` or `)`")),
            }
        }
    }

    fn call(&mut self, name: &str, at: usize, depth: usize) -> Result<Expr, XPathError> {
        const SUPPORTED: &[&str] = &[
            "not",
            "selected",
            "count-selected",
            "string-length",
            "regex",
            "if",
            "coalesce",
            "true",
            "false",
        ];
        if !SUPPORTED.contains(&name) {
            return Err(err(at, format!("the function {name}() is not supported")));
        }
        let args = self.args(depth)?;
        let arity = |n: usize| -> Result<(), XPathError> {
            if args.len() == n {
                Ok(())
            } else {
                Err(err(
                    at,
                    format!("{name}() takes {n} argument(s), got {}", args.len()),
                ))
            }
        };
        let text = |e: &Expr, what: &str| match e {
            Expr::Literal(Value::String(s)) => Ok(s.clone()),
            _ => Err(err(
                at,
                format!("the {what} of {name}() must be quoted text"),
            )),
        };
        let mut it = args.iter().cloned();
        let mut arg = || {
            it.next()
                .map(Box::new)
                .unwrap_or_else(|| Box::new(Expr::Literal(Value::Null)))
        };
        Ok(match name {
            "true" | "false" => {
                arity(0)?;
                Expr::Literal(Value::Bool(name == "true"))
            }
            "not" => {
                arity(1)?;
                Expr::Not(arg())
            }
            "selected" => {
                arity(2)?;
                let option = text(&args[1], "option")?;
                Expr::Includes(arg(), option)
            }
            "count-selected" => {
                arity(1)?;
                Expr::Count(arg())
            }
            "string-length" => {
                arity(1)?;
                Expr::Length(arg())
            }
            "regex" => {
                arity(2)?;
                let p = Pattern::new(&text(&args[1], "pattern")?).map_err(|e| err(at, e))?;
                Expr::Matches(arg(), p)
            }
            "if" => {
                arity(3)?;
                Expr::If(arg(), arg(), arg())
            }
            _ => {
                arity(2)?;
                Expr::Coalesce(arg(), arg())
            }
        })
    }
}

fn number(f: f64) -> Value {
    serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
}

/// `${f} = ''` is XLSForm's way of asking whether `f` is unanswered.
fn compare(cmp: Cmp, a: Expr, b: Expr) -> Expr {
    let empty = |e: &Expr| matches!(e, Expr::Literal(Value::String(s)) if s.is_empty());
    let field = match (&a, &b) {
        (Expr::Field(f), e) | (e, Expr::Field(f)) if empty(e) => Some(f.clone()),
        _ => None,
    };
    match (field, cmp) {
        (Some(f), Cmp::Ne) => Expr::Answered(f),
        (Some(f), Cmp::Eq) => Expr::Not(Box::new(Expr::Answered(f))),
        _ => Expr::Compare(cmp, Box::new(a), Box::new(b)),
    }
}

/// Parses an expression; `this` is the field `.` stands for (a constraint's
/// own field), or `None` where `.` means nothing.
pub fn parse(src: &str, this: Option<&str>) -> Result<Expr, XPathError> {
    let toks = lex(src)?;
    let end = src.chars().count() + 1;
    let mut p = Parser {
        toks,
        next: 0,
        end,
        this,
    };
    if p.peek().is_none() {
        return Err(err(1, "the expression is empty"));
    }
    let e = p.or(0)?;
    match p.peek() {
        None => Ok(e),
        Some(t) => Err(err(p.at(), format!("unexpected {}", describe(t)))),
    }
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Num(n) => format!("number {n}"),
        Tok::Str(s) => format!("text {s:?}"),
        Tok::Ref(r) => format!("${{{r}}}"),
        Tok::Dot => "`.`".into(),
        Tok::Name(n) => format!("`{n}`"),
        Tok::LParen => "`(`".into(),
        Tok::RParen => "`)`".into(),
        Tok::Comma => "`,`".into(),
        Tok::Op(o) => format!("`{o}`"),
    }
}

/// Why an expression cannot be written as XPath.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PrintError(pub String);

/// Writes an expression as XPath that [`parse`] reads back to the same
/// tree; `this` is printed as `.`.
pub fn print(e: &Expr, this: Option<&str>) -> Result<String, PrintError> {
    let mut out = String::new();
    write(e, this, &mut out)?;
    Ok(out)
}

/// How tightly an expression binds as an operand: XPath's precedence, from
/// `or` (1) to a value or function call (7).
fn precedence(e: &Expr) -> u8 {
    if negation(e).is_some() {
        return 7;
    }
    match e {
        Expr::Or(l) if l.len() > 1 => 1,
        Expr::And(l) if l.len() > 1 => 2,
        Expr::Answered(_) | Expr::Compare(Cmp::Eq | Cmp::Ne, ..) => 3,
        Expr::Compare(..) => 4,
        Expr::Sum(l) if l.len() > 1 => 5,
        Expr::Arith(Arith::Sub, ..) => 5,
        Expr::Arith(..) => 6,
        Expr::Sum(l) | Expr::And(l) | Expr::Or(l) => l.first().map_or(7, precedence),
        _ => 7,
    }
}

/// `0 - e`, which is how the parser reads unary minus before anything but
/// a number: printed back as `-e`, so it reads back at the same depth.
fn negation(e: &Expr) -> Option<&Expr> {
    match e {
        Expr::Arith(Arith::Sub, zero, operand)
            if matches!(zero.as_ref(), Expr::Literal(Value::Number(n)) if n.as_i64() == Some(0))
                && !matches!(operand.as_ref(), Expr::Literal(Value::Number(_))) =>
        {
            Some(operand)
        }
        _ => None,
    }
}

/// Writes an operand, in parentheses unless it binds tighter than `above`.
fn operand(e: &Expr, above: u8, this: Option<&str>, out: &mut String) -> Result<(), PrintError> {
    if precedence(e) > above {
        write(e, this, out)
    } else {
        out.push('(');
        write(e, this, out)?;
        out.push(')');
        Ok(())
    }
}

/// Operands of a flattened operator: one of the same level is kept apart
/// by parentheses, so it reads back as the same tree.
fn join(
    l: &[Expr],
    sep: &str,
    level: u8,
    this: Option<&str>,
    out: &mut String,
) -> Result<(), PrintError> {
    for (i, e) in l.iter().enumerate() {
        if i > 0 {
            out.push_str(sep);
        }
        operand(e, level, this, out)?;
    }
    Ok(())
}

/// A number as XPath writes it: XPath 1.0 has no exponent (`3e+19`), and a
/// decimal keeps its point so it reads back as a decimal.
fn number_text(n: &serde_json::Number) -> String {
    match (n.as_i64(), n.as_f64()) {
        (Some(i), _) => i.to_string(),
        (None, Some(f)) => {
            // Rust writes the shortest digits that read back to the same
            // number, never with an exponent.
            let text = f.to_string();
            if text.contains('.') {
                text
            } else {
                format!("{text}.0")
            }
        }
        (None, None) => n.to_string(),
    }
}

fn quote(s: &str) -> Result<String, PrintError> {
    if !s.contains('\'') {
        Ok(format!("'{s}'"))
    } else if !s.contains('"') {
        Ok(format!("\"{s}\""))
    } else {
        Err(PrintError(format!(
            "text {s:?} holds both quote marks, which XPath 1.0 cannot write"
        )))
    }
}

fn call(
    name: &str,
    args: &[&Expr],
    this: Option<&str>,
    out: &mut String,
) -> Result<(), PrintError> {
    out.push_str(name);
    out.push('(');
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        write(a, this, out)?;
    }
    out.push(')');
    Ok(())
}

fn write(e: &Expr, this: Option<&str>, out: &mut String) -> Result<(), PrintError> {
    if let Some(operand) = negation(e) {
        out.push('-');
        return self::operand(operand, 6, this, out);
    }
    match e {
        Expr::Literal(v) => match v {
            Value::Number(n) => out.push_str(&number_text(n)),
            Value::String(s) => out.push_str(&quote(s)?),
            Value::Bool(b) => out.push_str(if *b { "true()" } else { "false()" }),
            other => {
                return Err(PrintError(format!(
                    "the constant {other} has no XPath form"
                )));
            }
        },
        Expr::Field(f) if Some(f.as_str()) == this => out.push('.'),
        Expr::Field(f) => {
            out.push_str("${");
            out.push_str(f);
            out.push('}');
        }
        Expr::Answered(f) => {
            write(&Expr::Field(f.clone()), this, out)?;
            out.push_str(" != ''");
        }
        // One operand: XPath has no word for it, and it means its operand.
        Expr::Sum(l) | Expr::And(l) | Expr::Or(l) if l.len() == 1 => write(&l[0], this, out)?,
        Expr::Sum(l) => {
            // `a - b + c` reads as a sum whose first operand is `a - b`:
            // only a sum there needs brackets (it would merge).
            match l.first() {
                Some(first @ Expr::Arith(..)) => {
                    operand(first, 4, this, out)?;
                    out.push_str(" + ");
                    join(&l[1..], " + ", 5, this, out)?;
                }
                _ => join(l, " + ", 5, this, out)?,
            }
        }
        Expr::And(l) => join(l, " and ", 2, this, out)?,
        Expr::Or(l) => join(l, " or ", 1, this, out)?,
        Expr::Not(e) => call("not", &[e], this, out)?,
        Expr::Includes(e, o) => call(
            "selected",
            &[e, &Expr::Literal(Value::String(o.clone()))],
            this,
            out,
        )?,
        Expr::Compare(c, a, b) => {
            // Comparisons do not chain: an operand that is one is bracketed.
            operand(a, 4, this, out)?;
            out.push_str(match c {
                Cmp::Eq => " = ",
                Cmp::Ne => " != ",
                Cmp::Lt => " < ",
                Cmp::Le => " <= ",
                Cmp::Gt => " > ",
                Cmp::Ge => " >= ",
            });
            operand(b, 4, this, out)?;
        }
        Expr::Arith(op, a, b) => {
            // Left-associative: the left operand may be of the same level.
            let level = precedence(e);
            operand(a, level - 1, this, out)?;
            out.push_str(match op {
                Arith::Sub => " - ",
                Arith::Mul => " * ",
                Arith::Div => " div ",
                Arith::Mod => " mod ",
            });
            operand(b, level, this, out)?;
        }
        Expr::If(c, a, b) => call("if", &[c, a, b], this, out)?,
        Expr::Coalesce(a, b) => call("coalesce", &[a, b], this, out)?,
        Expr::Length(e) => call("string-length", &[e], this, out)?,
        Expr::Count(e) => call("count-selected", &[e], this, out)?,
        Expr::Matches(e, p) => call(
            "regex",
            &[e, &Expr::Literal(Value::String(p.as_str().to_string()))],
            this,
            out,
        )?,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(s: &str) -> Expr {
        parse(s, Some("me")).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn the_subset_parses_into_the_trees_the_json_format_writes() {
        let cases = [
            ("${a} = 'x'", json!({"eq": [{"field": "a"}, "x"]})),
            ("${a} != ''", json!({"answered": "a"})),
            ("${a} = ''", json!({"not": {"answered": "a"}})),
            (
                ". = ${a} + ${b} + ${c}",
                json!({"eq": [{"field": "me"}, {"sum": [{"field": "a"}, {"field": "b"}, {"field": "c"}]}]}),
            ),
            (
                "${a} - ${b} * 2 div 4 mod 3",
                json!({"sub": [{"field": "a"}, {"mod": [{"div": [{"mul": [{"field": "b"}, 2]}, 4]}, 3]}]}),
            ),
            (
                "selected(${p}, 'x') and not(${q} > 1.5) or true()",
                json!({"or": [{"and": [{"includes": [{"field": "p"}, "x"]}, {"not": {"gt": [{"field": "q"}, 1.5]}}]}, true]}),
            ),
            (
                "count-selected(.) <= 3 and string-length(${t}) < 10",
                json!({"and": [{"le": [{"count": {"field": "me"}}, 3]}, {"lt": [{"length": {"field": "t"}}, 10]}]}),
            ),
            (
                "regex(., '[0-9]{4}') and if(${a} > 0, ${b}, coalesce(${c}, -1)) >= -2",
                json!({"and": [{"matches": [{"field": "me"}, "[0-9]{4}"]},
                                {"ge": [{"if": [{"gt": [{"field": "a"}, 0]}, {"field": "b"}, {"coalesce": [{"field": "c"}, -1]}]}, -2]}]}),
            ),
            (
                "-${a} < 0",
                json!({"lt": [{"sub": [0, {"field": "a"}]}, 0]}),
            ),
        ];
        for (src, want) in cases {
            assert_eq!(p(src), Expr::parse(&want).unwrap(), "{src}");
        }
    }

    #[test]
    fn printing_reads_back_to_the_same_tree() {
        for src in [
            ". = ${a} + ${b} + ${c}",
            "(${a} + ${b}) + ${c} > -3",
            "${a} - (${b} - ${c})",
            "not(${a} != '') or selected(${m}, 'x') and count-selected(${m}) = 2",
            "if(${a} > 0, 'yes', \"it's\") = coalesce(${b}, 'no')",
            "regex(${c}, '[A-Z]{2}-[0-9]+') and string-length(.) <= 2000",
            "${d} * 2.5 div 3 mod 2 >= ${e}",
            "${a} + ${b} - ${c} = ${a} + (${b} - ${c})",
            "${a} * (${b} div ${c}) < -1 and (${x} or ${y}) and (${p} and ${q})",
            "(${a} = 1) = (${b} = 2)",
            "29999999999999999999.791584 > 0.0000001",
            "9 - 9 - --(${a} * 2) - -${b} - 0 - 5 = 0.0 - ${c}",
            "9 * 99 - 9 + 909 - 29 + 9 - 2 + (${a} + 1) + ${b}",
        ] {
            let e = p(src);
            let printed = print(&e, Some("me")).unwrap();
            assert_eq!(p(&printed), e, "{src} printed as {printed}");
        }
        // Brackets only where precedence needs them.
        for (src, printed) in [
            (
                "(${a} = 1) or (${b} > 2 and ${c} < 3)",
                "${a} = 1 or ${b} > 2 and ${c} < 3",
            ),
            (
                "${r} = ((${i} + ${s}) + ${u})",
                "${r} = (${i} + ${s}) + ${u}",
            ),
            ("${r} = ${i} + ${s} + ${u}", "${r} = ${i} + ${s} + ${u}"),
            ("-(${a}) < --${b}", "-${a} < --${b}"),
            (
                "${a} - ${b} + ${c} - ${d} + ${e}",
                "${a} - ${b} + ${c} - ${d} + ${e}",
            ),
        ] {
            assert_eq!(print(&p(src), None).unwrap(), printed);
        }
    }

    #[test]
    fn constructs_outside_the_subset_are_named() {
        for (src, named) in [
            ("concat(${a}, 'x')", "concat() is not supported"),
            ("/data/a > 1", "path expressions"),
            ("${a} > 1 | ${b}", "union"),
            ("../a", "`..`"),
            ("${a}[1]", "predicates"),
            ("@id = 1", "attributes"),
            ("position() = 1", "position() is not supported"),
            ("${a} = ${b} = ${c}", "chained comparisons"),
            ("a > 1", "`a` is not supported"),
            ("selected(${a})", "takes 2 argument"),
            ("selected(${a}, ${b})", "must be quoted text"),
            ("regex(${a}, '(')", "not a regular expression"),
            ("${a} > ", "ends too early"),
            ("(${a} > 1", "expected `)`"),
            ("'open", "never closed"),
            ("${a", "never closed"),
            ("", "empty"),
        ] {
            let e = parse(src, None).expect_err(src);
            assert!(e.to_string().contains(named), "{src}: {e}");
        }
        let e = parse(". > 1", None).unwrap_err();
        assert!(
            e.to_string().contains("only meaningful in a constraint"),
            "{e}"
        );
        let deep = format!("{}1{}", "(".repeat(200), ")".repeat(200));
        assert!(
            parse(&deep, None)
                .unwrap_err()
                .to_string()
                .contains("nested deeper")
        );
    }
}
