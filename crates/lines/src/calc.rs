//! `tern calc`: the sum/product calculator. Each connection has a mode (sum at first); `sum` and
//! `product` switch it, a comma-separated list of integers is added or multiplied exactly (any
//! size), `quit` ends the connection.

use num_bigint::BigInt;
use num_traits::{One, Zero};

use super::{LineProtocol, Reply};

/// Most numbers in one line; with the line-length limit this bounds the work per line.
const MAX_NUMBERS: usize = 10_000;

pub struct Calc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Sum,
    Product,
}

const ERROR_LINE: &str = "ERROR. Enter only integers separated by commas";

impl LineProtocol for Calc {
    type Session = Mode;

    fn greeting(&self) -> Option<String> {
        Some("<welcome: starting in sum mode>".into())
    }

    fn start_session(&self) -> Mode {
        Mode::Sum
    }

    fn respond(&self, mode: &mut Mode, line: &str) -> Reply {
        match line.trim() {
            "sum" => {
                *mode = Mode::Sum;
                Reply::line("<switching to sum mode>")
            }
            "product" => {
                *mode = Mode::Product;
                Reply::line("<switching to product mode>")
            }
            "quit" => Reply::closing("connection closed"),
            numbers => match parse_integers(numbers) {
                Some(values) => Reply::line(match mode {
                    Mode::Sum => format!(
                        "Sum of input numbers: {}",
                        values.iter().fold(BigInt::zero(), |a, b| a + b)
                    ),
                    Mode::Product => {
                        format!(
                            "Product of input numbers: {}",
                            values.iter().fold(BigInt::one(), |a, b| a * b)
                        )
                    }
                }),
                None => Reply::line(ERROR_LINE),
            },
        }
    }
}

/// `1, -2,3` → [1, -2, 3]; None if any item is not an integer (or there are too many).
fn parse_integers(line: &str) -> Option<Vec<BigInt>> {
    let items: Vec<&str> = line.split(',').map(str::trim).collect();
    if items.len() > MAX_NUMBERS {
        return None;
    }
    items
        .into_iter()
        .map(|item| {
            let digits = item.strip_prefix(['-', '+']).unwrap_or(item);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            item.parse::<BigInt>().ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(lines: &[&str]) -> Vec<String> {
        let mut mode = Calc.start_session();
        lines
            .iter()
            .map(|l| Calc.respond(&mut mode, l).text)
            .collect()
    }

    #[test]
    fn transcript() {
        assert_eq!(
            run(&["1,2,3", " 4 , -5 ", "product", "2,3,4", "sum", "x", "1,,2", "", "quit"]),
            [
                "Sum of input numbers: 6",
                "Sum of input numbers: -1",
                "<switching to product mode>",
                "Product of input numbers: 24",
                "<switching to sum mode>",
                ERROR_LINE,
                ERROR_LINE,
                ERROR_LINE,
                "connection closed",
            ]
        );
    }

    #[test]
    fn products_are_exact() {
        let numbers = vec!["12345678901234567890"; 40].join(",");
        let expected = num_traits::pow(BigInt::from(12345678901234567890u64), 40);
        assert_eq!(
            run(&["product", &numbers])[1],
            format!("Product of input numbers: {expected}")
        );
    }
}
