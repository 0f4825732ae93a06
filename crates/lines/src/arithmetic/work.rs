//! What one line of `tern eval` may cost, estimated before each step is taken.
//!
//! A worker runs every connection on one thread, so a line that computes for a second stops
//! every other client of that worker for a second. The size bounds of the evaluator keep each
//! number small enough, but a line can still chain thousands of large operations. So each line
//! gets a [`Budget`] of work units, and every step is priced from the sizes of its operands
//! *before* it runs: a step that does not fit is refused, never started.
//!
//! One unit is roughly one multiply-add of two 64-bit limbs, about a nanosecond on a current
//! x86-64 core (release build). The prices follow the algorithms of `num-bigint` 0.5 and were
//! checked against its measured times over sizes from 1 to 1 563 limbs (100 000 bits): each
//! estimate is within about a factor of two of the real time, usually above it.

/// Bits in one limb of a big integer.
const LIMB_BITS: u64 = 64;

/// Up to this many limbs in the shorter factor, `num-bigint` multiplies by schoolbook
/// (n·m limb products); above it by Karatsuba and Toom-3.
const SCHOOLBOOK_LIMBS: u64 = 32;

/// Karatsuba turns an m×m product into m^log2(3) limb products instead of m²: the price of a
/// long multiplication above [`SCHOOLBOOK_LIMBS`] is n·m·(32/m)^(2 - log2 3).
const KARATSUBA_SAVING_EXPONENT: f64 = 2.0 - 1.584_962_500_721_156;

/// Measured time per limb product is 1.0 to 1.75 ns (schoolbook, with its carries, is the
/// slowest per product), so each is priced at one and a half units...
const LIMB_PRODUCT_NUMERATOR: u64 = 3;
const LIMB_PRODUCT_DENOMINATOR: u64 = 2;
/// ...and every multiplication, including each step inside a power, costs this much more for
/// allocating and normalising its result (measured: 25 to 100 ns for one-limb factors).
const MULTIPLICATION_OVERHEAD: u64 = 50;

/// Division costs about twice the multiplication of quotient by divisor (Burnikel-Ziegler
/// above 64 limbs, schoolbook below)...
const DIVISION_FACTOR: u64 = 2;
/// ...plus this much per limb of dividend and divisor, for normalising and the remainder
/// (measured: an equal-sized division of 1 563 limbs takes about 40 µs).
const DIVISION_LINEAR: u64 = 16;

/// Every token of the line: scanning, parsing and the stack step that uses it (measured: a
/// 64 KiB line `1+1+...+1`, 65 535 tokens, takes about 1 ms in all).
pub const TOKEN: u64 = 15;
/// Every binary operator on top of its size-dependent price: the allocation of its result.
pub const OPERATION: u64 = 30;
/// Printing a float: the shortest round-trip digits and the tie check (a few big-number
/// multiplications of at most 18 limbs).
pub const FLOAT_TO_TEXT: u64 = 5_000;
/// Parsing a decimal literal costs this much per digit on top of its quadratic part.
const PARSE_PER_DIGIT: u64 = 2;
/// Printing in decimal costs this much per limb on top of its quadratic part.
const PRINT_PER_LIMB: u64 = 150;

/// The work left for one line.
#[derive(Debug)]
pub struct Budget {
    /// Units still available; a step that costs more is refused.
    remaining: u64,
}

/// A step was refused: it would have used more work than the line has left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutOfWork;

impl Budget {
    pub fn new(units: u64) -> Self {
        Budget { remaining: units }
    }

    /// Takes `units` from the budget, or refuses (and leaves nothing) if they are not there.
    pub fn charge(&mut self, units: u64) -> Result<(), OutOfWork> {
        match self.remaining.checked_sub(units) {
            Some(left) => {
                self.remaining = left;
                Ok(())
            }
            None => {
                self.remaining = 0;
                Err(OutOfWork)
            }
        }
    }
}

/// Limbs needed for a number of `bits` bits (at least one).
pub fn limbs(bits: u64) -> u64 {
    bits.div_ceil(LIMB_BITS).max(1)
}

/// Adding or subtracting: linear in both operands.
pub fn add(a_limbs: u64, b_limbs: u64) -> u64 {
    a_limbs.saturating_add(b_limbs)
}

/// Multiplying an `a`-limb by a `b`-limb number.
pub fn multiply(a_limbs: u64, b_limbs: u64) -> u64 {
    limb_products(a_limbs, b_limbs)
        .saturating_mul(LIMB_PRODUCT_NUMERATOR)
        .div_ceil(LIMB_PRODUCT_DENOMINATOR)
        .saturating_add(MULTIPLICATION_OVERHEAD)
}

/// The number of limb products `num-bigint` needs (at most) to multiply an `a`-limb by a
/// `b`-limb number.
fn limb_products(a_limbs: u64, b_limbs: u64) -> u64 {
    let long = a_limbs.max(b_limbs).max(1);
    let short = a_limbs.min(b_limbs).max(1);
    let schoolbook = long.saturating_mul(short);
    if short <= SCHOOLBOOK_LIMBS {
        return schoolbook;
    }
    let saving = (SCHOOLBOOK_LIMBS as f64 / short as f64).powf(KARATSUBA_SAVING_EXPONENT);
    // Float to int saturates; the product is at most a few million for numbers within bounds.
    (schoolbook as f64 * saving).ceil() as u64
}

/// Floor division or remainder of an `a`-limb by a `b`-limb number (b nonzero).
pub fn divide(a_limbs: u64, b_limbs: u64) -> u64 {
    let linear = DIVISION_LINEAR.saturating_mul(a_limbs.saturating_add(b_limbs));
    if a_limbs < b_limbs {
        return linear;
    }
    let quotient_limbs = a_limbs - b_limbs + 1;
    DIVISION_FACTOR
        .saturating_mul(multiply(quotient_limbs, b_limbs))
        .saturating_add(linear)
}

/// `base ** exponent` for a base of `base_bits` bits, priced by following `num-bigint`'s
/// square-and-multiply step by step, with the upper bound k·bits(x) for the size of x^k.
pub fn power(base_bits: u64, exponent: u64) -> u64 {
    /// Squares a number of `bits` bits: its price, and the size of the square.
    fn square(bits: u64) -> (u64, u64) {
        (multiply(limbs(bits), limbs(bits)), bits.saturating_mul(2))
    }
    if exponent == 0 {
        return 0;
    }
    let mut base = base_bits.max(1);
    let mut exponent = exponent;
    let mut work: u64 = 0;
    while exponent & 1 == 0 {
        let (price, squared) = square(base);
        work = work.saturating_add(price);
        base = squared;
        exponent >>= 1;
    }
    let mut accumulated = base;
    while exponent > 1 {
        exponent >>= 1;
        let (price, squared) = square(base);
        work = work.saturating_add(price);
        base = squared;
        if exponent & 1 == 1 {
            work = work.saturating_add(multiply(limbs(accumulated), limbs(base)));
            accumulated = accumulated.saturating_add(base);
        }
    }
    work
}

/// Parsing a decimal literal of `digits` digits into a big integer (quadratic in its limbs).
pub fn parse_decimal(digits: u64) -> u64 {
    let limbs = decimal_limbs(digits);
    limbs
        .saturating_mul(limbs)
        .saturating_add(PARSE_PER_DIGIT.saturating_mul(digits))
}

/// Printing an `n`-limb integer in decimal (divide and conquer, nearly quadratic).
pub fn print_decimal(n_limbs: u64) -> u64 {
    n_limbs
        .saturating_mul(n_limbs)
        .div_ceil(2)
        .saturating_add(PRINT_PER_LIMB.saturating_mul(n_limbs))
}

/// Limbs of a number with `digits` decimal digits (3.33 bits per digit, an upper bound).
fn decimal_limbs(digits: u64) -> u64 {
    limbs(digits.saturating_mul(10).div_ceil(3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_refuses_what_does_not_fit_and_then_everything() {
        let mut budget = Budget::new(100);
        assert_eq!(budget.charge(60), Ok(()));
        assert_eq!(budget.charge(41), Err(OutOfWork));
        // A refusal uses up the rest: the line is over.
        assert_eq!(budget.charge(1), Err(OutOfWork));
        assert_eq!(Budget::new(5).charge(5), Ok(()));
    }

    #[test]
    fn multiplication_is_schoolbook_for_short_factors_and_cheaper_above() {
        assert_eq!(limb_products(1, 1), 1);
        assert_eq!(limb_products(1563, 1), 1563);
        assert_eq!(limb_products(32, 1000), 32_000);
        let balanced = limb_products(1563, 1563);
        assert!(balanced < 1563 * 1563 / 4, "{balanced}");
        assert!(balanced > 1563 * 1563 / 6, "{balanced}");
        assert_eq!(multiply(1, 1), 2 + MULTIPLICATION_OVERHEAD);
        assert_eq!(multiply(10, 20), 300 + MULTIPLICATION_OVERHEAD);
        // Symmetric, and monotonic in both sizes.
        assert_eq!(multiply(100, 700), multiply(700, 100));
        assert!(multiply(700, 101) >= multiply(700, 100));
    }

    #[test]
    fn division_prices_the_quotient_times_the_divisor() {
        // A small quotient is cheap however long the numbers.
        assert!(divide(1563, 1563) < 60_000);
        assert!(divide(1563, 1) < 30_000);
        // A dividend shorter than the divisor is only read.
        assert_eq!(divide(10, 20), 16 * 30);
        assert!(divide(1563, 781) > multiply(781, 781));
    }

    #[test]
    fn power_follows_square_and_multiply() {
        assert_eq!(power(2, 1), 0);
        assert_eq!(power(2, 0), 0);
        // x^2: one squaring of the base.
        assert_eq!(power(64, 2), multiply(1, 1));
        // x^3: a squaring, then the base times the square (one limb by two).
        assert_eq!(power(64, 3), multiply(1, 1) + multiply(1, 2));
        // The largest results cost about as much as a balanced product of half their size,
        // and far less than a schoolbook square of the result.
        let big = power(2, 99_999);
        assert!(big > multiply(782, 782), "{big}");
        assert!(big < 1563 * 1563, "{big}");
        // Huge exponents saturate instead of overflowing.
        assert!(power(u64::MAX, u64::MAX) > 0);
    }

    #[test]
    fn parse_and_print_are_priced_by_size() {
        assert_eq!(limbs(0), 1);
        assert_eq!(limbs(64), 1);
        assert_eq!(limbs(65), 2);
        assert!(parse_decimal(10_000) > 200_000);
        assert!(parse_decimal(5) < 50);
        assert!(print_decimal(1563) > 1_000_000);
        assert!(print_decimal(1) < 200);
    }
}
