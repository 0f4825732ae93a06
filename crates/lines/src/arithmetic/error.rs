//! Why a line of `tern eval` could not be evaluated, and where: the one error type every step of
//! the evaluator returns, and the text the client gets (`division by zero at column 2`).

use std::fmt;

use super::work::OutOfWork;

/// Longest source text quoted inside an error message (unit: characters),
/// so that an error about a 10 000-digit literal stays readable.
const MAX_QUOTED_CHARS: usize = 32;

/// Why a line could not be evaluated, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvalError {
    /// 1-based character position in the line the error refers to; `None`
    /// when there is no meaningful position (empty expression).
    pub column: Option<usize>,
    /// What went wrong.
    pub kind: EvalErrorKind,
}

/// The reasons evaluation can fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EvalErrorKind {
    /// The line holds no tokens at all.
    EmptyExpression,
    /// A character that is not part of the expression language.
    InvalidCharacter(char),
    /// A malformed number, such as `007` or `1e`.
    InvalidNumber(String),
    /// A token in a place where it cannot appear; holds its source text.
    UnexpectedToken(String),
    /// The line ended where an operand was still needed.
    UnexpectedEnd,
    /// A `(` that is never closed; the column is that of the `(`.
    UnclosedParenthesis,
    /// More than 100 parentheses / unary operators open at once.
    NestingTooDeep,
    /// An integer result would exceed 100 000 bits, an integer literal
    /// exceeds 10 000 digits, a float literal overflows to infinity, or an
    /// integer is too large to convert to a float.
    NumberTooLarge,
    /// A float result is too large to represent (Python: `inf` or
    /// `OverflowError`).
    FloatOverflow,
    /// Division or modulo by zero, or zero raised to a negative power.
    DivisionByZero,
    /// A negative number raised to a fractional power (Python would return a
    /// complex number).
    ComplexResult,
    /// The line needs more work than its budget allows; the column is that
    /// of the token or operator that did not fit (none when printing the
    /// result did not fit).
    TooMuchWork,
}

impl EvalError {
    pub(super) fn at(column: usize, kind: EvalErrorKind) -> Self {
        EvalError {
            column: Some(column),
            kind,
        }
    }
}

impl EvalErrorKind {
    /// The reason, without position.
    fn describe(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EvalErrorKind::EmptyExpression => f.write_str("empty expression"),
            EvalErrorKind::InvalidCharacter(c) => {
                write!(f, "invalid character '{}'", c.escape_debug())
            }
            EvalErrorKind::InvalidNumber(text) => {
                write!(f, "invalid number literal '{}'", quote(text))
            }
            EvalErrorKind::UnexpectedToken(text) => {
                write!(f, "unexpected token '{}'", quote(text))
            }
            EvalErrorKind::UnexpectedEnd => f.write_str("unexpected end of input"),
            EvalErrorKind::UnclosedParenthesis => f.write_str("unclosed '('"),
            EvalErrorKind::NestingTooDeep => f.write_str("nesting too deep"),
            EvalErrorKind::NumberTooLarge => f.write_str("number too large"),
            EvalErrorKind::FloatOverflow => f.write_str("result too large"),
            EvalErrorKind::DivisionByZero => f.write_str("division by zero"),
            EvalErrorKind::ComplexResult => {
                f.write_str("negative number raised to a fractional power")
            }
            EvalErrorKind::TooMuchWork => f.write_str("too much work for one line"),
        }
    }
}

impl fmt::Display for EvalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.kind.describe(f)?;
        match self.column {
            Some(column) => write!(f, " at column {column}"),
            None => Ok(()),
        }
    }
}

impl std::error::Error for EvalError {}

impl From<OutOfWork> for EvalErrorKind {
    fn from(_: OutOfWork) -> Self {
        EvalErrorKind::TooMuchWork
    }
}

/// Shortens and escapes source text for inclusion in an error message.
fn quote(text: &str) -> String {
    let mut out: String = text
        .chars()
        .take(MAX_QUOTED_CHARS)
        .flat_map(char::escape_debug)
        .collect();
    if text.chars().nth(MAX_QUOTED_CHARS).is_some() {
        out.push_str("...");
    }
    out
}
