//! Exact non-negative rational arithmetic for scores, so that "two decimals, half away from
//! zero" (rules §7.7) rounds the true value of a ratio and not its binary approximation.
//!
//! This module owns the small unsigned big integer and rational used by `scores`; it must
//! never be used for anything that is not a count, a decimal weight or a score.

use std::cmp::Ordering;

/// An unsigned integer of any size, little-endian 32-bit limbs.
/// Invariant: no trailing zero limb (zero is the empty vector).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Big(Vec<u32>);

impl Big {
    /// Zero.
    pub fn zero() -> Big {
        Big(Vec::new())
    }

    /// A small integer.
    pub fn from_u64(n: u64) -> Big {
        let mut b = Big(vec![n as u32, (n >> 32) as u32]);
        b.trim();
        b
    }

    fn trim(&mut self) {
        while self.0.last() == Some(&0) {
            self.0.pop();
        }
    }

    /// Whether it is zero.
    pub fn is_zero(&self) -> bool {
        self.0.is_empty()
    }

    /// `self + other`.
    pub fn add(&self, other: &Big) -> Big {
        let n = self.0.len().max(other.0.len());
        let mut out = Vec::with_capacity(n + 1);
        let mut carry = 0u64;
        for i in 0..n {
            let s = u64::from(*self.0.get(i).unwrap_or(&0))
                + u64::from(*other.0.get(i).unwrap_or(&0))
                + carry;
            out.push(s as u32);
            carry = s >> 32;
        }
        out.push(carry as u32);
        let mut b = Big(out);
        b.trim();
        b
    }

    /// `self × other`.
    pub fn mul(&self, other: &Big) -> Big {
        if self.is_zero() || other.is_zero() {
            return Big::zero();
        }
        let mut out = vec![0u32; self.0.len() + other.0.len()];
        for (i, &a) in self.0.iter().enumerate() {
            let mut carry = 0u64;
            for (j, &b) in other.0.iter().enumerate() {
                let t = u64::from(a) * u64::from(b) + u64::from(out[i + j]) + carry;
                out[i + j] = t as u32;
                carry = t >> 32;
            }
            let mut k = i + other.0.len();
            while carry > 0 {
                let t = u64::from(out[k]) + carry;
                out[k] = t as u32;
                carry = t >> 32;
                k += 1;
            }
        }
        let mut b = Big(out);
        b.trim();
        b
    }

    /// `self × n`.
    pub fn mul_u64(&self, n: u64) -> Big {
        self.mul(&Big::from_u64(n))
    }
}

impl Ord for Big {
    fn cmp(&self, other: &Big) -> Ordering {
        self.0
            .len()
            .cmp(&other.0.len())
            .then_with(|| self.0.iter().rev().cmp(other.0.iter().rev()))
    }
}

impl PartialOrd for Big {
    fn partial_cmp(&self, other: &Big) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// A non-negative rational `num / den`. Invariant: `den` is not zero.
#[derive(Debug, Clone)]
pub struct Ratio {
    num: Big,
    den: Big,
}

impl Ratio {
    /// `n / d`; `None` when `d` is zero.
    pub fn new(n: u64, d: u64) -> Option<Ratio> {
        (d != 0).then(|| Ratio {
            num: Big::from_u64(n),
            den: Big::from_u64(d),
        })
    }

    /// `n / d` of 128-bit parts (the exact score a columnar scorer computed in `i128`);
    /// `None` when `d` is zero.
    pub fn from_u128(n: u128, d: u128) -> Option<Ratio> {
        let big = |x: u128| {
            Big::from_u64((x >> 64) as u64)
                .mul(&Big::from_u64(1 << 32))
                .mul(&Big::from_u64(1 << 32))
                .add(&Big::from_u64(x as u64))
        };
        (d != 0).then(|| Ratio {
            num: big(n),
            den: big(d),
        })
    }

    /// An integer.
    pub fn int(n: u64) -> Ratio {
        Ratio {
            num: Big::from_u64(n),
            den: Big::from_u64(1),
        }
    }

    /// The exact decimal a non-negative finite `f64` was written as: its shortest
    /// round-trip representation (`0.1` is 1/10, not the binary neighbour of 0.1).
    /// `None` for a negative or non-finite number.
    pub fn from_decimal(x: f64) -> Option<Ratio> {
        if !x.is_finite() || x < 0.0 {
            return None;
        }
        // `Display` of f64 is the shortest round-trip form and never uses an exponent.
        let s = format!("{x}");
        let (int, frac) = s.split_once('.').unwrap_or((&s, ""));
        let mut num = Big::zero();
        for c in int.bytes().chain(frac.bytes()) {
            num = num
                .mul_u64(10)
                .add(&Big::from_u64(u64::from(c.checked_sub(b'0')?)));
        }
        let mut den = Big::from_u64(1);
        for _ in 0..frac.len() {
            den = den.mul_u64(10);
        }
        Some(Ratio { num, den })
    }

    /// The decimal a non-negative finite `f64` was written as (as [`Ratio::from_decimal`]
    /// reads it), as `(digits, decimals)`: `x = digits / 10^decimals`. `None` for a negative
    /// or non-finite number, or one whose digits or `10^decimals` do not fit in 128 bits.
    pub fn decimal_parts(x: f64) -> Option<(u128, u32)> {
        if !x.is_finite() || x < 0.0 {
            return None;
        }
        let s = format!("{x}");
        let (int, frac) = s.split_once('.').unwrap_or((&s, ""));
        let mut digits: u128 = 0;
        for c in int.bytes().chain(frac.bytes()) {
            digits = digits
                .checked_mul(10)?
                .checked_add(u128::from(c.checked_sub(b'0')?))?;
        }
        let decimals = u32::try_from(frac.len()).ok()?;
        10u128.checked_pow(decimals)?;
        Some((digits, decimals))
    }

    /// `self + other`.
    pub fn add(&self, other: &Ratio) -> Ratio {
        Ratio {
            num: self.num.mul(&other.den).add(&other.num.mul(&self.den)),
            den: self.den.mul(&other.den),
        }
    }

    /// `self × other`.
    pub fn mul(&self, other: &Ratio) -> Ratio {
        Ratio {
            num: self.num.mul(&other.num),
            den: self.den.mul(&other.den),
        }
    }

    /// `self / other`; `None` when `other` is zero.
    pub fn div(&self, other: &Ratio) -> Option<Ratio> {
        (!other.num.is_zero()).then(|| Ratio {
            num: self.num.mul(&other.den),
            den: self.den.mul(&other.num),
        })
    }

    /// `1 − self`, for `self ≤ 1`; `None` above 1.
    pub fn one_minus(&self) -> Option<Ratio> {
        if self.num > self.den {
            return None;
        }
        // den − num without a subtraction routine: search is overkill, so subtract limbs.
        Some(Ratio {
            num: sub(&self.den, &self.num),
            den: self.den.clone(),
        })
    }

    /// The value in hundredths, rounded half away from zero (values are non-negative, so
    /// half up). Saturates at `2^53` hundredths.
    pub fn hundredths(&self) -> u64 {
        // Largest q with q·den ≤ 100·num, by bisection (only multiplications by small numbers).
        let hundred_num = self.num.mul_u64(100);
        let (mut lo, mut hi) = (0u64, 1u64 << 53);
        while lo < hi {
            let mid = lo + (hi - lo).div_ceil(2);
            if self.den.mul_u64(mid) <= hundred_num {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        // Half up: 100·num − q·den ≥ den/2  ⇔  200·num ≥ (2q+1)·den.
        if self.num.mul_u64(200) >= self.den.mul_u64(2 * lo + 1) && lo < (1u64 << 53) {
            lo + 1
        } else {
            lo
        }
    }

    /// The value rounded to two decimals, as the nearest `f64` (prints as that decimal).
    pub fn round2(&self) -> f64 {
        self.hundredths() as f64 / 100.0
    }
}

impl PartialEq for Ratio {
    fn eq(&self, other: &Ratio) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Ratio {}

impl Ord for Ratio {
    fn cmp(&self, other: &Ratio) -> Ordering {
        self.num.mul(&other.den).cmp(&other.num.mul(&self.den))
    }
}

impl PartialOrd for Ratio {
    fn partial_cmp(&self, other: &Ratio) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// `a − b` for `a ≥ b`.
fn sub(a: &Big, b: &Big) -> Big {
    let mut out = Vec::with_capacity(a.0.len());
    let mut borrow = 0i64;
    for i in 0..a.0.len() {
        let mut d = i64::from(a.0[i]) - i64::from(*b.0.get(i).unwrap_or(&0)) - borrow;
        borrow = 0;
        if d < 0 {
            d += 1 << 32;
            borrow = 1;
        }
        out.push(d as u32);
    }
    let mut r = Big(out);
    r.trim();
    r
}

/// Rounds to two decimals, half away from zero, reading `x` as the decimal it prints as
/// (so `2.675` gives `2.68` although the binary `2.675` lies just below it). Non-finite and
/// huge values (beyond 10^13) come back unchanged.
pub fn round2(x: f64) -> f64 {
    if !x.is_finite() || x.abs() >= 1e13 {
        return x;
    }
    match Ratio::from_decimal(x.abs()) {
        Some(r) => {
            let v = r.round2();
            if x < 0.0 { -v } else { v }
        }
        None => x,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halves_round_away_from_zero() {
        assert_eq!(round2(2.675), 2.68);
        assert_eq!(round2(1.005), 1.01);
        assert_eq!(round2(-1.005), -1.01);
        assert_eq!(round2(0.125), 0.13);
        assert_eq!(round2(87.5), 87.5);
        assert_eq!(round2(1.0049999), 1.0);
        assert_eq!(round2(99.995), 100.0);
    }

    #[test]
    fn ratios_round_exactly() {
        // 1/8 = 0.125 → 0.13; 2/3 → 0.67; 1/3 → 0.33
        assert_eq!(Ratio::new(1, 8).unwrap().round2(), 0.13);
        assert_eq!(Ratio::new(2, 3).unwrap().round2(), 0.67);
        assert_eq!(Ratio::new(1, 3).unwrap().round2(), 0.33);
        assert_eq!(Ratio::new(0, 3).unwrap().round2(), 0.0);
        // 100 × 0.1 exactly 10
        let tenth = Ratio::from_decimal(0.1).unwrap();
        assert_eq!(tenth.mul(&Ratio::int(100)).hundredths(), 1000);
        assert_eq!(tenth.one_minus().unwrap(), Ratio::new(9, 10).unwrap());
    }

    #[test]
    fn decimal_parts_read_the_written_decimal() {
        assert_eq!(Ratio::decimal_parts(0.1), Some((1, 1)));
        assert_eq!(Ratio::decimal_parts(40.0), Some((40, 0)));
        assert_eq!(Ratio::decimal_parts(68.8), Some((688, 1)));
        assert_eq!(Ratio::decimal_parts(-1.0), None);
        assert_eq!(Ratio::decimal_parts(1e300), None);
        let (d, k) = Ratio::decimal_parts(64.415).unwrap();
        assert_eq!(
            Ratio::from_u128(d, 10u128.pow(k)).unwrap(),
            Ratio::from_decimal(64.415).unwrap()
        );
        let big = Ratio::from_u128(u128::MAX, 3).unwrap();
        assert!(big > Ratio::new(u64::MAX, 1).unwrap());
        assert_eq!(Ratio::from_u128(6, 4).unwrap(), Ratio::new(3, 2).unwrap());
        assert!(Ratio::from_u128(1, 0).is_none());
    }

    #[test]
    fn big_arithmetic_agrees_with_u128() {
        let a: u64 = 0xFFFF_FFFF_FFFF_FFF1;
        let b: u64 = 0x1234_5678_9ABC_DEF0;
        let p = Big::from_u64(a).mul(&Big::from_u64(b));
        let expect = u128::from(a) * u128::from(b);
        let lo = Big::from_u64(expect as u64);
        let hi = Big::from_u64((expect >> 64) as u64);
        let shifted = hi.mul(&Big::from_u64(1 << 32)).mul(&Big::from_u64(1 << 32));
        assert_eq!(p, shifted.add(&lo));
        assert!(Big::from_u64(b) < Big::from_u64(a));
    }
}
