//! Printing a float the way Python's `repr` does: the shortest digits that read back as the same
//! float (an exact tie goes to the even digit, as in Python and not in Rust's own formatting),
//! positional for decimal exponents from -4 to 15 and scientific outside them.

use num_bigint::BigUint;

/// Formats a finite float the way Python's `repr` does: the shortest digits
/// that round-trip, in positional notation when the decimal exponent is in
/// -4..16 (always with a fractional part, e.g. `2.0`) and in scientific
/// notation otherwise (`1e+16`, `1.5e-05`).
pub(super) fn format_float(x: f64) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
