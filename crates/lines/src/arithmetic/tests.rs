//! The evaluator end to end: whole lines against the answers Python gives, the errors and their
//! columns, and the bounds on size, nesting and work.

use super::lexer::MAX_LITERAL_DIGITS;
use super::parser::MAX_NESTING_DEPTH;
use super::*;
use num_bigint::BigInt;
use num_traits::One;
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
