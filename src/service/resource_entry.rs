//! One entry of a resource list, deserialized without a JSON tree: a [`Node`] keeps only the
//! keys a descriptor needs (others are skipped unread), then [`descriptor`] checks it.

use super::resource_list::{Descriptor, Mode};
use serde::de::{self, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use std::fmt;

/// A JSON value reduced to what a descriptor needs: objects keep only the known keys.
#[derive(Debug)]
pub(super) enum Node {
    Null,
    Str(Box<str>),
    UInt(u64),
    /// Booleans, negative or fractional numbers, arrays: never what a key wants.
    Other,
    Object(Box<Fields>),
}

#[derive(Debug, Default)]
pub(super) struct Fields {
    checksum: Option<Node>,
    sha1: Option<Node>,
    size_in_bytes: Option<Node>,
    size: Option<Node>,
    path: Option<Node>,
    fn_: Option<Node>,
    mode: Option<Node>,
    value: Option<Node>,
}

#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "snake_case")]
enum Key {
    Checksum,
    Sha1,
    SizeInBytes,
    Size,
    Path,
    #[serde(rename = "fn")]
    Fn,
    Mode,
    Value,
    #[serde(other)]
    Other,
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Node, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_bool<E>(self, _: bool) -> Result<Node, E> {
        Ok(Node::Other)
    }
    fn visit_i64<E>(self, v: i64) -> Result<Node, E> {
        Ok(u64::try_from(v).map_or(Node::Other, Node::UInt))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Node, E> {
        Ok(Node::UInt(v))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Node, E> {
        Ok(Node::Other)
    }
    fn visit_str<E>(self, v: &str) -> Result<Node, E> {
        Ok(Node::Str(v.into()))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Node::Other)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut f = Fields::default();
        while let Some(key) = map.next_key::<Key>()? {
            let slot = match key {
                Key::Checksum => &mut f.checksum,
                Key::Sha1 => &mut f.sha1,
                Key::SizeInBytes => &mut f.size_in_bytes,
                Key::Size => &mut f.size,
                Key::Path => &mut f.path,
                Key::Fn => &mut f.fn_,
                Key::Mode => &mut f.mode,
                Key::Value => &mut f.value,
                Key::Other => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            *slot = Some(map.next_value::<Node>()?);
        }
        Ok(Node::Object(Box::new(f)))
    }
}

/// One entry; the error completes "Resource N ...".
pub(super) fn descriptor(node: Node) -> Result<Descriptor, &'static str> {
    let Node::Object(o) = node else {
        return Err("is not an object");
    };
    let o = *o;
    let (sha1, v2) = match (o.checksum, o.sha1) {
        (Some(Node::Object(c)), _) => match c.value {
            Some(Node::Str(s)) => (s, false),
            _ => return Err("has a non-string checksum value"),
        },
        (Some(_), _) => return Err("has a non-object checksum"),
        (None, Some(Node::Str(s))) => (s, true),
        (None, Some(_)) => return Err("has a non-string sha1"),
        (None, None) => return Err("has no checksum"),
    };
    let mut digest = [0u8; 20];
    hex::decode_to_slice(&*sha1, &mut digest).map_err(|_| "has a non-SHA1 checksum value")?;
    let size = match o.size_in_bytes.or(o.size) {
        None => return Err("has no size_in_bytes"),
        Some(Node::UInt(n)) => n,
        Some(_) => return Err("has a non-integer or negative size_in_bytes"),
    };
    let path = match o.path.or(o.fn_) {
        None | Some(Node::Null) => None,
        Some(Node::Str(s)) => Some(s),
        Some(_) => return Err("has a non-string path"),
    };
    let mode = match o.mode {
        None | Some(Node::Null) => None,
        Some(Node::Str(s)) => Some(Mode::parse(&s).ok_or("has an incorrect mode")?),
        Some(_) => return Err("has a non-string mode"),
    };
    Ok(Descriptor {
        sha1: digest,
        size,
        path,
        mode,
        v2,
    })
}
