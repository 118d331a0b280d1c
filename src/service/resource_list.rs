//! Resource lists as they stream: `[{"checksum":{"value":SHA1},"size_in_bytes":N,"path":..,
//! "mode":..},..]` (or the v2 shape `{"sha1":..,"size":..,"fn":..,"mode":..}`), deserialized
//! straight into compact [`Descriptor`]s. No JSON tree is built: each entry keeps only the keys
//! it needs (others are skipped unread), the list is counted as it goes and parsing stops at
//! the first entry past the limit. Answers are written from the descriptors, in the shape each
//! entry came in.

use super::resource_entry::{descriptor, Node};
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use std::cell::RefCell;
use std::fmt;
use std::io::Read;

/// One file description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptor {
    pub sha1: [u8; 20],
    pub size: u64,
    /// `path` (v3) or `fn` (v2), as given.
    pub path: Option<Box<str>>,
    pub mode: Option<Mode>,
    /// Came as `sha1`/`size`/`fn` (answered in that shape).
    pub v2: bool,
}

/// An octal `mode` string, kept so that it can be written back as it came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mode {
    given: u32,
    digits: u8,
}

impl Mode {
    /// Permission bits (Go's `os.FileMode` type and setuid bits above 0o777 are dropped).
    pub fn bits(self) -> u32 {
        self.given & 0o777
    }

    pub(super) fn parse(s: &str) -> Option<Mode> {
        let s = s.trim();
        if s.is_empty() || s.len() > 11 || !s.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
            return None;
        }
        let given = u32::from_str_radix(s, 8).ok()?;
        Some(Mode {
            given,
            digits: s.len() as u8,
        })
    }
}

impl Descriptor {
    pub fn sha1_hex(&self) -> String {
        hex::encode(self.sha1)
    }
}

/// Why a list was refused: `Shape` is the whole answer's detail ("Resource 3 has no
/// checksum"); `Syntax` is the JSON parser's message; `Sink` what the sink said.
#[derive(Debug, PartialEq, Eq)]
pub enum ListError {
    Shape(String),
    Syntax(String),
    Sink(String),
}

/// Takes the entries a batch at a time (at most [`BATCH`]), in order.
pub type Sink<'a> = &'a mut dyn FnMut(Vec<Descriptor>) -> Result<(), String>;

/// Entries handed to a sink at once.
pub const BATCH: usize = 1000;

/// A bare list (the upload's `resources` field), at most `max` entries, handed to `sink` in
/// batches.
pub fn parse_list(r: impl Read, max: usize, sink: Sink) -> Result<(), ListError> {
    parse(r, sink, |why, sink, de| {
        ListSeed {
            max,
            why,
            sink,
            not_list: "The resources field is not a JSON array",
        }
        .deserialize(de)
    })
}

/// A match request, `{"resources":[..]}`, at most `max` entries, handed to `sink` in batches.
pub fn parse_request(r: impl Read, max: usize, sink: Sink) -> Result<(), ListError> {
    parse(r, sink, |why, sink, de| {
        Request { max, why, sink }.deserialize(de)
    })
}

type Json<R> = serde_json::Deserializer<serde_json::de::IoRead<R>>;

fn parse<R: Read>(
    r: R,
    sink: Sink,
    f: impl FnOnce(&Why, Sink, &mut Json<R>) -> serde_json::Result<()>,
) -> Result<(), ListError> {
    let why = Why::default();
    let mut de = serde_json::Deserializer::from_reader(r);
    let out = f(&why, sink, &mut de).and_then(|()| de.end());
    out.map_err(|e| match why.take() {
        Some(Failed::Shape(detail)) => ListError::Shape(detail),
        Some(Failed::Sink(detail)) => ListError::Sink(detail),
        None => ListError::Syntax(e.to_string()),
    })
}

enum Failed {
    Shape(String),
    Sink(String),
}

/// The exact message of a shape error (serde's own errors carry a position suffix).
type Why = RefCell<Option<Failed>>;

fn fail<E: de::Error, T>(why: &Why, detail: impl Into<String>) -> Result<T, E> {
    let detail = detail.into();
    *why.borrow_mut() = Some(Failed::Shape(detail.clone()));
    Err(E::custom(detail))
}

/// Everything but the expected kind of value is refused with one message.
macro_rules! only {
    ($($method:ident($t:ty)),*) => {$(
        fn $method<E: de::Error>(self, _: $t) -> Result<Self::Value, E> {
            fail(self.why, self.not_this())
        }
    )*
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            fail(self.why, self.not_this())
        }
    };
}

struct Request<'a, 's> {
    max: usize,
    why: &'a Why,
    sink: Sink<'s>,
}

impl Request<'_, '_> {
    fn not_this(&self) -> &'static str {
        "the request body must be a JSON object"
    }
}

impl<'de> DeserializeSeed<'de> for Request<'_, '_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Request<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    only!(
        visit_bool(bool),
        visit_i64(i64),
        visit_u64(u64),
        visit_f64(f64),
        visit_str(&str)
    );

    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
        fail(self.why, self.not_this())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut sink = Some(self.sink);
        while let Some(key) = map.next_key::<Box<str>>()? {
            if &*key != "resources" {
                return fail(self.why, format!("Unknown field(s): '{key}'"));
            }
            let Some(sink) = sink.take() else {
                return fail(self.why, "Resources appears more than once");
            };
            map.next_value_seed(ListSeed {
                max: self.max,
                why: self.why,
                sink,
                not_list: "Resources must be an array",
            })?;
        }
        match sink {
            None => Ok(()),
            Some(_) => fail(self.why, "Resources must be an array"),
        }
    }
}

struct ListSeed<'a, 's> {
    max: usize,
    why: &'a Why,
    sink: Sink<'s>,
    not_list: &'static str,
}

impl ListSeed<'_, '_> {
    fn not_this(&self) -> &'static str {
        self.not_list
    }
}

impl<'de> DeserializeSeed<'de> for ListSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ListSeed<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON array")
    }

    only!(
        visit_bool(bool),
        visit_i64(i64),
        visit_u64(u64),
        visit_f64(f64),
        visit_str(&str)
    );

    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
        fail(self.why, self.not_this())
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        let (mut seen, mut batch) = (0, Vec::with_capacity(BATCH));
        while let Some(node) = seq.next_element::<Node>()? {
            if seen == self.max {
                return fail(
                    self.why,
                    format!("Resources array can have at most {} resources", self.max),
                );
            }
            match descriptor(node) {
                Ok(d) => batch.push(d),
                Err(w) => return fail(self.why, format!("Resource {seen} {w}")),
            }
            seen += 1;
            if batch.len() == BATCH {
                self.flush(&mut batch)?;
            }
        }
        self.flush(&mut batch)
    }
}

impl ListSeed<'_, '_> {
    fn flush<E: de::Error>(&mut self, batch: &mut Vec<Descriptor>) -> Result<(), E> {
        if batch.is_empty() {
            return Ok(());
        }
        let full = std::mem::replace(batch, Vec::with_capacity(BATCH));
        (self.sink)(full).map_err(|e| {
            *self.why.borrow_mut() = Some(Failed::Sink(e.clone()));
            E::custom(e)
        })
    }
}

impl Serialize for Descriptor {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        let (size_key, path_key) = match self.v2 {
            true => ("size", "fn"),
            false => ("size_in_bytes", "path"),
        };
        if self.v2 {
            m.serialize_entry("sha1", &self.sha1_hex())?;
        } else {
            let value = self.sha1_hex();
            m.serialize_entry("checksum", &Checksum { value })?;
        }
        m.serialize_entry(size_key, &self.size)?;
        if let Some(p) = &self.path {
            m.serialize_entry(path_key, p)?;
        }
        if let Some(Mode { given, digits }) = self.mode {
            let width = digits as usize;
            m.serialize_entry("mode", &format!("{given:0width$o}"))?;
        }
        m.end()
    }
}

#[derive(Serialize)]
struct Checksum {
    value: String,
}

#[cfg(test)]
#[path = "resource_list_tests.rs"]
mod tests;
