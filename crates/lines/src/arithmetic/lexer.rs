//! Splitting a line of `tern eval` into tokens: number literals (Python's grammar, converted to a
//! big integer or a float as they are read) and the fixed set of operators and parentheses.
//! Anything else, letters included, is an invalid character: nothing in a line is ever a name.

use num_bigint::BigInt;

use super::error::{EvalError, EvalErrorKind};
use super::work::{self, Budget};

/// Maximum length of an integer literal (unit: decimal digits). A literal
/// of this size has about 33 000 bits, safely below
/// [`MAX_INT_BITS`](super::numbers::MAX_INT_BITS), and parsing it is cheap.
pub(super) const MAX_LITERAL_DIGITS: usize = 10_000;

/// What a token is: a number literal, already converted, or an operator or parenthesis.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum TokenKind {
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

/// One token and where it stands in the line.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Token {
    pub(super) kind: TokenKind,
    /// 1-based column of the first character.
    pub(super) column: usize,
    /// Length of the source text in bytes (all ASCII), for error messages.
    len: usize,
}

impl Token {
    /// The token's source text in `line`.
    pub(super) fn text<'a>(&self, line: &'a str) -> &'a str {
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
pub(super) fn tokenize(line: &str, budget: &mut Budget) -> Result<Vec<Token>, EvalError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(line: &str) -> Vec<(TokenKind, usize)> {
        let mut budget = Budget::new(u64::MAX);
        let tokens = tokenize(line, &mut budget).unwrap();
        tokens.into_iter().map(|t| (t.kind, t.column)).collect()
    }

    #[test]
    fn operators_take_the_longest_match_and_numbers_convert_as_read() {
        assert_eq!(
            kinds("2**-1 // (.5e1)"),
            [
                (TokenKind::Int(BigInt::from(2)), 1),
                (TokenKind::DoubleStar, 2),
                (TokenKind::Minus, 4),
                (TokenKind::Int(BigInt::from(1)), 5),
                (TokenKind::DoubleSlash, 7),
                (TokenKind::LeftParen, 10),
                (TokenKind::Float(5.0), 11),
                (TokenKind::RightParen, 15),
            ]
        );
        assert!(kinds(" \t ").is_empty());
    }

    #[test]
    fn a_token_quotes_its_own_source_text() {
        let line = "1 + 12345678901234567890123";
        let tokens = tokenize(line, &mut Budget::new(u64::MAX)).unwrap();
        let texts: Vec<&str> = tokens.iter().map(|t| t.text(line)).collect();
        assert_eq!(texts, ["1", "+", "12345678901234567890123"]);
    }
}
