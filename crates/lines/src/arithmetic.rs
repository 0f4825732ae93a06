//! Safe arithmetic evaluator behind the `tern eval` line service.
//!
//! A client sends one line such as `2 ** 10 - 1 / 4` and gets back the
//! result exactly as Python 3 would print it (`1023.75`). The service
//! exists so users can run quick calculations without the server running
//! any code for them. That shapes the whole design:
//!
//! * **Nothing is ever executed as code.** The line is tokenized into
//!   numbers and a fixed set of operators. Letters are never names, so there
//!   are no variables, function calls or attribute lookups. Anything else is
//!   rejected.
//! * **Memory and CPU are bounded.** Integers are arbitrary precision but
//!   capped at `MAX_INT_BITS` (100 000 bits): `*` and `**` are checked
//!   *before* they are computed, from the operands' sizes; `+` and `-`
//!   (linear cost) are checked on their result. Integer literals are capped
//!   at `MAX_LITERAL_DIGITS` (10 000 digits) and nesting at
//!   `MAX_NESTING_DEPTH` (100). Parsing (shunting-yard to postfix) and
//!   evaluation (a value stack) are both iterative, so no input can overflow
//!   the thread's stack. The line length itself is limited by the caller.
//! * **Time is bounded too.** Each line has a work budget
//!   ([`DEFAULT_WORK_BUDGET`] units, about 4 ms of one core): every token and
//!   every big-number step is priced from its operands' sizes before it runs
//!   (see the `work` module), and a line that would go over it gets
//!   `too much work for one line` instead of holding the server's event loop.
//! * **Semantics are Python's** for this subset: int/float promotion, true
//!   division `/`, floor division `//` and modulo `%` with the sign of the
//!   divisor, `**` binding tighter than a unary minus on its left and
//!   associating to the right, and float output in `repr` style (shortest
//!   round-trip digits). The only deliberate differences: results that
//!   Python would print as `inf`, `nan` or a complex number are errors, and
//!   integers are limited to 100 000 bits.
//!
//! Entry points: [`evaluate_line`], and [`evaluate_line_within`] with a
//! chosen work budget.

mod work;

use std::fmt;

use num_bigint::{BigInt, BigUint, Sign};
use num_integer::Integer;
use num_traits::{One, Signed, ToPrimitive, Zero};

use work::{Budget, OutOfWork};

// ---------------------------------------------------------------------------
// Bounds
// ---------------------------------------------------------------------------

/// Maximum number of parentheses and unary operators that may be open at the
/// same time (unit: nesting levels). It keeps the operator stack small and
/// makes absurd inputs such as 1000 `(` fail fast with a clear message.
const MAX_NESTING_DEPTH: usize = 100;

/// Maximum size of any integer result (unit: bits of the absolute value;
/// 100 000 bits is about 30 100 decimal digits). Checked before `*` and `**`
/// are computed so that no line can make the server allocate or multiply
/// huge numbers; printing such a number costs a few milliseconds at most.
const MAX_INT_BITS: u64 = 100_000;

/// Maximum length of an integer literal (unit: decimal digits). A literal
/// of this size has about 33 000 bits, safely below [`MAX_INT_BITS`], and
/// parsing it is cheap.
const MAX_LITERAL_DIGITS: usize = 10_000;

/// Work one line may use (unit: work units, about a nanosecond each; see
/// the `work` module). Four million is at most about 4 ms of one core:
/// room for the largest single results (`2 ** 99999` and printing its
/// 30 103 digits are priced at 2.9 million) and for a 64 KiB line of small
/// numbers (2 million), while no line holds a worker's event loop longer
/// than a few milliseconds.
pub const DEFAULT_WORK_BUDGET: u64 = 4_000_000;

/// Longest source text quoted inside an error message (unit: characters),
/// so that an error about a 10 000-digit literal stays readable.
const MAX_QUOTED_CHARS: usize = 32;

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

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
    fn at(column: usize, kind: EvalErrorKind) -> Self {
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

// ---------------------------------------------------------------------------
// Entry point
// ---------------------------------------------------------------------------

/// Evaluates one line; Ok is the text to send back, Err is the error
/// (Display gives the reason incl. column).
///
/// The whole line is checked for syntax before anything is computed, as in
/// Python, so `1/0 +` reports the missing operand, not the division.
pub fn evaluate_line(line: &str) -> Result<String, EvalError> {
    evaluate_line_within(line, DEFAULT_WORK_BUDGET)
}

/// [`evaluate_line`] with a work budget of `work_budget` units instead of
/// [`DEFAULT_WORK_BUDGET`]: a line that needs more is answered with
/// [`EvalErrorKind::TooMuchWork`], before the step that would exceed it runs.
pub fn evaluate_line_within(line: &str, work_budget: u64) -> Result<String, EvalError> {
    let mut budget = Budget::new(work_budget);
    let tokens = tokenize(line, &mut budget)?;
    // Every character is ASCII once tokenized, so the byte length is the
    // character count.
    let program = parse(line, tokens, line.len() + 1)?;
    let value = run(program, &mut budget)?;
    value
        .to_text(&mut budget)
        .map_err(|kind| EvalError { column: None, kind })
}

// ---------------------------------------------------------------------------
// Tokenizer
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum TokenKind {
    Int(BigInt),
    Float(f64),
    Plus,
    Minus,
    Star,
    DoubleStar,
    Slash,
    DoubleSlash,
    Percent,
    LeftParen,
    RightParen,
}

#[derive(Debug, Clone, PartialEq)]
struct Token {
    kind: TokenKind,
    /// 1-based column of the first character.
    column: usize,
    /// Length of the source text in bytes (all ASCII), for error messages.
    len: usize,
}

impl Token {
    /// The token's source text in `line`.
    fn text<'a>(&self, line: &'a str) -> &'a str {
        let start = self.column - 1;
        line.get(start..start + self.len).unwrap_or_default()
    }
}

/// Integer literals with at most this many digits fit in a u64 and are
/// converted without the general big-number parser.
const U64_SAFE_DIGITS: usize = 19;

/// Splits the line into tokens. Whitespace (ASCII space, tab, form feed,
/// CR, LF) may appear between tokens and is otherwise ignored. Each token is
/// charged to `budget` as it is made, so an over-long line stops early.
///
/// Works on bytes: the language is ASCII, and the first non-ASCII character
/// is an error, so up to there byte positions are character columns.
fn tokenize(line: &str, budget: &mut Budget) -> Result<Vec<Token>, EvalError> {
    let bytes = line.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let column = i + 1;
        let next = bytes.get(i + 1).copied();
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        budget
            .charge(work::TOKEN)
            .map_err(|out| EvalError::at(column, out.into()))?;
        if c.is_ascii_digit() || (c == b'.' && next.is_some_and(|d| d.is_ascii_digit())) {
            let end = scan_number(bytes, i)?;
            tokens.push(number_token(&line[i..end], column, budget)?);
            i = end;
            continue;
        }
        let (kind, width) = match (c, next) {
            (b'*', Some(b'*')) => (TokenKind::DoubleStar, 2),
            (b'/', Some(b'/')) => (TokenKind::DoubleSlash, 2),
            (b'*', _) => (TokenKind::Star, 1),
            (b'/', _) => (TokenKind::Slash, 1),
            (b'+', _) => (TokenKind::Plus, 1),
            (b'-', _) => (TokenKind::Minus, 1),
            (b'%', _) => (TokenKind::Percent, 1),
            (b'(', _) => (TokenKind::LeftParen, 1),
            (b')', _) => (TokenKind::RightParen, 1),
            _ => {
                let character = line[i..]
                    .chars()
                    .next()
                    .unwrap_or(char::REPLACEMENT_CHARACTER);
                return Err(EvalError::at(
                    column,
                    EvalErrorKind::InvalidCharacter(character),
                ));
            }
        };
        tokens.push(Token {
            kind,
            column,
            len: width,
        });
        i += width;
    }
    Ok(tokens)
}

/// Index of the first non-digit at or after `i`.
fn skip_digits(bytes: &[u8], mut i: usize) -> usize {
    while bytes.get(i).is_some_and(u8::is_ascii_digit) {
        i += 1;
    }
    i
}

/// Finds the end of the number literal starting at `start`, following
/// Python's grammar: `digits [. digits] [(e|E) [+|-] digits]`, where either
/// side of the point may be empty (but not both).
fn scan_number(bytes: &[u8], start: usize) -> Result<usize, EvalError> {
    let mut i = skip_digits(bytes, start);
    if bytes.get(i) == Some(&b'.') {
        i = skip_digits(bytes, i + 1);
    }
    if matches!(bytes.get(i).copied(), Some(b'e' | b'E')) {
        let mut j = i + 1;
        if matches!(bytes.get(j).copied(), Some(b'+' | b'-')) {
            j += 1;
        }
        let end = skip_digits(bytes, j);
        if end == j {
            let text = String::from_utf8_lossy(&bytes[start..j]).into_owned();
            return Err(EvalError::at(start + 1, EvalErrorKind::InvalidNumber(text)));
        }
        i = end;
    }
    Ok(i)
}

/// Converts the text of a number literal (as found by [`scan_number`]) into
/// an int or float token.
fn number_token(text: &str, column: usize, budget: &mut Budget) -> Result<Token, EvalError> {
    let invalid = || EvalError::at(column, EvalErrorKind::InvalidNumber(text.to_owned()));
    let is_float = text.bytes().any(|c| matches!(c, b'.' | b'e' | b'E'));
    let kind = if is_float {
        // Rust's parser is correctly rounded, like Python's. No digit cap is
        // needed: parsing is linear in the (caller-bounded) line length.
        let value: f64 = text.parse().map_err(|_| invalid())?;
        if !value.is_finite() {
            return Err(EvalError::at(column, EvalErrorKind::NumberTooLarge));
        }
        TokenKind::Float(value)
    } else {
        if text.len() > MAX_LITERAL_DIGITS {
            return Err(EvalError::at(column, EvalErrorKind::NumberTooLarge));
        }
        // Python forbids leading zeros in non-zero decimal integers.
        if text.len() > 1 && text.starts_with('0') && text.bytes().any(|c| c != b'0') {
            return Err(invalid());
        }
        let value = if text.len() <= U64_SAFE_DIGITS {
            BigInt::from(text.parse::<u64>().map_err(|_| invalid())?)
        } else {
            budget
                .charge(work::parse_decimal(text.len() as u64))
                .map_err(|out| EvalError::at(column, out.into()))?;
            BigInt::parse_bytes(text.as_bytes(), 10).ok_or_else(invalid)?
        };
        TokenKind::Int(value)
    };
    Ok(Token {
        kind,
        column,
        len: text.len(),
    })
}

// ---------------------------------------------------------------------------
// Parser: shunting-yard from tokens to a postfix program
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
    FloorDiv,
    Mod,
    Pow,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UnaryOp {
    Neg,
    Pos,
}

/// Binding strength of unary `-`/`+`: tighter than `*`, looser than `**`.
const UNARY_PRECEDENCE: u8 = 3;

impl BinaryOp {
    fn from_token(kind: &TokenKind) -> Option<Self> {
        Some(match kind {
            TokenKind::Plus => BinaryOp::Add,
            TokenKind::Minus => BinaryOp::Sub,
            TokenKind::Star => BinaryOp::Mul,
            TokenKind::Slash => BinaryOp::Div,
            TokenKind::DoubleSlash => BinaryOp::FloorDiv,
            TokenKind::Percent => BinaryOp::Mod,
            TokenKind::DoubleStar => BinaryOp::Pow,
            _ => return None,
        })
    }

    fn precedence(self) -> u8 {
        match self {
            BinaryOp::Add | BinaryOp::Sub => 1,
            BinaryOp::Mul | BinaryOp::Div | BinaryOp::FloorDiv | BinaryOp::Mod => 2,
            BinaryOp::Pow => 4,
        }
    }

    fn is_right_associative(self) -> bool {
        self == BinaryOp::Pow
    }
}

/// One step of the postfix program.
#[derive(Debug, Clone, PartialEq)]
enum Instr {
    Push(Num),
    Unary(UnaryOp),
    /// A binary operator and its column, for error messages.
    Binary(BinaryOp, usize),
}

/// An operator waiting on the shunting-yard stack.
#[derive(Debug, Clone, Copy)]
enum Pending {
    /// `(` and its column.
    Open(usize),
    Unary(UnaryOp),
    Binary(BinaryOp, usize),
}

struct Parser<'a> {
    /// The line being parsed, for quoting tokens in error messages.
    line: &'a str,
    output: Vec<Instr>,
    stack: Vec<Pending>,
    /// Number of `Open` and `Unary` entries on `stack`.
    depth: usize,
}

/// Parses the tokens into a postfix program. `end_column` is the column
/// just past the end of the line, reported for a truncated expression.
fn parse(line: &str, tokens: Vec<Token>, end_column: usize) -> Result<Vec<Instr>, EvalError> {
    if tokens.is_empty() {
        return Err(EvalError {
            column: None,
            kind: EvalErrorKind::EmptyExpression,
        });
    }
    let mut parser = Parser {
        line,
        output: Vec::with_capacity(tokens.len()),
        stack: Vec::new(),
        depth: 0,
    };
    let mut expect_operand = true;
    for token in tokens {
        expect_operand = if expect_operand {
            parser.operand_position(token)?
        } else {
            parser.operator_position(token)?
        };
    }
    if expect_operand {
        return Err(EvalError::at(end_column, EvalErrorKind::UnexpectedEnd));
    }
    parser.finish()
}

impl Parser<'_> {
    fn unexpected(&self, token: Token) -> EvalError {
        let text = token.text(self.line).to_owned();
        EvalError::at(token.column, EvalErrorKind::UnexpectedToken(text))
    }

    /// Handles a token where an operand must start. Returns whether an
    /// operand is still expected afterwards.
    fn operand_position(&mut self, token: Token) -> Result<bool, EvalError> {
        match token.kind {
            TokenKind::Int(value) => self.output.push(Instr::Push(Num::Int(value))),
            TokenKind::Float(value) => self.output.push(Instr::Push(Num::Float(value))),
            TokenKind::LeftParen => {
                self.push_nested(Pending::Open(token.column), token.column)?;
                return Ok(true);
            }
            TokenKind::Minus => {
                self.push_nested(Pending::Unary(UnaryOp::Neg), token.column)?;
                return Ok(true);
            }
            TokenKind::Plus => {
                self.push_nested(Pending::Unary(UnaryOp::Pos), token.column)?;
                return Ok(true);
            }
            _ => return Err(self.unexpected(token)),
        }
        Ok(false)
    }

    /// Handles a token after a complete operand. Returns whether an operand
    /// is expected afterwards.
    fn operator_position(&mut self, token: Token) -> Result<bool, EvalError> {
        if let Some(op) = BinaryOp::from_token(&token.kind) {
            self.reduce_for(op);
            self.stack.push(Pending::Binary(op, token.column));
            return Ok(true);
        }
        if token.kind == TokenKind::RightParen {
            self.close_paren(token)?;
            return Ok(false);
        }
        Err(self.unexpected(token))
    }

    /// Pushes `(` or a unary operator, enforcing the nesting bound.
    fn push_nested(&mut self, pending: Pending, column: usize) -> Result<(), EvalError> {
        self.depth += 1;
        if self.depth > MAX_NESTING_DEPTH {
            return Err(EvalError::at(column, EvalErrorKind::NestingTooDeep));
        }
        self.stack.push(pending);
        Ok(())
    }

    /// Moves every stacked operator that binds at least as tightly as the
    /// incoming `op` (respecting associativity) to the output.
    fn reduce_for(&mut self, op: BinaryOp) {
        let incoming = op.precedence();
        while let Some(&top) = self.stack.last() {
            let top_precedence = match top {
                Pending::Open(_) => break,
                Pending::Unary(_) => UNARY_PRECEDENCE,
                Pending::Binary(top_op, _) => top_op.precedence(),
            };
            let pops = top_precedence > incoming
                || (top_precedence == incoming && !op.is_right_associative());
            if !pops {
                break;
            }
            self.stack.pop();
            self.emit(top);
        }
    }

    /// Unwinds to the matching `(`.
    fn close_paren(&mut self, token: Token) -> Result<(), EvalError> {
        while let Some(top) = self.stack.pop() {
            if let Pending::Open(_) = top {
                self.depth -= 1;
                return Ok(());
            }
            self.emit(top);
        }
        Err(self.unexpected(token))
    }

    /// Moves all remaining operators to the output.
    fn finish(mut self) -> Result<Vec<Instr>, EvalError> {
        while let Some(top) = self.stack.pop() {
            if let Pending::Open(column) = top {
                return Err(EvalError::at(column, EvalErrorKind::UnclosedParenthesis));
            }
            self.emit(top);
        }
        Ok(self.output)
    }

    fn emit(&mut self, pending: Pending) {
        match pending {
            Pending::Open(_) => {}
            Pending::Unary(op) => {
                self.depth -= 1;
                self.output.push(Instr::Unary(op));
            }
            Pending::Binary(op, column) => self.output.push(Instr::Binary(op, column)),
        }
    }
}

// ---------------------------------------------------------------------------
// Evaluation of the postfix program
// ---------------------------------------------------------------------------

/// Runs the program; every binary operator is charged to `budget` before it
/// is computed (operands and unary operators were paid for as tokens).
fn run(program: Vec<Instr>, budget: &mut Budget) -> Result<Num, EvalError> {
    let mut values: Vec<Num> = Vec::new();
    for instr in program {
        let value = match instr {
            Instr::Push(value) => value,
            Instr::Unary(op) => pop_value(&mut values)?.unary(op),
            Instr::Binary(op, column) => {
                let rhs = pop_value(&mut values)?;
                let lhs = pop_value(&mut values)?;
                lhs.binary(op, rhs, budget)
                    .map_err(|kind| EvalError::at(column, kind))?
            }
        };
        values.push(value);
    }
    pop_value(&mut values)
}

/// Pops an operand. The parser guarantees one is there; the error is only a
/// panic-free fallback.
fn pop_value(values: &mut Vec<Num>) -> Result<Num, EvalError> {
    values.pop().ok_or(EvalError {
        column: None,
        kind: EvalErrorKind::UnexpectedEnd,
    })
}

// ---------------------------------------------------------------------------
// Numbers
// ---------------------------------------------------------------------------

/// A Python `int` or `float`.
#[derive(Debug, Clone, PartialEq)]
enum Num {
    Int(BigInt),
    Float(f64),
}

impl Num {
    fn unary(self, op: UnaryOp) -> Num {
        match (op, self) {
            (UnaryOp::Pos, value) => value,
            (UnaryOp::Neg, Num::Int(a)) => Num::Int(-a),
            (UnaryOp::Neg, Num::Float(x)) => Num::Float(-x),
        }
    }

    /// Applies a binary operator with Python's int/float promotion, if
    /// `budget` has room for it.
    fn binary(self, op: BinaryOp, rhs: Num, budget: &mut Budget) -> Result<Num, EvalErrorKind> {
        budget.charge(work::OPERATION)?;
        match (self, rhs) {
            (Num::Int(a), Num::Int(b)) => int_binary(op, a, b, budget),
            (lhs, rhs) => {
                let x = lhs.to_f64()?;
                let y = rhs.to_f64()?;
                float_binary(op, x, y).map(Num::Float)
            }
        }
    }

    fn to_f64(&self) -> Result<f64, EvalErrorKind> {
        match self {
            Num::Int(a) => int_to_f64(a),
            Num::Float(x) => Ok(*x),
        }
    }
}

impl Num {
    /// The value as Python prints it, if `budget` has room for the printing
    /// (decimal output of a large integer is nearly quadratic in its size).
    fn to_text(&self, budget: &mut Budget) -> Result<String, EvalErrorKind> {
        match self {
            Num::Int(a) => {
                budget.charge(work::print_decimal(work::limbs(a.bits())))?;
                Ok(a.to_string())
            }
            Num::Float(x) => {
                budget.charge(work::FLOAT_TO_TEXT)?;
                Ok(format_float(*x))
            }
        }
    }
}

// --- integers ---------------------------------------------------------------

/// Limbs of an integer's magnitude, for pricing work.
fn limbs_of(a: &BigInt) -> u64 {
    work::limbs(a.bits())
}

fn int_binary(
    op: BinaryOp,
    a: BigInt,
    b: BigInt,
    budget: &mut Budget,
) -> Result<Num, EvalErrorKind> {
    let result = match op {
        BinaryOp::Add | BinaryOp::Sub => {
            budget.charge(work::add(limbs_of(&a), limbs_of(&b)))?;
            limit_int(if op == BinaryOp::Add { a + b } else { a - b })?
        }
        BinaryOp::Mul => int_mul(&a, &b, budget)?,
        BinaryOp::Div => return int_true_div(&a, &b, budget).map(Num::Float),
        BinaryOp::FloorDiv => {
            nonzero_divisor(&b)?;
            budget.charge(work::divide(limbs_of(&a), limbs_of(&b)))?;
            a.div_floor(&b)
        }
        BinaryOp::Mod => {
            nonzero_divisor(&b)?;
            budget.charge(work::divide(limbs_of(&a), limbs_of(&b)))?;
            a.mod_floor(&b)
        }
        BinaryOp::Pow if b.is_negative() => {
            // Python: int ** negative int is computed in floating point.
            return float_pow(int_to_f64(&a)?, int_to_f64(&b)?).map(Num::Float);
        }
        BinaryOp::Pow => int_pow(&a, &b, budget)?,
    };
    Ok(Num::Int(result))
}

fn nonzero_divisor(b: &BigInt) -> Result<(), EvalErrorKind> {
    if b.is_zero() {
        Err(EvalErrorKind::DivisionByZero)
    } else {
        Ok(())
    }
}

/// Rejects integers above [`MAX_INT_BITS`].
fn limit_int(value: BigInt) -> Result<BigInt, EvalErrorKind> {
    if value.bits() > MAX_INT_BITS {
        Err(EvalErrorKind::NumberTooLarge)
    } else {
        Ok(value)
    }
}

/// Multiplies after checking that the product can fit: a product of
/// m-bit and n-bit numbers has at least m + n - 1 bits; then that the budget
/// has room for it.
fn int_mul(a: &BigInt, b: &BigInt, budget: &mut Budget) -> Result<BigInt, EvalErrorKind> {
    if a.is_zero() || b.is_zero() {
        return Ok(BigInt::zero());
    }
    if a.bits() + b.bits() - 1 > MAX_INT_BITS {
        return Err(EvalErrorKind::NumberTooLarge);
    }
    budget.charge(work::multiply(limbs_of(a), limbs_of(b)))?;
    limit_int(a * b)
}

/// `a ** b` for `b >= 0`, refusing before the work if the result must
/// exceed [`MAX_INT_BITS`]: for |a| >= 2 with k bits, a^b has at least
/// (k - 1) * b + 1 bits (and at most k * b, at most twice the bound); or if
/// the budget has no room for it.
fn int_pow(a: &BigInt, b: &BigInt, budget: &mut Budget) -> Result<BigInt, EvalErrorKind> {
    if b.is_zero() || a.is_one() {
        return Ok(BigInt::one());
    }
    if a.is_zero() {
        return Ok(BigInt::zero());
    }
    if a.magnitude().is_one() {
        // a == -1
        return Ok(if b.is_odd() {
            -BigInt::one()
        } else {
            BigInt::one()
        });
    }
    let exponent = b.to_u64().ok_or(EvalErrorKind::NumberTooLarge)?;
    let min_bits = (a.bits() - 1).saturating_mul(exponent).saturating_add(1);
    if min_bits > MAX_INT_BITS {
        return Err(EvalErrorKind::NumberTooLarge);
    }
    budget.charge(work::power(a.bits(), exponent))?;
    // exponent <= min_bits - 1 < MAX_INT_BITS, so it fits in u32.
    let exponent = u32::try_from(exponent).map_err(|_| EvalErrorKind::NumberTooLarge)?;
    limit_int(a.pow(exponent))
}

/// Largest magnitude for which integers convert to f64 exactly, and for
/// which f64 division is therefore correctly rounded (2^53).
const EXACT_F64_INT: u64 = 1 << 53;

/// Python's int -> float conversion: correctly rounded, error if too large.
fn int_to_f64(a: &BigInt) -> Result<f64, EvalErrorKind> {
    let magnitude =
        ratio_to_f64(a.magnitude(), &BigUint::one()).ok_or(EvalErrorKind::NumberTooLarge)?;
    Ok(if a.is_negative() {
        -magnitude
    } else {
        magnitude
    })
}

/// Python's int / int: correctly rounded at any size.
fn int_true_div(a: &BigInt, b: &BigInt, budget: &mut Budget) -> Result<f64, EvalErrorKind> {
    nonzero_divisor(b)?;
    // The slow path of `ratio_to_f64` divides a scaled by 2^1076 by b.
    let scaled_limbs = work::limbs(a.bits() + RATIO_FRACTION_BITS);
    budget.charge(work::divide(scaled_limbs, limbs_of(b)))?;
    let magnitude =
        ratio_to_f64(a.magnitude(), b.magnitude()).ok_or(EvalErrorKind::FloatOverflow)?;
    // Like Python, 0 / -1 gives -0.0.
    let negative = (a.sign() == Sign::Minus) != (b.sign() == Sign::Minus);
    Ok(if negative { -magnitude } else { magnitude })
}

/// Bits below the binary point kept when computing a ratio: two more than
/// the 1074 needed to reach the smallest subnormal (2^-1074), so that the
/// rounding bit is always available.
const RATIO_FRACTION_BITS: u64 = 1076;

/// `num / den` (den > 0) rounded to the nearest f64, ties to even. `None` if
/// the rounded result is too large for f64.
fn ratio_to_f64(num: &BigUint, den: &BigUint) -> Option<f64> {
    if num.is_zero() {
        return Some(0.0);
    }
    let exact = |x: &BigUint| x.to_u64().filter(|&v| v <= EXACT_F64_INT);
    if let (Some(n), Some(d)) = (exact(num), exact(den)) {
        // Both convert exactly, so IEEE division rounds correctly.
        return Some(n as f64 / d as f64);
    }
    // num/den lies in [2^(e-1), 2^(e+1)).
    let e = num.bits() as i64 - den.bits() as i64;
    if e > 1024 {
        return None; // at least 2^1024
    }
    if e < -1080 {
        return Some(0.0); // below half the smallest subnormal
    }
    // q = floor(num/den * 2^1076) fixed-point, plus a sticky remainder.
    let (q, rem) = (num << RATIO_FRACTION_BITS).div_rem(den);
    // Keep 53 significant bits, but never finer than 2^-1074 (subnormals).
    let drop = q.bits().saturating_sub(53).max(2);
    let mut mantissa = &q >> drop;
    let dropped = &q - (&mantissa << drop);
    let half = BigUint::one() << (drop - 1);
    let round_up = dropped > half || (dropped == half && (!rem.is_zero() || mantissa.is_odd()));
    if round_up {
        mantissa += 1u32;
    }
    // mantissa <= 2^53, so the conversion is exact; so is scaling by a
    // power of two unless it overflows to infinity.
    let mantissa = mantissa.to_u64()? as f64;
    let value = mantissa * pow2(drop as i64 - RATIO_FRACTION_BITS as i64);
    value.is_finite().then_some(value)
}

/// 2^k as an f64, for -1074 <= k <= 1023.
fn pow2(k: i64) -> f64 {
    debug_assert!((-1074..=1023).contains(&k));
    if k >= -1022 {
        f64::from_bits(((k + 1023) as u64) << 52)
    } else {
        f64::from_bits(1u64 << (k + 1074))
    }
}

// --- floats -------------------------------------------------------------------

fn float_binary(op: BinaryOp, x: f64, y: f64) -> Result<f64, EvalErrorKind> {
    let result = match op {
        BinaryOp::Add => x + y,
        BinaryOp::Sub => x - y,
        BinaryOp::Mul => x * y,
        BinaryOp::Div => {
            nonzero_float(y)?;
            x / y
        }
        BinaryOp::FloorDiv => {
            nonzero_float(y)?;
            float_divmod(x, y).0
        }
        BinaryOp::Mod => {
            nonzero_float(y)?;
            float_divmod(x, y).1
        }
        BinaryOp::Pow => float_pow(x, y)?,
    };
    finite(result)
}

fn nonzero_float(y: f64) -> Result<(), EvalErrorKind> {
    if y == 0.0 {
        Err(EvalErrorKind::DivisionByZero)
    } else {
        Ok(())
    }
}

/// Operands are always finite, so a non-finite result means overflow.
fn finite(x: f64) -> Result<f64, EvalErrorKind> {
    if x.is_finite() {
        Ok(x)
    } else {
        Err(EvalErrorKind::FloatOverflow)
    }
}

/// Python's float `divmod` (y != 0): the remainder takes the sign of `y`,
/// the quotient is floored, and signed zeros come out as Python's do.
fn float_divmod(x: f64, y: f64) -> (f64, f64) {
    let mut rem = x % y; // C fmod: exact, sign of x
    let mut div = (x - rem) / y;
    if rem != 0.0 {
        if (y < 0.0) != (rem < 0.0) {
            rem += y;
            div -= 1.0;
        }
    } else {
        rem = 0.0_f64.copysign(y);
    }
    let floor_div = if div != 0.0 {
        let mut floored = div.floor();
        if div - floored > 0.5 {
            floored += 1.0;
        }
        floored
    } else {
        0.0_f64.copysign(x / y)
    };
    (floor_div, rem)
}

/// True if `x` is an odd integer.
fn is_odd_integer(x: f64) -> bool {
    x.abs() % 2.0 == 1.0
}

/// Python's float `**` for finite operands, including its special cases.
fn float_pow(x: f64, y: f64) -> Result<f64, EvalErrorKind> {
    if y == 0.0 || x == 1.0 {
        return Ok(1.0);
    }
    if x == 0.0 {
        if y < 0.0 {
            return Err(EvalErrorKind::DivisionByZero);
        }
        // 0.0 ** odd keeps the sign of the zero.
        return Ok(if is_odd_integer(y) { x } else { 0.0 });
    }
    let mut base = x;
    let mut negate = false;
    if x < 0.0 {
        if y != y.floor() {
            return Err(EvalErrorKind::ComplexResult);
        }
        base = -x;
        negate = is_odd_integer(y);
    }
    let magnitude = if base == 1.0 {
        1.0
    } else {
        finite(base.powf(y))?
    };
    Ok(if negate { -magnitude } else { magnitude })
}

// ---------------------------------------------------------------------------
// Float formatting (Python repr)
// ---------------------------------------------------------------------------

/// Formats a finite float the way Python's `repr` does: the shortest digits
/// that round-trip, in positional notation when the decimal exponent is in
/// -4..16 (always with a fractional part, e.g. `2.0`) and in scientific
/// notation otherwise (`1e+16`, `1.5e-05`).
fn format_float(x: f64) -> String {
    // Rust's `{:e}` yields the shortest round-trip digits, e.g. "-1.5e-5".
    let scientific = format!("{x:e}");
    let (mantissa, exponent) = scientific
        .split_once('e')
        .unwrap_or((scientific.as_str(), "0"));
    let exponent: i64 = exponent.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(|&c| c != '.').collect();
    let digits = break_tie_to_even(x.abs(), digits, exponent);
    let body = if (-4..16).contains(&exponent) {
        positional(&digits, exponent)
    } else {
        exponential(&digits, exponent)
    };
    format!("{sign}{body}")
}

/// Rust's shortest digits resolve an exact decimal tie upwards, Python's
/// (David Gay's algorithm) to the even digit. Example: 917156460191106.25 is
/// exactly halfway between the shortest candidates ...106.2 and ...106.3;
/// Python prints ...106.2. If `x` (non-negative) lies exactly halfway
/// between `digits` and an adjacent candidate of the same length that also
/// round-trips, this returns the even one.
fn break_tie_to_even(x: f64, digits: String, exponent: i64) -> String {
    let Ok(current) = digits.parse::<u64>() else {
        return digits;
    };
    if current % 2 == 0 {
        return digits;
    }
    // value = current × 10^scale
    let scale = exponent - (digits.len() as i64 - 1);
    for neighbour in [current - 1, current + 1] {
        let candidate = neighbour.to_string();
        if candidate.len() == digits.len()
            && is_exact_midpoint(x, current + neighbour, scale)
            && format!("{candidate}e{scale}").parse::<f64>() == Ok(x)
        {
            return candidate;
        }
    }
    digits
}

/// Whether `2 × x == sum × 10^scale` exactly, for finite non-negative `x`.
fn is_exact_midpoint(x: f64, sum: u64, scale: i64) -> bool {
    let (mantissa, exp2) = decompose(x);
    // 2x = mantissa × 2^(exp2 + 1); bring both sides to integers.
    let exp2 = exp2 + 1;
    let mut lhs = BigUint::from(mantissa);
    let mut rhs = BigUint::from(sum);
    if exp2 >= 0 {
        lhs <<= exp2 as u64;
    } else {
        rhs <<= exp2.unsigned_abs();
    }
    let power = BigUint::from(10u32).pow(scale.unsigned_abs() as u32);
    if scale >= 0 {
        rhs *= power;
    } else {
        lhs *= power;
    }
    lhs == rhs
}

/// Splits a finite non-negative f64 into `mantissa × 2^exponent` exactly.
fn decompose(x: f64) -> (u64, i64) {
    let bits = x.to_bits();
    let fraction = bits & ((1 << 52) - 1);
    let biased = ((bits >> 52) & 0x7ff) as i64;
    if biased == 0 {
        (fraction, -1074) // zero or subnormal
    } else {
        (fraction | (1 << 52), biased - 1075)
    }
}

/// `digits` (d1 d2 d3 ...) meaning d1.d2d3... × 10^exponent, written out.
fn positional(digits: &str, exponent: i64) -> String {
    // Number of digits before the decimal point.
    let point = exponent + 1;
    let len = digits.len() as i64;
    if point <= 0 {
        format!("0.{}{}", "0".repeat((-point) as usize), digits)
    } else if point < len {
        let (int_part, frac_part) = digits.split_at(point as usize);
        format!("{int_part}.{frac_part}")
    } else {
        format!("{}{}.0", digits, "0".repeat((point - len) as usize))
    }
}

/// `digits` as d1[.d2d3...]e±XX, with at least two exponent digits.
fn exponential(digits: &str, exponent: i64) -> String {
    let (first, rest) = digits.split_at(1);
    let fraction = if rest.is_empty() {
        String::new()
    } else {
        format!(".{rest}")
    };
    let sign = if exponent < 0 { '-' } else { '+' };
    format!("{first}{fraction}e{sign}{:02}", exponent.abs())
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn ok(line: &str) -> String {
        match evaluate_line(line) {
            Ok(text) => text,
            Err(err) => panic!("{line:?} failed: {err}"),
        }
    }

    fn err(line: &str) -> EvalError {
        match evaluate_line(line) {
            Ok(text) => panic!("{line:?} unexpectedly gave {text}"),
            Err(err) => err,
        }
    }

    fn err_at(line: &str, column: usize, kind: EvalErrorKind) {
        assert_eq!(
            err(line),
            EvalError {
                column: Some(column),
                kind
            },
            "line {line:?}"
        );
    }

    #[test]
    fn examples_from_the_spec() {
        let cases = [
            ("-2**2", "-4"),
            ("2**-1", "0.5"),
            ("2**3**2", "512"),
            ("1/4", "0.25"),
            ("4/2", "2.0"),
            ("-7//2", "-4"),
            ("-7%2", "1"),
            ("7%-2", "-1"),
            ("-7.5//2", "-4.0"),
            ("5.5%-2", "-0.5"),
            ("0.1+0.2", "0.30000000000000004"),
            ("1e16", "1e+16"),
            ("1.5e-05", "1.5e-05"),
            ("1e-05", "1e-05"),
            ("0.0001", "0.0001"),
            ("123456789012345.0", "123456789012345.0"),
            ("-0.0", "-0.0"),
            ("1.5", "1.5"),
            (".5", "0.5"),
            ("2.", "2.0"),
            ("1e3", "1000.0"),
            ("2.5E-3", "0.0025"),
        ];
        for (line, expected) in cases {
            assert_eq!(ok(line), expected, "line {line:?}");
        }
    }

    /// Expected values produced with `python3 -c 'print(repr(EXPR))'`.
    #[test]
    fn python_checked_table() {
        let cases = [
            ("1 + 2 * 3", "7"),
            ("(1 + 2) * 3", "9"),
            ("10 - 4 - 3", "3"),
            ("2 * 3 % 4", "2"),
            ("100 // 7 * 7 + 100 % 7", "100"),
            ("7 // -2", "-4"),
            ("-7 // -2", "3"),
            ("-7 % -2", "-1"),
            ("0 % 5", "0"),
            ("0 // -5", "0"),
            ("2 ** 0", "1"),
            ("0 ** 0", "1"),
            ("0.0 ** 0", "1.0"),
            ("(-2) ** 3", "-8"),
            ("(-2) ** -1", "-0.5"),
            ("-2 ** -2", "-0.25"),
            ("2 ** -2 ** 2", "0.0625"),
            ("2 ** -1 * 3", "1.5"),
            ("-3 ** 2 * 2", "-18"),
            ("--3", "3"),
            ("+-+3", "-3"),
            ("- - -3.5", "-3.5"),
            ("-(-(4))", "4"),
            ("-0", "0"),
            ("0 / -1", "-0.0"),
            ("-0 / 5", "0.0"),
            ("0.0 / -1", "-0.0"),
            ("0.0 % -5", "-0.0"),
            ("-0.0 % 5", "0.0"),
            ("(-0.0) ** 3", "-0.0"),
            ("(-0.0) ** 0.5", "0.0"),
            ("1 / 3", "0.3333333333333333"),
            ("2 / 3", "0.6666666666666666"),
            ("10 / 4", "2.5"),
            ("1 + 1.0", "2.0"),
            ("3 * 1.5", "4.5"),
            ("7.0 // 2", "3.0"),
            ("-7.0 // 2", "-4.0"),
            ("7.5 % 2", "1.5"),
            ("-7.5 % 2", "0.5"),
            ("7.5 % -2", "-0.5"),
            ("-1e-300 % 1", "1.0"),
            ("1 % 0.1", "0.09999999999999995"),
            ("1 // 0.1", "9.0"),
            ("0.5 ** 2", "0.25"),
            ("4 ** 0.5", "2.0"),
            ("2 ** 0.5", "1.4142135623730951"),
            ("(-8.0) ** 3", "-512.0"),
            ("(-2) ** -3", "-0.125"),
            ("10 ** -2", "0.01"),
            ("10 ** -5", "1e-05"),
            ("2 ** 1023 / 2 ** 1022", "2.0"),
            ("2 ** 100", "1267650600228229401496703205376"),
            ("2 ** 64 - 1", "18446744073709551615"),
            ("-(2 ** 63)", "-9223372036854775808"),
            ("(10 ** 30 + 1) // 7", "142857142857142857142857142857"),
            ("-(10 ** 30) % 7", "6"),
            ("10 ** 30 / 3", "3.333333333333333e+29"),
            ("(2 ** 53 + 1) / 1", "9007199254740992.0"),
            ("(2 ** 53 + 3) / 1", "9007199254740996.0"),
            ("(2 ** 64 + 1) / 3", "6.148914691236517e+18"),
            ("10 ** 400 / 10 ** 399", "10.0"),
            ("1 / 10 ** 400", "0.0"),
            ("-1 / 10 ** 400", "-0.0"),
            ("1 / 2 ** 1074", "5e-324"),
            ("3 / 2 ** 1075", "1e-323"),
            ("1 / 2 ** 1075", "0.0"),
            ("(2 ** 1075 + 1) / 2 ** 2149", "5e-324"),
            ("10 ** 300 * 1.0", "1e+300"),
            ("2 ** 1023 * 1.0", "8.98846567431158e+307"),
            ("1e308 - 1e308 + 1e308", "1e+308"),
            ("1e22", "1e+22"),
            ("1e15", "1000000000000000.0"),
            ("9999999999999998.0", "9999999999999998.0"),
            ("0.1", "0.1"),
            ("0.001", "0.001"),
            ("0.00012345", "0.00012345"),
            ("1.2345e-05", "1.2345e-05"),
            ("5e-324", "5e-324"),
            ("1.7976931348623157e308", "1.7976931348623157e+308"),
            ("2.2250738585072014e-308", "2.2250738585072014e-308"),
            ("1/7", "0.14285714285714285"),
            ("100.0", "100.0"),
            ("1e100", "1e+100"),
            ("123e-2", "1.23"),
            ("0.1 * 3", "0.30000000000000004"),
            ("1.1 * 1.1", "1.2100000000000002"),
            ("3.0 - 2.9", "0.10000000000000009"),
            ("00", "0"),
            ("000.5", "0.5"),
            ("01.5", "1.5"),
            ("01e2", "100.0"),
            ("1.e2", "100.0"),
            ("\t 1 +\t2 ", "3"),
            ("((((1))))", "1"),
            ("2**-1074", "5e-324"),
            ("2.0**-1075", "0.0"),
            ("(-1)**(10**30+1)", "-1"),
            ("1**(10**30)", "1"),
            ("0**(10**30)", "0"),
            ("(-1.0)**1e300", "1.0"),
            ("1.0**-5", "1.0"),
            ("(-2.0)**2.0", "4.0"),
        ];
        for (line, expected) in cases {
            assert_eq!(ok(line), expected, "line {line:?}");
        }
    }

    #[test]
    fn division_by_zero_reports_operator_column() {
        err_at("1/0", 2, EvalErrorKind::DivisionByZero);
        err_at("10 // 0", 4, EvalErrorKind::DivisionByZero);
        err_at("10 % 0", 4, EvalErrorKind::DivisionByZero);
        err_at("1.5 / 0.0", 5, EvalErrorKind::DivisionByZero);
        err_at("1.5 // -0.0", 5, EvalErrorKind::DivisionByZero);
        err_at("1 % 0.0", 3, EvalErrorKind::DivisionByZero);
        err_at("0 ** -1", 3, EvalErrorKind::DivisionByZero);
        err_at("0.0 ** -2.5", 5, EvalErrorKind::DivisionByZero);
        err_at("1 + 2 / (3 - 3)", 7, EvalErrorKind::DivisionByZero);
        assert_eq!(err("1/0").to_string(), "division by zero at column 2");
        assert_eq!(err("4 + 1/0").to_string(), "division by zero at column 6");
    }

    #[test]
    fn syntax_errors() {
        err_at("1 +", 4, EvalErrorKind::UnexpectedEnd);
        err_at("-", 2, EvalErrorKind::UnexpectedEnd);
        err_at("(1 + 2", 1, EvalErrorKind::UnclosedParenthesis);
        err_at("((1) + 2", 1, EvalErrorKind::UnclosedParenthesis);
        err_at(
            "2 * (3 + 4))",
            12,
            EvalErrorKind::UnexpectedToken(")".into()),
        );
        err_at("()", 2, EvalErrorKind::UnexpectedToken(")".into()));
        err_at("1 2", 3, EvalErrorKind::UnexpectedToken("2".into()));
        err_at("1 (2)", 3, EvalErrorKind::UnexpectedToken("(".into()));
        err_at("* 2", 1, EvalErrorKind::UnexpectedToken("*".into()));
        err_at("2 * * 3", 5, EvalErrorKind::UnexpectedToken("*".into()));
        err_at("2 *** 3", 5, EvalErrorKind::UnexpectedToken("*".into()));
        err_at("4 / / 2", 5, EvalErrorKind::UnexpectedToken("/".into()));
        err_at("1.2.3", 4, EvalErrorKind::UnexpectedToken(".3".into()));
        err_at("abc", 1, EvalErrorKind::InvalidCharacter('a'));
        err_at("1 + x", 5, EvalErrorKind::InvalidCharacter('x'));
        err_at("2j", 2, EvalErrorKind::InvalidCharacter('j'));
        err_at("1_000", 2, EvalErrorKind::InvalidCharacter('_'));
        err_at("~1", 1, EvalErrorKind::InvalidCharacter('~'));
        err_at("1 .", 3, EvalErrorKind::InvalidCharacter('.'));
        err_at("é + 1", 1, EvalErrorKind::InvalidCharacter('é'));
        err_at("1 + é", 5, EvalErrorKind::InvalidCharacter('é'));
        err_at("__import__('os')", 1, EvalErrorKind::InvalidCharacter('_'));
        err_at("007", 1, EvalErrorKind::InvalidNumber("007".into()));
        err_at("1 + 1e", 5, EvalErrorKind::InvalidNumber("1e".into()));
        err_at("1e+", 1, EvalErrorKind::InvalidNumber("1e+".into()));
        assert_eq!(
            err("").to_string(),
            "empty expression",
            "empty line has no column"
        );
        assert_eq!(err("   \t").kind, EvalErrorKind::EmptyExpression);
        assert_eq!(err("").column, None);
    }

    #[test]
    fn syntax_is_checked_before_evaluation() {
        err_at("1/0 +", 6, EvalErrorKind::UnexpectedEnd);
        err_at("9**9**9 )", 9, EvalErrorKind::UnexpectedToken(")".into()));
    }

    #[test]
    fn error_messages() {
        let cases = [
            ("1 +", "unexpected end of input at column 4"),
            ("2 * (3 + 4))", "unexpected token ')' at column 12"),
            ("abc", "invalid character 'a' at column 1"),
            ("(1", "unclosed '(' at column 1"),
            ("08", "invalid number literal '08' at column 1"),
            ("9**9**9", "number too large at column 2"),
            ("1e308 * 10", "result too large at column 7"),
            (
                "(-8) ** 0.5",
                "negative number raised to a fractional power at column 6",
            ),
            ("1 \u{7}", "invalid character '\\u{7}' at column 3"),
        ];
        for (line, message) in cases {
            assert_eq!(err(line).to_string(), message, "line {line:?}");
        }
        let long = format!("1 {}", "9".repeat(100));
        let message = err(&long).to_string();
        assert_eq!(
            message,
            format!("unexpected token '{}...' at column 3", "9".repeat(32))
        );
    }

    #[test]
    fn float_overflow_is_an_error() {
        err_at("1e308 * 10", 7, EvalErrorKind::FloatOverflow);
        err_at("10.0 ** 400", 6, EvalErrorKind::FloatOverflow);
        err_at("(-10.0) ** 401", 9, EvalErrorKind::FloatOverflow);
        err_at("1e308 // 1e-308", 7, EvalErrorKind::FloatOverflow);
        err_at("1e308 / 1e-308", 7, EvalErrorKind::FloatOverflow);
        err_at("2 ** 1023 * 2.0", 11, EvalErrorKind::FloatOverflow);
        err_at("2 ** 1024 / 1", 11, EvalErrorKind::FloatOverflow);
        err_at("10 ** 400 / 3", 11, EvalErrorKind::FloatOverflow);
        err_at("1e308 + 1e308 - 1e308", 7, EvalErrorKind::FloatOverflow);
        err_at("1e400", 1, EvalErrorKind::NumberTooLarge);
        err_at("1 + 2e999", 5, EvalErrorKind::NumberTooLarge);
    }

    #[test]
    fn int_too_large_for_float() {
        err_at("2 ** 1024 * 1.0", 11, EvalErrorKind::NumberTooLarge);
        err_at("1.0 + 10 ** 400", 5, EvalErrorKind::NumberTooLarge);
        err_at("(10 ** 400) ** -1", 13, EvalErrorKind::NumberTooLarge);
        err_at("2 ** -(10 ** 400)", 3, EvalErrorKind::NumberTooLarge);
        // Largest int that rounds below 2^1024 converts; one more does not.
        let max_ok = "(2 ** 1024 - 2 ** 970 - 1) * 1.0";
        assert_eq!(ok(max_ok), "1.7976931348623157e+308");
        let rounds_up = "(2 ** 1024 - 2 ** 970) * 1.0";
        assert_eq!(err(rounds_up).kind, EvalErrorKind::NumberTooLarge);
    }

    #[test]
    fn complex_results_are_errors() {
        err_at("(-8) ** (1/3)", 6, EvalErrorKind::ComplexResult);
        err_at("(-1) ** 0.5", 6, EvalErrorKind::ComplexResult);
        assert_eq!(ok("(-8) ** 3.0"), "-512.0");
    }

    #[test]
    fn int_to_float_conversion_is_correctly_rounded() {
        // 2^53 + 1 is a tie: rounds to even (2^53); 2^53 + 3 rounds up.
        assert_eq!(
            int_to_f64(&(BigInt::from(1u64 << 53) + 1)),
            Ok(9007199254740992.0)
        );
        assert_eq!(
            int_to_f64(&(BigInt::from(1u64 << 53) + 3)),
            Ok(9007199254740996.0)
        );
        // Just above a tie rounds up even when the excess is far below.
        let above_tie = (BigInt::from(1u64 << 53) + 1) * BigInt::from(2).pow(200) + 1;
        assert_eq!(
            int_to_f64(&above_tie),
            Ok((9007199254740994.0_f64) * 2f64.powi(200))
        );
        assert_eq!(int_to_f64(&BigInt::from(-5)), Ok(-5.0));
        assert_eq!(int_to_f64(&BigInt::zero()), Ok(0.0));
        for value in [
            0u64,
            1,
            7,
            (1 << 53) - 1,
            1 << 53,
            u64::MAX,
            12345678901234567890,
        ] {
            assert_eq!(
                int_to_f64(&BigInt::from(value)),
                Ok(value as f64),
                "{value}"
            );
        }
    }

    /// The BigInt path of `ratio_to_f64` agrees with plain f64 division
    /// wherever the latter is known to be exact-input, correctly rounded.
    #[test]
    fn ratio_matches_f64_division_for_small_operands() {
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..20_000 {
            let n = next() >> (11 + next() % 53);
            let d = (next() >> (11 + next() % 53)).max(1);
            let expected = n as f64 / d as f64;
            // Scale both by the same power of two to force the slow path.
            let scale = 60 + (next() % 500) as usize;
            let big_n = BigUint::from(n) << scale;
            let big_d = BigUint::from(d) << scale;
            assert_eq!(ratio_to_f64(&big_n, &big_d), Some(expected), "{n}/{d}");
        }
    }

    #[test]
    fn float_formatting() {
        let cases = [
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (1.0, "1.0"),
            (-2.5, "-2.5"),
            (1e16, "1e+16"),
            (1.5e16, "1.5e+16"),
            (9.999999999999998e15, "9999999999999998.0"),
            (1e-4, "0.0001"),
            (1e-5, "1e-05"),
            (-1.5e-5, "-1.5e-05"),
            (1e300, "1e+300"),
            (1.234e-300, "1.234e-300"),
            (f64::MAX, "1.7976931348623157e+308"),
            (f64::MIN_POSITIVE, "2.2250738585072014e-308"),
            (5e-324, "5e-324"),
            (123456.789, "123456.789"),
            // Exact decimal ties: Python picks the even last digit.
            (917156460191106.2, "917156460191106.2"),
            (-917156460191106.2, "-917156460191106.2"),
        ];
        for (value, expected) in cases {
            assert_eq!(format_float(value), expected, "{value:e}");
        }
    }

    #[test]
    fn big_ints_are_exact() {
        // Product of forty 20-digit numbers, each 10^19 + i.
        let factors: Vec<String> = (1..=40).map(|i| format!("{}", 10u64.pow(19) + i)).collect();
        let line = factors.join(" * ");
        let mut expected = BigInt::one();
        for i in 1..=40u64 {
            expected *= BigInt::from(10u64.pow(19) + i);
        }
        let result = ok(&line);
        assert_eq!(result, expected.to_string());
        assert!(result.len() > 760);
        assert_eq!(
            ok("2**200"),
            "1606938044258990275541962092341162602522202993782792835301376"
        );
        assert_eq!(ok("(2**200 + 1) - 2**200"), "1");
        assert_eq!(
            ok("-(3**100) // 7"),
            "-73625360104573047290923018537945896100301074572"
        );
        let literal = "9".repeat(MAX_LITERAL_DIGITS);
        assert_eq!(
            ok(&format!("{literal} + 1")),
            format!("1{}", "0".repeat(MAX_LITERAL_DIGITS))
        );
    }

    #[test]
    fn integer_size_bounds() {
        let started = Instant::now();
        err_at("9**9**9", 2, EvalErrorKind::NumberTooLarge);
        err_at("2 ** 100000", 3, EvalErrorKind::NumberTooLarge);
        err_at("10 ** (10 ** 30)", 4, EvalErrorKind::NumberTooLarge);
        err_at("(-3) ** 100000", 6, EvalErrorKind::NumberTooLarge);
        err_at("3 ** 70000", 3, EvalErrorKind::NumberTooLarge);
        err_at("2**99999 * 2", 10, EvalErrorKind::NumberTooLarge);
        err_at("2**60000 * 2**60000", 10, EvalErrorKind::NumberTooLarge);
        err_at("2**99999 + 2**99999", 10, EvalErrorKind::NumberTooLarge);
        err_at("-(2**99999) - 2**99999", 13, EvalErrorKind::NumberTooLarge);
        let too_long = "1".repeat(MAX_LITERAL_DIGITS + 1);
        err_at(&format!("1 + {too_long}"), 5, EvalErrorKind::NumberTooLarge);
        // Exactly at the bound is fine.
        assert_eq!(ok("2 ** 99999").len(), 30103);
        assert_eq!(ok("2**99999 // 2**99998"), "2");
        assert_eq!(ok("(2**50000 - 1) * (2**50000 + 1) // 2**99999"), "1");
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(err("9**9**9").to_string(), "number too large at column 2");
    }

    #[test]
    fn nesting_bounds() {
        let deep = "(".repeat(1000) + "1" + &")".repeat(1000);
        err_at(&deep, MAX_NESTING_DEPTH + 1, EvalErrorKind::NestingTooDeep);
        let unary = "-".repeat(1000) + "1";
        err_at(&unary, MAX_NESTING_DEPTH + 1, EvalErrorKind::NestingTooDeep);
        let mixed = "-(".repeat(60) + "1" + &")".repeat(60);
        err_at(&mixed, MAX_NESTING_DEPTH + 1, EvalErrorKind::NestingTooDeep);
        assert_eq!(
            err(&deep).to_string(),
            format!("nesting too deep at column {}", MAX_NESTING_DEPTH + 1)
        );
        // Exactly at the bound is fine.
        let max = "(".repeat(MAX_NESTING_DEPTH) + "7" + &")".repeat(MAX_NESTING_DEPTH);
        assert_eq!(ok(&max), "7");
        let max_unary = "-".repeat(MAX_NESTING_DEPTH) + "7";
        assert_eq!(ok(&max_unary), "7");
        // Sequential (not nested) parentheses and operators do not count.
        let wide = vec!["(-1)"; 5000].join(" + ");
        assert_eq!(ok(&wide), "-5000");
        // Long right-associative chains are parsed without recursion.
        let chain = vec!["1"; 5000].join(" ** ");
        assert_eq!(ok(&chain), "1");
    }

    /// `term` repeated, joined by `+`, up to `limit` bytes.
    fn repeated(term: &str, limit: usize) -> String {
        let count = (limit + 1) / (term.len() + 1);
        vec![term; count].join("+")
    }

    #[test]
    fn a_line_of_many_large_operations_runs_out_of_work() {
        // Each term alone is fine...
        assert_eq!(ok("9**30000%7**30000*0"), "0");
        // ...but 64 KiB of them would take seconds: two terms fit, and the third is refused
        // before its first power (column 42) is computed.
        let hostile = repeated("9**30000%7**30000*0", 64 * 1024);
        assert_eq!(err(&hostile), EvalError::at(42, EvalErrorKind::TooMuchWork));
        assert_eq!(
            err(&hostile).to_string(),
            "too much work for one line at column 42"
        );
        // Whatever the operation, the refusal comes before the step that would not fit.
        for term in [
            "7**30000//7**15001",
            "7**16000-7**16000",
            "(3**31500)*(3**31500)",
        ] {
            let line = repeated(term, 64 * 1024);
            assert_eq!(err(&line).kind, EvalErrorKind::TooMuchWork, "{term}");
        }
    }

    #[test]
    fn the_default_budget_fits_the_largest_single_results_and_long_plain_lines() {
        assert_eq!(ok("2 ** 99999").len(), 30103);
        assert_eq!(ok("(3**31500)*(3**31500) - 3**63000"), "0");
        assert_eq!(ok("3**63000 // 3**31500").len(), 15030);
        let literal = "7".repeat(MAX_LITERAL_DIGITS);
        assert_eq!(
            ok(&repeated(&literal, 64 * 1024)).len(),
            MAX_LITERAL_DIGITS + 1
        );
        assert_eq!(ok(&repeated("1", 64 * 1024)), "32768");
        let products = repeated("12345*6789", 64 * 1024);
        let count = products.split('+').count() as u64;
        assert_eq!(ok(&products), (count * 12345 * 6789).to_string());
    }

    #[test]
    fn a_smaller_budget_refuses_sooner_at_the_step_that_does_not_fit() {
        let within = |line: &str, budget: u64| evaluate_line_within(line, budget);
        assert_eq!(within("2**10", 1_000), Ok("1024".into()));
        // Tokens are paid for as they are read: the error names the first one that did not fit.
        let tokens = within(&repeated("1", 1000), 20 * work::TOKEN);
        assert_eq!(tokens, Err(EvalError::at(21, EvalErrorKind::TooMuchWork)));
        // An operator is refused at its own column.
        assert_eq!(
            within("1 + 3**5000", 10_000),
            Err(EvalError::at(6, EvalErrorKind::TooMuchWork))
        );
        // Room to compute 2**99999 but not to print its 30 103 digits: no column.
        let printing = within("2**99999", 2_000_000);
        assert_eq!(
            printing.unwrap_err().to_string(),
            "too much work for one line"
        );
        // A zero budget refuses everything, even an empty line's first token.
        assert_eq!(
            within("1", 0),
            Err(EvalError::at(1, EvalErrorKind::TooMuchWork))
        );
    }

    #[test]
    fn size_limits_are_checked_before_the_budget() {
        // Too large is reported as such, not as too much work, whatever the budget.
        err_at("9**9**9", 2, EvalErrorKind::NumberTooLarge);
        assert_eq!(
            evaluate_line_within("2**60000 * 2**60000", u64::MAX)
                .unwrap_err()
                .kind,
            EvalErrorKind::NumberTooLarge
        );
        assert_eq!(
            evaluate_line_within("1/0", 1_000),
            Err(EvalError::at(2, EvalErrorKind::DivisionByZero))
        );
    }

    #[test]
    fn error_trait_and_display() {
        let error: Box<dyn std::error::Error> = Box::new(err("1 +"));
        assert_eq!(error.to_string(), "unexpected end of input at column 4");
    }
}
