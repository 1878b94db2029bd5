//! Go's duration text form (`time.ParseDuration` and `time.Duration.String`), exactly.
//!
//! `config.toml` stores every timeout as a Go duration string: `"100ms"`, `"20s"`, `"1m30s"`,
//! `"0s"`. The grammar is a sign followed by one or more `number unit` pairs, where a number is
//! decimal with an optional fraction and the units are `ns`, `us` (also `µs` with the micro sign
//! and `μs` with the Greek mu), `ms`, `s`, `m` and `h`. The bare string `"0"` (optionally
//! signed) is the only value without a unit. There is no day unit, no spaces, no exponent.
//!
//! Parsing follows Go's algorithm step by step, including its corners: `"1.s"` and `".5s"` are
//! valid, `"."`, `"1"`, `"00"` and `"1d"` are not, a fraction carries at most the precision an
//! unsigned 64-bit accumulator holds (further digits are read and dropped), fractions are scaled
//! with a `f64` multiplication and truncated, and the total must fit a signed 64-bit count of
//! nanoseconds (so `"-9223372036854775808ns"` parses and `"9223372036854775808ns"` does not).
//!
//! Formatting is Go's `String`: below one second the largest of `ns`, `µs` and `ms` that keeps
//! the integer part non-zero, with the fraction's trailing zeros dropped (`"1.5ms"`); from one
//! second on `h`, `m` and `s` with the leading zero units dropped (`"1h0m0s"`, `"1m30s"`,
//! `"2.5s"`); zero is `"0s"`.
//!
//! No Rust crate reproduces this grammar (humantime and friends accept spaces and day units and
//! print differently), and config values must read back in a Go node exactly as written, so it
//! is implemented here.

use core::fmt;
use core::str::FromStr;
use core::time::Duration;

use crate::Error;

const NANOSECOND: u64 = 1;
const MICROSECOND: u64 = 1_000 * NANOSECOND;
const MILLISECOND: u64 = 1_000 * MICROSECOND;
const SECOND: u64 = 1_000 * MILLISECOND;
const MINUTE: u64 = 60 * SECOND;
const HOUR: u64 = 60 * MINUTE;

/// 2^63: the magnitude of the most negative duration, and one more than the most positive.
const LIMIT: u64 = 1 << 63;

/// A Go `time.Duration`: a signed count of nanoseconds, with Go's text form.
///
/// ```
/// use core::time::Duration;
/// use p2p_types::config::GoDuration;
///
/// let d: GoDuration = "1m30.5s".parse().unwrap();
/// assert_eq!(d.to_std(), Some(Duration::from_millis(90_500)));
/// assert_eq!(d.to_string(), "1m30.5s");
/// assert_eq!(GoDuration::from_nanos(0).to_string(), "0s");
/// assert!("1d".parse::<GoDuration>().is_err());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GoDuration(i64);

impl GoDuration {
    /// The largest duration Go represents, about 292 years.
    pub const MAX: Self = Self(i64::MAX);
    /// The most negative duration Go represents.
    pub const MIN: Self = Self(i64::MIN);

    /// Wraps a count of nanoseconds.
    pub const fn from_nanos(nanos: i64) -> Self {
        Self(nanos)
    }

    /// The count of nanoseconds.
    pub const fn as_nanos(self) -> i64 {
        self.0
    }

    /// Converts a Rust duration; `None` if it exceeds [`GoDuration::MAX`].
    pub fn from_std(d: Duration) -> Option<Self> {
        i64::try_from(d.as_nanos()).ok().map(Self)
    }

    /// Converts to a Rust duration; `None` if negative.
    pub fn to_std(self) -> Option<Duration> {
        u64::try_from(self.0).ok().map(Duration::from_nanos)
    }
}

impl FromStr for GoDuration {
    type Err = Error;

    /// Parses exactly what Go's `time.ParseDuration` accepts, with the same result.
    fn from_str(s: &str) -> Result<Self, Error> {
        parse(s).map(Self).map_err(|reason| Error::InvalidDuration {
            duration: s.to_owned(),
            reason,
        })
    }
}

impl fmt::Display for GoDuration {
    /// Writes what Go's `time.Duration.String` writes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 < 0 {
            f.write_str("-")?;
        }
        f.write_str(&format_magnitude(self.0.unsigned_abs()))
    }
}

/// Formats a Rust duration in Go's text form. Durations above [`GoDuration::MAX`] are written
/// in the same style (Go's formatter, widened), but a Go node cannot read them back.
pub fn format_std(d: Duration) -> String {
    match u64::try_from(d.as_nanos()) {
        Ok(nanos) => format_magnitude(nanos),
        Err(_) => {
            // Beyond 2^64 ns (584 years): whole seconds are exact; the formatter below only
            // needs the sub-second part and the seconds separately.
            let mut out = String::new();
            let secs = d.as_secs();
            let frac = frac_digits(u64::from(d.subsec_nanos()), 9);
            out.push_str(&(secs / 3600).to_string());
            out.push('h');
            out.push_str(&(secs / 60 % 60).to_string());
            out.push('m');
            out.push_str(&(secs % 60).to_string());
            out.push_str(&frac);
            out.push('s');
            out
        }
    }
}

/// The `.ddd` fraction of `v / 10^prec` without trailing zeros, or nothing if it is zero.
fn frac_digits(v: u64, prec: u32) -> String {
    let frac = v % 10u64.pow(prec);
    if frac == 0 {
        return String::new();
    }
    let digits = format!("{frac:0width$}", width = prec as usize);
    format!(".{}", digits.trim_end_matches('0'))
}

/// Go's `Duration.format` for a non-negative magnitude (the sign is written by the caller).
fn format_magnitude(u: u64) -> String {
    if u == 0 {
        return "0s".to_owned();
    }
    if u < SECOND {
        let (unit, prec) = if u < MICROSECOND {
            ("ns", 0)
        } else if u < MILLISECOND {
            ("µs", 3)
        } else {
            ("ms", 6)
        };
        let scale = 10u64.pow(prec);
        return format!("{}{}{unit}", u / scale, frac_digits(u, prec));
    }
    let frac = frac_digits(u, 9);
    let secs = u / SECOND;
    let (hours, minutes, seconds) = (secs / 3600, secs / 60 % 60, secs % 60);
    if hours > 0 {
        format!("{hours}h{minutes}m{seconds}{frac}s")
    } else if minutes > 0 {
        format!("{minutes}m{seconds}{frac}s")
    } else {
        format!("{seconds}{frac}s")
    }
}

/// The value of a unit, as in Go's `unitMap`.
fn unit_value(unit: &str) -> Option<u64> {
    Some(match unit {
        "ns" => NANOSECOND,
        // Latin `u`, the micro sign U+00B5 and the Greek small mu U+03BC.
        "us" | "\u{b5}s" | "\u{3bc}s" => MICROSECOND,
        "ms" => MILLISECOND,
        "s" => SECOND,
        "m" => MINUTE,
        "h" => HOUR,
        _ => return None,
    })
}

/// Go's `leadingInt`: the leading decimal digits as an integer, failing above 2^63.
fn leading_int(s: &str) -> Result<(u64, &str), ()> {
    let end = s
        .bytes()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(s.len());
    let mut x: u64 = 0;
    for b in s.bytes().take(end) {
        if x > LIMIT / 10 {
            return Err(());
        }
        x = x * 10 + u64::from(b - b'0');
        if x > LIMIT {
            return Err(());
        }
    }
    Ok((x, s.get(end..).unwrap_or_default()))
}

/// Go's `leadingFraction`: the leading decimal digits of a fraction as an integer and its
/// scale (10 per digit kept); digits past the accumulator's capacity are consumed and dropped.
fn leading_fraction(s: &str) -> (u64, f64, &str) {
    let end = s
        .bytes()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(s.len());
    let mut x: u64 = 0;
    let mut scale = 1.0_f64;
    let mut overflow = false;
    for b in s.bytes().take(end) {
        if overflow {
            continue;
        }
        if x > (LIMIT - 1) / 10 {
            overflow = true;
            continue;
        }
        let y = x * 10 + u64::from(b - b'0');
        if y > LIMIT {
            overflow = true;
            continue;
        }
        x = y;
        scale *= 10.0;
    }
    (x, scale, s.get(end..).unwrap_or_default())
}

/// Go's `time.ParseDuration`, returning nanoseconds or the reason Go gives.
fn parse(orig: &str) -> Result<i64, String> {
    let invalid = || "invalid duration".to_owned();
    let mut s = orig;
    let mut neg = false;
    if let Some(rest) = s.strip_prefix('-') {
        neg = true;
        s = rest;
    } else if let Some(rest) = s.strip_prefix('+') {
        s = rest;
    }
    if s == "0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(invalid());
    }
    let mut d: u64 = 0;
    while !s.is_empty() {
        // The next character must be a digit or a period.
        if !s.starts_with(|c: char| c == '.' || c.is_ascii_digit()) {
            return Err(invalid());
        }
        let before = s.len();
        let (mut v, rest) = leading_int(s).map_err(|()| invalid())?;
        s = rest;
        let pre = before != s.len();

        let mut f = 0;
        let mut scale = 1.0;
        let mut post = false;
        if let Some(rest) = s.strip_prefix('.') {
            let before = rest.len();
            (f, scale, s) = leading_fraction(rest);
            post = before != s.len();
        }
        if !pre && !post {
            return Err(invalid());
        }

        // The unit runs up to the next digit or period (or the end).
        let unit_len = s
            .bytes()
            .position(|b| b == b'.' || b.is_ascii_digit())
            .unwrap_or(s.len());
        if unit_len == 0 {
            return Err("missing unit in duration".to_owned());
        }
        // Both ends are ASCII boundaries (or the end), so the split is on char boundaries.
        let (unit, rest) = s.split_at_checked(unit_len).ok_or_else(invalid)?;
        s = rest;
        let unit = unit_value(unit).ok_or_else(|| format!("unknown unit {unit:?} in duration"))?;
        if v > LIMIT / unit {
            return Err(invalid());
        }
        v *= unit;
        if f > 0 {
            // Exactly Go's float arithmetic: f * (unit / scale), truncated. The product is
            // below one unit (f has fewer digits than scale), so the cast never saturates.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let frac = (f as f64 * (unit as f64 / scale)) as u64;
            v += frac;
            if v > LIMIT {
                return Err(invalid());
            }
        }
        d += v;
        if d > LIMIT {
            return Err(invalid());
        }
    }
    if neg {
        // d <= 2^63, so -d fits (2^63 itself is i64::MIN).
        Ok(0i64.wrapping_sub_unsigned(d))
    } else {
        i64::try_from(d).map_err(|_| invalid())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<i64, String> {
        parse(s)
    }

    #[test]
    fn simple_values() {
        assert_eq!(p("0"), Ok(0));
        assert_eq!(p("-0"), Ok(0));
        assert_eq!(p("+0"), Ok(0));
        assert_eq!(p("0s"), Ok(0));
        assert_eq!(p("100ms"), Ok(100_000_000));
        assert_eq!(p("3s"), Ok(3_000_000_000));
        assert_eq!(p("1m30s"), Ok(90_000_000_000));
        assert_eq!(p("1h"), Ok(3_600_000_000_000));
        assert_eq!(p("1.5s"), Ok(1_500_000_000));
        assert_eq!(p("1µs"), Ok(1_000));
        assert_eq!(p("1μs"), Ok(1_000));
        assert_eq!(p("1us"), Ok(1_000));
        assert_eq!(p("7ns"), Ok(7));
        assert_eq!(p("-1.5h"), Ok(-5_400_000_000_000));
        assert_eq!(p("1.s"), Ok(1_000_000_000));
        assert_eq!(p(".5s"), Ok(500_000_000));
        assert_eq!(p("1h1h"), Ok(7_200_000_000_000));
    }

    #[test]
    fn go_rejections() {
        for bad in [
            "", "-", "+", "1", "00", ".", ".s", "-.s", "s", "1d", "1 s", " 1s", "1s ", "1e3s",
            "1h-30m", "--1s", "1.5.5s", "∞s",
        ] {
            assert!(p(bad).is_err(), "{bad:?} should be rejected");
        }
        assert_eq!(p("1"), Err("missing unit in duration".to_owned()));
        assert_eq!(p("1d"), Err("unknown unit \"d\" in duration".to_owned()));
        assert_eq!(
            p("1h-30m"),
            Err("unknown unit \"h-\" in duration".to_owned())
        );
    }

    #[test]
    fn limits() {
        assert_eq!(p("9223372036854775807ns"), Ok(i64::MAX));
        assert_eq!(p("-9223372036854775808ns"), Ok(i64::MIN));
        assert!(p("9223372036854775808ns").is_err());
        assert!(p("-9223372036854775809ns").is_err());
        assert!(p("2562048h").is_err());
        assert_eq!(p("2562047h"), Ok(2_562_047 * HOUR as i64));
        // Fraction digits past the accumulator are dropped, not an error.
        assert_eq!(p("0.100000000000000000000000000001s"), Ok(100_000_000));
    }

    #[test]
    fn formats_like_go() {
        let cases: &[(i64, &str)] = &[
            (0, "0s"),
            (1, "1ns"),
            (1_100, "1.1µs"),
            (2_200_000, "2.2ms"),
            (100_000_000, "100ms"),
            (3_300_000_000, "3.3s"),
            (4 * MINUTE as i64 + 5 * SECOND as i64, "4m5s"),
            (4 * MINUTE as i64 + 5_001 * MILLISECOND as i64, "4m5.001s"),
            (
                5 * HOUR as i64 + 6 * MINUTE as i64 + 7_001 * MILLISECOND as i64,
                "5h6m7.001s",
            ),
            (8 * MINUTE as i64 + 1, "8m0.000000001s"),
            (HOUR as i64, "1h0m0s"),
            (i64::MAX, "2562047h47m16.854775807s"),
            (i64::MIN, "-2562047h47m16.854775808s"),
            (-1, "-1ns"),
        ];
        for &(nanos, text) in cases {
            assert_eq!(GoDuration(nanos).to_string(), text);
            assert_eq!(p(text), Ok(nanos), "{text}");
        }
    }

    #[test]
    fn std_conversions() {
        assert_eq!(
            GoDuration::from_std(Duration::from_secs(3)),
            Some(GoDuration(3_000_000_000))
        );
        assert_eq!(GoDuration::from_std(Duration::MAX), None);
        assert_eq!(GoDuration(-1).to_std(), None);
        assert_eq!(format_std(Duration::from_millis(1500)), "1.5s");
        assert_eq!(
            format_std(Duration::MAX),
            "5124095576030431h0m15.999999999s"
        );
        assert_eq!(
            format_std(Duration::from_nanos(u64::MAX)),
            "5124095h34m33.709551615s"
        );
    }
}
