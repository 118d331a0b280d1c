//! Rust values to and from [`Value`]: integers, text, booleans (0/1), options (NULL).

use super::{FromSql, ToSql, Value};

impl ToSql for Value {
    fn to_value(&self) -> Value {
        self.clone()
    }
}

impl<T: ToSql + ?Sized> ToSql for &T {
    fn to_value(&self) -> Value {
        (**self).to_value()
    }
}

impl<T: ToSql> ToSql for Option<T> {
    fn to_value(&self) -> Value {
        self.as_ref().map_or(Value::Null, T::to_value)
    }
}

impl ToSql for str {
    fn to_value(&self) -> Value {
        Value::Text(self.to_string())
    }
}

impl ToSql for String {
    fn to_value(&self) -> Value {
        Value::Text(self.clone())
    }
}

impl ToSql for bool {
    fn to_value(&self) -> Value {
        Value::Int(i64::from(*self))
    }
}

macro_rules! int_value {
    ($($t:ty),*) => {$(
        impl ToSql for $t {
            fn to_value(&self) -> Value {
                // Larger than i64 only for u64/usize past 2^63: kept at the largest i64.
                Value::Int(i64::try_from(*self).unwrap_or(i64::MAX))
            }
        }

        impl FromSql for $t {
            fn from_value(v: &Value) -> Result<Self, String> {
                match v {
                    Value::Int(i) => <$t>::try_from(*i)
                        .map_err(|_| format!("{i} is out of range for {}", stringify!($t))),
                    other => Err(format!("expected an integer, found {other}")),
                }
            }
        }
    )*};
}

int_value!(i32, i64, u32, u64, usize);

impl FromSql for bool {
    fn from_value(v: &Value) -> Result<Self, String> {
        i64::from_value(v).map(|i| i != 0)
    }
}

impl FromSql for String {
    fn from_value(v: &Value) -> Result<Self, String> {
        match v {
            Value::Text(s) => Ok(s.clone()),
            other => Err(format!("expected text, found {other}")),
        }
    }
}

impl FromSql for Value {
    fn from_value(v: &Value) -> Result<Self, String> {
        Ok(v.clone())
    }
}

impl<T: FromSql> FromSql for Option<T> {
    fn from_value(v: &Value) -> Result<Self, String> {
        match v {
            Value::Null => Ok(None),
            v => T::from_value(v).map(Some),
        }
    }
}

/// A text column read through `parse`: its value, or the error naming `what` was unknown.
pub fn text_value<T>(
    v: &Value,
    what: &str,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<T, String> {
    match v {
        Value::Text(s) => parse(s).ok_or_else(|| format!("unknown {what} {s:?}")),
        other => Err(format!(
            "Invalid column type: expected a {what}, found {other}"
        )),
    }
}
