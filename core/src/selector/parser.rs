//! A recursive-descent parser for Calico's selector language.
//!
//! The grammar, the lexing rules (only space and tab are whitespace; operator keywords only
//! right after a label and only at a word boundary; `has(` / `all(` / `global(` written
//! without a space before the parenthesis) and the precedence (`!` binds to one operation,
//! then `&&`, then `||`) follow upstream's tokenizer and parser exactly.

use std::collections::BTreeSet;

use super::ast::Expr;
use crate::error::SelectorError;

/// The longest label upstream accepts.
pub const MAX_LABEL_LEN: usize = 512;

/// Limits applied while parsing, so that hostile input cannot exhaust the stack or memory.
#[derive(Debug, Clone, Copy)]
pub struct ParseLimits {
    /// Longest selector text in bytes.
    pub max_len: usize,
    /// Deepest nesting of parentheses and negations.
    pub max_depth: usize,
}

impl Default for ParseLimits {
    fn default() -> Self {
        ParseLimits { max_len: 16 * 1024, max_depth: 64 }
    }
}

/// Parses a selector with the default limits.
///
/// ```
/// let e = palisade::selector::parse("! (has( b)||! has(a ))").unwrap();
/// assert_eq!(e.to_string(), "!(has(b) || !has(a))");
/// assert!(palisade::selector::parse("b == b").is_err());
/// ```
pub fn parse(text: &str) -> Result<Expr, SelectorError> {
    parse_with(text, ParseLimits::default())
}

/// Parses a selector with explicit limits.
pub fn parse_with(text: &str, limits: ParseLimits) -> Result<Expr, SelectorError> {
    if text.len() > limits.max_len {
        return Err(SelectorError::new(
            0,
            format!("selector is {} bytes long, the limit is {}", text.len(), limits.max_len),
        ));
    }
    let mut p = Parser { s: text.as_bytes(), pos: 0, depth: 0, limits };
    p.ws();
    if p.eof() {
        return Ok(Expr::All);
    }
    let e = p.or_expr()?;
    p.ws();
    if !p.eof() {
        return Err(p.err("unexpected text after the end of the expression"));
    }
    Ok(e)
}

fn is_label_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'/' | b'-')
}

struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
    depth: usize,
    limits: ParseLimits,
}

impl Parser<'_> {
    fn eof(&self) -> bool {
        self.pos >= self.s.len()
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn err(&self, msg: impl Into<String>) -> SelectorError {
        SelectorError::new(self.pos, msg.into())
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
    }

    fn starts_with(&self, lit: &str) -> bool {
        self.s.get(self.pos..).is_some_and(|r| r.starts_with(lit.as_bytes()))
    }

    fn eat(&mut self, lit: &str) -> bool {
        if self.starts_with(lit) {
            self.pos += lit.len();
            true
        } else {
            false
        }
    }

    fn at_boundary(&self) -> bool {
        !self.peek().is_some_and(is_label_byte)
    }

    /// Eats a keyword only when it ends at a word boundary.
    fn eat_keyword(&mut self, kw: &str) -> bool {
        let save = self.pos;
        if self.eat(kw) && self.at_boundary() {
            return true;
        }
        self.pos = save;
        false
    }

    /// Eats a two-word operator such as `starts with`, with any spaces or tabs (or none)
    /// between the words, ending at a word boundary.
    fn eat_two_words(&mut self, first: &str, second: &str) -> bool {
        let save = self.pos;
        if self.eat(first) {
            self.ws();
            if self.eat(second) && self.at_boundary() {
                return true;
            }
        }
        self.pos = save;
        false
    }

    fn enter(&mut self) -> Result<(), SelectorError> {
        self.depth += 1;
        if self.depth > self.limits.max_depth {
            return Err(self.err(format!("selector nests deeper than {} levels", self.limits.max_depth)));
        }
        Ok(())
    }

    fn or_expr(&mut self) -> Result<Expr, SelectorError> {
        self.enter()?;
        let mut terms = vec![self.and_expr()?];
        loop {
            self.ws();
            if self.eat("||") {
                self.ws();
                terms.push(self.and_expr()?);
            } else {
                break;
            }
        }
        self.depth -= 1;
        Ok(if terms.len() == 1 { terms.swap_remove(0) } else { Expr::Or(terms) })
    }

    fn and_expr(&mut self) -> Result<Expr, SelectorError> {
        let mut terms = vec![self.operation()?];
        loop {
            self.ws();
            if self.eat("&&") {
                self.ws();
                terms.push(self.operation()?);
            } else {
                break;
            }
        }
        Ok(if terms.len() == 1 { terms.swap_remove(0) } else { Expr::And(terms) })
    }

    fn operation(&mut self) -> Result<Expr, SelectorError> {
        self.ws();
        let mut negations = 0usize;
        while self.peek() == Some(b'!') && !self.starts_with("!=") {
            self.pos += 1;
            negations += 1;
            self.ws();
        }
        let e = self.atom()?;
        Ok(if negations % 2 == 1 { Expr::Not(Box::new(e)) } else { e })
    }

    fn atom(&mut self) -> Result<Expr, SelectorError> {
        if self.eof() {
            return Err(self.err("expected a selector expression, found the end of input"));
        }
        if self.eat("has(") {
            self.ws();
            let label = self.label()?;
            self.ws();
            if !self.eat(")") {
                return Err(self.err("expected ')' to close has("));
            }
            return Ok(Expr::Has(label));
        }
        if self.eat("all(") {
            self.ws();
            if !self.eat(")") {
                return Err(self.err("expected ')' after all("));
            }
            return Ok(Expr::All);
        }
        if self.eat("global(") {
            self.ws();
            if !self.eat(")") {
                return Err(self.err("expected ')' after global("));
            }
            return Ok(Expr::Global);
        }
        if self.eat("(") {
            self.ws();
            let e = self.or_expr()?;
            self.ws();
            if !self.eat(")") {
                return Err(self.err("expected ')'"));
            }
            return Ok(e);
        }
        let label = self.label()?;
        self.ws();
        self.comparison(label)
    }

    fn comparison(&mut self, label: String) -> Result<Expr, SelectorError> {
        if self.eat("==") {
            self.ws();
            return Ok(Expr::Eq(label, self.string()?));
        }
        if self.eat("!=") {
            self.ws();
            return Ok(Expr::Ne(label, self.string()?));
        }
        if self.eat_keyword("contains") {
            self.ws();
            return Ok(Expr::Contains(label, self.string()?));
        }
        if self.eat_two_words("starts", "with") {
            self.ws();
            return Ok(Expr::StartsWith(label, self.string()?));
        }
        if self.eat_two_words("ends", "with") {
            self.ws();
            return Ok(Expr::EndsWith(label, self.string()?));
        }
        if self.eat_keyword("in") {
            self.ws();
            return Ok(Expr::In(label, self.set()?));
        }
        if self.eat_two_words("not", "in") {
            self.ws();
            return Ok(Expr::NotIn(label, self.set()?));
        }
        Err(self.err(format!(
            "expected an operator (==, !=, contains, starts with, ends with, in, not in) after label '{label}'"
        )))
    }

    fn label(&mut self) -> Result<String, SelectorError> {
        let start = self.pos;
        while self.peek().is_some_and(is_label_byte) {
            self.pos += 1;
        }
        let len = self.pos - start;
        if len == 0 {
            return Err(SelectorError::new(start, "expected a label".into()));
        }
        if len > MAX_LABEL_LEN {
            return Err(SelectorError::new(
                start,
                format!("label is {len} characters long, the limit is {MAX_LABEL_LEN}"),
            ));
        }
        // Label bytes are ASCII, so this slice is valid UTF-8.
        Ok(String::from_utf8_lossy(self.s.get(start..self.pos).unwrap_or_default()).into_owned())
    }

    fn string(&mut self) -> Result<String, SelectorError> {
        let quote = match self.peek() {
            Some(q @ (b'"' | b'\'')) => q,
            _ => return Err(self.err("expected a quoted string")),
        };
        let start = self.pos;
        self.pos += 1;
        let body_start = self.pos;
        while let Some(b) = self.peek() {
            if b == quote {
                let body = self.s.get(body_start..self.pos).unwrap_or_default();
                self.pos += 1;
                return std::str::from_utf8(body)
                    .map(str::to_string)
                    .map_err(|_| SelectorError::new(body_start, "string is not UTF-8".into()));
            }
            self.pos += 1;
        }
        Err(SelectorError::new(start, "unterminated string".into()))
    }

    fn set(&mut self) -> Result<BTreeSet<String>, SelectorError> {
        if !self.eat("{") {
            return Err(self.err("expected '{' to start a set"));
        }
        let mut out = BTreeSet::new();
        self.ws();
        if self.eat("}") {
            return Ok(out);
        }
        loop {
            self.ws();
            out.insert(self.string()?);
            self.ws();
            if self.eat(",") {
                self.ws();
                if self.eat("}") {
                    return Ok(out);
                }
                continue;
            }
            if self.eat("}") {
                return Ok(out);
            }
            return Err(self.err("expected ',' or '}' in a set"));
        }
    }
}
