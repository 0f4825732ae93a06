//! The values of `tern eval` and the arithmetic on them, with Python's semantics: an int is exact
//! at any size (up to a bound), a float is an IEEE double; mixing them promotes to float, `/` is
//! true division, `//` and `%` floor with the sign of the divisor, and int to float conversion and
//! int division are correctly rounded at any size. Each big step is checked against the size bound
//! and priced against the line's work budget *before* it runs.

use num_bigint::{BigInt, BigUint, Sign};
use num_integer::Integer;
use num_traits::{One, Signed, ToPrimitive, Zero};

use super::error::EvalErrorKind;
use super::float_format::format_float;
use super::work::{self, Budget};

/// Maximum size of any integer result (unit: bits of the absolute value;
/// 100 000 bits is about 30 100 decimal digits). Checked before `*` and `**`
/// are computed so that no line can make the server allocate or multiply
/// huge numbers; printing such a number costs a few milliseconds at most.
pub(super) const MAX_INT_BITS: u64 = 100_000;

/// An operator on two numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
    FloorDiv,
    Mod,
    Pow,
}

/// An operator on one number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum UnaryOp {
    Neg,
    Pos,
}

/// A Python `int` or `float`.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Num {
    Int(BigInt),
    Float(f64),
}

impl Num {
    pub(super) fn unary(self, op: UnaryOp) -> Num {
        match (op, self) {
            (UnaryOp::Pos, value) => value,
            (UnaryOp::Neg, Num::Int(a)) => Num::Int(-a),
            (UnaryOp::Neg, Num::Float(x)) => Num::Float(-x),
        }
    }

    /// Applies a binary operator with Python's int/float promotion, if
    /// `budget` has room for it.
    pub(super) fn binary(
        self,
        op: BinaryOp,
        rhs: Num,
        budget: &mut Budget,
    ) -> Result<Num, EvalErrorKind> {
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
    pub(super) fn to_text(&self, budget: &mut Budget) -> Result<String, EvalErrorKind> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
