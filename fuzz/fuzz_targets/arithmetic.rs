//! Fuzzes the `eval` service's evaluator (`tern_lines::arithmetic::evaluate_line`).
//!
//! Checks, besides "no panic": a result is a Python int or float literal (never inf or nan) that
//! evaluates to itself again; an error has a message and a column inside the line.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tern_lines::arithmetic::evaluate_line;

/// Integer literals longer than this are refused by the evaluator (unit: decimal digits), so
/// longer results are not fed back in.
const MAX_LITERAL_DIGITS: usize = 10_000;

fuzz_target!(|data: &[u8]| {
    let line = String::from_utf8_lossy(data);
    match evaluate_line(&line) {
        Ok(result) => check_result(&result),
        Err(error) => {
            assert!(!error.to_string().is_empty());
            if let Some(column) = error.column {
                let chars = line.chars().count();
                assert!(
                    (1..=chars + 1).contains(&column),
                    "column {column} outside a line of {chars} characters"
                );
            }
        }
    }
});

fn check_result(result: &str) {
    let digits = result.strip_prefix('-').unwrap_or(result);
    let is_int = !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit());
    if is_int {
        assert!(
            digits == "0" || !digits.starts_with('0'),
            "leading zero in {result}"
        );
        assert!(result != "-0", "an int is never -0");
        if digits.len() > MAX_LITERAL_DIGITS {
            return;
        }
    } else {
        let value: f64 = result
            .parse()
            .unwrap_or_else(|_| panic!("{result:?} is neither an int nor a float"));
        assert!(value.is_finite(), "{result} is not finite");
        assert!(
            result.contains(['.', 'e']),
            "a float prints with a point or an exponent: {result}"
        );
    }
    assert_eq!(
        evaluate_line(result).as_deref(),
        Ok(result),
        "a result does not evaluate to itself"
    );
}
