//! Putting the tokens of a line in evaluation order: a shunting-yard parser that turns them into a
//! postfix program, with Python's precedence and associativity (`**` binds tighter than a unary
//! minus on its left and groups to the right). It is iterative, so no nesting can overflow the
//! thread's stack, and it bounds how deep the nesting may go.

use super::error::{EvalError, EvalErrorKind};
use super::lexer::{Token, TokenKind};
use super::numbers::{BinaryOp, Num, UnaryOp};

/// Maximum number of parentheses and unary operators that may be open at the
/// same time (unit: nesting levels). It keeps the operator stack small and
/// makes absurd inputs such as 1000 `(` fail fast with a clear message.
pub(super) const MAX_NESTING_DEPTH: usize = 100;

/// Binding strength of unary `-`/`+`: tighter than `*`, looser than `**`.
const UNARY_PRECEDENCE: u8 = 3;

/// The binary operator a token stands for, if any.
fn binary_operator(kind: &TokenKind) -> Option<BinaryOp> {
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

/// Binding strength of a binary operator (higher binds tighter), as in Python.
fn precedence(op: BinaryOp) -> u8 {
    match op {
        BinaryOp::Add | BinaryOp::Sub => 1,
        BinaryOp::Mul | BinaryOp::Div | BinaryOp::FloorDiv | BinaryOp::Mod => 2,
        BinaryOp::Pow => 4,
    }
}

/// Whether `a op b op c` groups as `a op (b op c)`: only `**` does.
fn is_right_associative(op: BinaryOp) -> bool {
    op == BinaryOp::Pow
}

/// One step of the postfix program.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Instr {
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
pub(super) fn parse(
    line: &str,
    tokens: Vec<Token>,
    end_column: usize,
) -> Result<Vec<Instr>, EvalError> {
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
        if let Some(op) = binary_operator(&token.kind) {
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
        let incoming = precedence(op);
        while let Some(&top) = self.stack.last() {
            let top_precedence = match top {
                Pending::Open(_) => break,
                Pending::Unary(_) => UNARY_PRECEDENCE,
                Pending::Binary(top_op, _) => precedence(top_op),
            };
            let pops = top_precedence > incoming
                || (top_precedence == incoming && !is_right_associative(op));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arithmetic::lexer::tokenize;
    use crate::arithmetic::work::Budget;
    use num_bigint::BigInt;

    fn program(line: &str) -> Vec<Instr> {
        let tokens = tokenize(line, &mut Budget::new(u64::MAX)).unwrap();
        parse(line, tokens, line.len() + 1).unwrap()
    }

    fn int(value: i32) -> Instr {
        Instr::Push(Num::Int(BigInt::from(value)))
    }

    #[test]
    fn power_binds_tighter_than_a_unary_minus_on_its_left_and_groups_to_the_right() {
        assert_eq!(
            program("-2**3**2"),
            [
                int(2),
                int(3),
                int(2),
                Instr::Binary(BinaryOp::Pow, 6),
                Instr::Binary(BinaryOp::Pow, 3),
                Instr::Unary(UnaryOp::Neg),
            ]
        );
    }

    #[test]
    fn other_operators_group_to_the_left_by_precedence() {
        assert_eq!(
            program("10 - 4 * 2 - 3"),
            [
                int(10),
                int(4),
                int(2),
                Instr::Binary(BinaryOp::Mul, 8),
                Instr::Binary(BinaryOp::Sub, 4),
                int(3),
                Instr::Binary(BinaryOp::Sub, 12),
            ]
        );
        assert_eq!(
            program("(1 + 2) % 3"),
            [
                int(1),
                int(2),
                Instr::Binary(BinaryOp::Add, 4),
                int(3),
                Instr::Binary(BinaryOp::Mod, 9),
            ]
        );
    }
}
