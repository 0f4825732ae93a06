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
//!   capped at `numbers::MAX_INT_BITS` (100 000 bits): `*` and `**` are checked
//!   *before* they are computed, from the operands' sizes; `+` and `-`
//!   (linear cost) are checked on their result. Integer literals are capped
//!   at `lexer::MAX_LITERAL_DIGITS` (10 000 digits) and nesting at
//!   `parser::MAX_NESTING_DEPTH` (100). Parsing (shunting-yard to postfix) and
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
//! A line goes through one module per step: `lexer` splits it into
//! tokens, `parser` puts them in postfix order, `numbers` computes with
//! Python's ints and floats, and `float_format` prints a float as Python's
//! `repr` does; `work` prices every step, and `error` says what went wrong
//! and where.
//!
//! Entry points: [`evaluate_line`], and [`evaluate_line_within`] with a
//! chosen work budget.

mod error;
mod float_format;
mod lexer;
mod numbers;
mod parser;
mod work;

#[cfg(test)]
mod tests;

pub use error::{EvalError, EvalErrorKind};

use numbers::Num;
use parser::Instr;
use work::Budget;

/// Work one line may use (unit: work units, about a nanosecond each; see
/// the `work` module). Four million is at most about 4 ms of one core:
/// room for the largest single results (`2 ** 99999` and printing its
/// 30 103 digits are priced at 2.9 million) and for a 64 KiB line of small
/// numbers (2 million), while no line holds a worker's event loop longer
/// than a few milliseconds.
pub const DEFAULT_WORK_BUDGET: u64 = 4_000_000;

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
    let tokens = lexer::tokenize(line, &mut budget)?;
    // Every character is ASCII once tokenized, so the byte length is the
    // character count.
    let program = parser::parse(line, tokens, line.len() + 1)?;
    let value = run(program, &mut budget)?;
    value
        .to_text(&mut budget)
        .map_err(|kind| EvalError { column: None, kind })
}

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
