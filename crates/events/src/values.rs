//! Validated value types. Each deserializes only from a value inside its domain, so a decoded
//! [`Event`](crate::Event) never carries negative money, a zero quantity, an out-of-range
//! coordinate or an identifier that would be unsafe as a Firestore document id.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{FieldErrorKind, ValueError};

/// Largest amount accepted, in minor units (100 million in major units): far above any
/// plausible order, far below where an `f64` on the wire stops being exact to the cent.
pub const MAX_MINOR_UNITS: u64 = 10_000_000_000;

/// An exact, non-negative amount of money in minor units (cents).
///
/// On the wire it is a JSON number in major units with at most two decimals, as the original
/// system wrote it (`144.92`, `1.0`): encoding prints `minor / 100` as the shortest `f64`
/// that round-trips, decoding multiplies by 100 and accepts the result only if it is within
/// 1e-6 of an integer. Every amount up to [`MAX_MINOR_UNITS`] round-trips exactly.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(try_from = "f64", into = "f64")]
pub struct Money(u64);

impl Money {
    pub const ZERO: Money = Money(0);

    pub fn from_minor(minor: u64) -> Result<Self, ValueError> {
        if minor > MAX_MINOR_UNITS {
            return Err(ValueError::new(
                FieldErrorKind::OutOfRange,
                format!("{minor} minor units exceeds {MAX_MINOR_UNITS}"),
            ));
        }
        Ok(Money(minor))
    }

    pub fn minor(self) -> u64 {
        self.0
    }

    pub fn checked_mul(self, qty: u32) -> Option<Money> {
        self.0
            .checked_mul(u64::from(qty))
            .filter(|m| *m <= MAX_MINOR_UNITS)
            .map(Money)
    }

    pub fn checked_add(self, other: Money) -> Option<Money> {
        self.0
            .checked_add(other.0)
            .filter(|m| *m <= MAX_MINOR_UNITS)
            .map(Money)
    }
}

impl TryFrom<f64> for Money {
    type Error = ValueError;
    fn try_from(major: f64) -> Result<Self, ValueError> {
        if !major.is_finite() || major < 0.0 {
            return Err(ValueError::new(
                FieldErrorKind::OutOfRange,
                format!("amount {major} must be a finite number >= 0"),
            ));
        }
        let scaled = major * 100.0;
        if scaled > MAX_MINOR_UNITS as f64 {
            return Err(ValueError::new(
                FieldErrorKind::OutOfRange,
                format!("amount {major} exceeds {}", MAX_MINOR_UNITS / 100),
            ));
        }
        let minor = scaled.round();
        if (scaled - minor).abs() > 1e-6 {
            return Err(ValueError::new(
                FieldErrorKind::Invalid,
                format!("amount {major} has more than two decimal places"),
            ));
        }
        // In range and integral by the checks above.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        Ok(Money(minor as u64))
    }
}

impl From<Money> for f64 {
    #[allow(clippy::cast_precision_loss)] // exact: minor <= MAX_MINOR_UNITS < 2^53
    fn from(m: Money) -> f64 {
        m.0 as f64 / 100.0
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:02}", self.0 / 100, self.0 % 100)
    }
}

/// ISO 4217 currencies whose minor unit is the hundredth, the only ones [`Money`] can carry.
pub const SUPPORTED_CURRENCIES: &[&str] = &[
    "AUD", "BRL", "CAD", "CHF", "CNY", "DKK", "EUR", "GBP", "INR", "MXN", "NOK", "NZD", "PLN",
    "SEK", "SGD", "USD", "ZAR",
];

/// An ISO 4217 currency code from [`SUPPORTED_CURRENCIES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency([u8; 3]);

impl Currency {
    pub const USD: Currency = Currency(*b"USD");

    pub fn as_str(&self) -> &str {
        // Constructed only from ASCII codes.
        std::str::from_utf8(&self.0).unwrap_or("???")
    }
}

impl TryFrom<String> for Currency {
    type Error = ValueError;
    fn try_from(s: String) -> Result<Self, ValueError> {
        match SUPPORTED_CURRENCIES.iter().find(|c| **c == s) {
            Some(c) => {
                let b = c.as_bytes();
                Ok(Currency([b[0], b[1], b[2]]))
            }
            None => Err(ValueError::new(
                FieldErrorKind::Invalid,
                format!("{s:?} is not a supported ISO 4217 currency with two decimals"),
            )),
        }
    }
}

impl From<Currency> for String {
    fn from(c: Currency) -> String {
        c.as_str().to_owned()
    }
}

/// An ISO 3166-1 alpha-2 country code: two ASCII upper-case letters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CountryCode([u8; 2]);

impl CountryCode {
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("??")
    }
}

impl TryFrom<String> for CountryCode {
    type Error = ValueError;
    fn try_from(s: String) -> Result<Self, ValueError> {
        match s.as_bytes() {
            [a, b] if a.is_ascii_uppercase() && b.is_ascii_uppercase() => Ok(CountryCode([*a, *b])),
            _ => Err(ValueError::new(
                FieldErrorKind::Invalid,
                format!("{s:?} is not an ISO 3166-1 alpha-2 code"),
            )),
        }
    }
}

impl TryFrom<&str> for CountryCode {
    type Error = ValueError;
    fn try_from(s: &str) -> Result<Self, ValueError> {
        Self::try_from(s.to_owned())
    }
}

impl From<CountryCode> for String {
    fn from(c: CountryCode) -> String {
        c.as_str().to_owned()
    }
}

/// `TryFrom<&str>` (through the validating `TryFrom<String>`) and `From<T> for String` for a
/// validated newtype around a `String`.
macro_rules! string_newtype_conversions {
    ($t:ident) => {
        impl TryFrom<&str> for $t {
            type Error = ValueError;
            fn try_from(s: &str) -> Result<Self, ValueError> {
                Self::try_from(s.to_owned())
            }
        }

        impl From<$t> for String {
            fn from(v: $t) -> String {
                v.0
            }
        }
    };
}

/// Longest [`EntityId`] accepted; Firestore allows 1,500 bytes per id.
pub const MAX_ID_LEN: usize = 128;

/// A catalog identifier (category, product, payment method) that is safe as a Firestore
/// document id: 1..=128 characters of `[A-Za-z0-9_-]`, not starting with `__`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EntityId(String);

impl EntityId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for EntityId {
    type Error = ValueError;
    fn try_from(s: String) -> Result<Self, ValueError> {
        let unsafe_id = |why: &str| {
            Err(ValueError::new(
                FieldErrorKind::UnsafeId,
                format!("{}: {why}", preview(&s)),
            ))
        };
        if s.is_empty() {
            return unsafe_id("empty");
        }
        if s.len() > MAX_ID_LEN {
            return unsafe_id(&format!("longer than {MAX_ID_LEN} bytes"));
        }
        if s.starts_with("__") {
            return unsafe_id("ids starting with __ are reserved by Firestore");
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return unsafe_id("only A-Z, a-z, 0-9, '-' and '_' are allowed");
        }
        Ok(EntityId(s))
    }
}

string_newtype_conversions!(EntityId);

impl fmt::Display for EntityId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A place name (state, city) that may become a Firestore path segment: 1..=100 characters,
/// no `/`, no control characters, not `.` or `..`, not starting with `__`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PlaceName(String);

impl PlaceName {
    pub const MAX_CHARS: usize = 100;

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for PlaceName {
    type Error = ValueError;
    fn try_from(s: String) -> Result<Self, ValueError> {
        let unsafe_id = |why: &str| {
            Err(ValueError::new(
                FieldErrorKind::UnsafeId,
                format!("{}: {why}", preview(&s)),
            ))
        };
        if s.trim().is_empty() {
            return unsafe_id("empty");
        }
        if s.chars().count() > Self::MAX_CHARS {
            return unsafe_id(&format!("longer than {} characters", Self::MAX_CHARS));
        }
        if s == "." || s == ".." || s.starts_with("__") {
            return unsafe_id("reserved as a Firestore path segment");
        }
        if s.chars().any(|c| c == '/' || c.is_control()) {
            return unsafe_id("contains '/' or a control character");
        }
        Ok(PlaceName(s))
    }
}

string_newtype_conversions!(PlaceName);

/// Free text for display (names, user agents): 1..=`MAX` characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Text<const MAX: usize>(String);

impl<const MAX: usize> Text<MAX> {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<const MAX: usize> TryFrom<String> for Text<MAX> {
    type Error = ValueError;
    fn try_from(s: String) -> Result<Self, ValueError> {
        if s.trim().is_empty() {
            return Err(ValueError::new(FieldErrorKind::Invalid, "empty text"));
        }
        if s.chars().count() > MAX {
            return Err(ValueError::new(
                FieldErrorKind::OutOfRange,
                format!("{}: longer than {MAX} characters", preview(&s)),
            ));
        }
        if s.chars().any(char::is_control) {
            return Err(ValueError::new(
                FieldErrorKind::Invalid,
                format!("{}: contains a control character", preview(&s)),
            ));
        }
        Ok(Text(s))
    }
}

impl<const MAX: usize> TryFrom<&str> for Text<MAX> {
    type Error = ValueError;
    fn try_from(s: &str) -> Result<Self, ValueError> {
        Self::try_from(s.to_owned())
    }
}

impl<const MAX: usize> From<Text<MAX>> for String {
    fn from(t: Text<MAX>) -> String {
        t.0
    }
}

/// Largest quantity of one product in one cart operation or order line.
pub const MAX_QUANTITY: u32 = 1_000;

/// A positive item count, 1..=[`MAX_QUANTITY`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "u32")]
pub struct Quantity(u32);

impl Quantity {
    pub fn get(self) -> u32 {
        self.0
    }
}

impl TryFrom<i64> for Quantity {
    type Error = ValueError;
    fn try_from(n: i64) -> Result<Self, ValueError> {
        match u32::try_from(n) {
            Ok(q) if (1..=MAX_QUANTITY).contains(&q) => Ok(Quantity(q)),
            _ => Err(ValueError::new(
                FieldErrorKind::OutOfRange,
                format!("quantity {n} is not in 1..={MAX_QUANTITY}"),
            )),
        }
    }
}

impl From<Quantity> for u32 {
    fn from(q: Quantity) -> u32 {
        q.0
    }
}

macro_rules! bounded_f64 {
    ($name:ident, $lo:expr, $hi:expr, $what:literal) => {
        #[doc = concat!("A ", $what, " in degrees, within [", stringify!($lo), ", ", stringify!($hi), "].")]
        #[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize, Deserialize)]
        #[serde(try_from = "f64", into = "f64")]
        pub struct $name(f64);

        impl $name {
            pub fn get(self) -> f64 {
                self.0
            }
        }

        impl TryFrom<f64> for $name {
            type Error = ValueError;
            fn try_from(v: f64) -> Result<Self, ValueError> {
                if v.is_finite() && ($lo..=$hi).contains(&v) {
                    Ok($name(v))
                } else {
                    Err(ValueError::new(FieldErrorKind::OutOfRange, format!(concat!($what, " {} is not in [{}, {}]"), v, $lo, $hi)))
                }
            }
        }

        impl From<$name> for f64 {
            fn from(v: $name) -> f64 {
                v.0
            }
        }
    };
}

bounded_f64!(Latitude, -90.0, 90.0, "latitude");
bounded_f64!(Longitude, -180.0, 180.0, "longitude");

/// Longest session accepted in `session_ended.seconds_duration`: 7 days.
pub const MAX_SESSION_SECONDS: u64 = 7 * 24 * 3600;

/// A session length in whole seconds, 0..=[`MAX_SESSION_SECONDS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "u64")]
pub struct DurationSeconds(u64);

impl DurationSeconds {
    pub fn get(self) -> u64 {
        self.0
    }
}

impl TryFrom<i64> for DurationSeconds {
    type Error = ValueError;
    fn try_from(n: i64) -> Result<Self, ValueError> {
        match u64::try_from(n) {
            Ok(s) if s <= MAX_SESSION_SECONDS => Ok(DurationSeconds(s)),
            _ => Err(ValueError::new(
                FieldErrorKind::OutOfRange,
                format!("duration {n}s is not in 0..={MAX_SESSION_SECONDS}"),
            )),
        }
    }
}

impl From<DurationSeconds> for u64 {
    fn from(d: DurationSeconds) -> u64 {
        d.0
    }
}

/// A short, escaped rendering of untrusted input for error messages.
fn preview(s: &str) -> String {
    const MAX: usize = 40;
    if s.chars().count() <= MAX {
        format!("{s:?}")
    } else {
        let head: String = s.chars().take(MAX).collect();
        format!("{head:?}... ({} bytes)", s.len())
    }
}
