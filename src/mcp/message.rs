//! What the JSON-RPC messages of a body call: each one's `method`, the name it addresses
//! and its `id`, read in one pass that keeps nothing else (arguments, however large, are
//! skipped, not copied).
//!
//! It reads JSON as `serde_json::Value` would, so a handler that parses the body finds the
//! same calls: a member that comes twice counts by its last value, escapes in names and
//! values are decoded, a `method` or `name` that is not a string is no method or name.

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;
use std::fmt;

/// One JSON-RPC message of a body, as far as scopes are concerned.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Message {
    /// `method`; `None` for a response (a client answering a server's request).
    pub method: Option<String>,
    /// The name it addresses: `params.name` (tools, prompts) or `params.uri` (resources).
    pub name: Option<String>,
    /// `id`; `Null` for a notification.
    pub id: Value,
}

/// The messages of `bytes`, or `None` when they are not JSON. A single message is a list
/// of one; a batch lists every member that is an object; other JSON lists nothing.
pub(crate) fn parse(bytes: &[u8]) -> Option<Vec<Message>> {
    serde_json::from_slice::<Messages>(bytes).ok().map(|m| m.0)
}

/// A whole body.
struct Messages(Vec<Message>);

/// A member of a batch: a message when it is an object.
struct Member(Option<Message>);

/// A value that counts only when it is a string.
struct Text(Option<String>);

/// `params`, as far as names go.
#[derive(Default)]
struct Params {
    name: Option<String>,
    uri: Option<String>,
}

/// The members of a message that matter.
enum Key {
    Method,
    Params,
    Id,
    Name,
    Uri,
    Other,
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a member name")
            }
            fn visit_str<E: de::Error>(self, key: &str) -> Result<Key, E> {
                Ok(match key {
                    "method" => Key::Method,
                    "params" => Key::Params,
                    "id" => Key::Id,
                    "name" => Key::Name,
                    "uri" => Key::Uri,
                    _ => Key::Other,
                })
            }
        }
        d.deserialize_identifier(KeyVisitor)
    }
}

/// Reads and drops what is left of a sequence or a map.
fn drain_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<IgnoredAny>()?.is_some() {}
    Ok(())
}

fn drain_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<(), A::Error> {
    while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
    Ok(())
}

/// A visitor that takes anything: `T::default()` for what is not a string, map or
/// sequence (`Some` when `$scalar`), the sequence and map methods given.
macro_rules! scalars_are_nothing {
    ($out:ty, $nothing:expr) => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<$out, E> {
            Ok($nothing)
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<$out, E> {
            Ok($nothing)
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<$out, E> {
            Ok($nothing)
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<$out, E> {
            Ok($nothing)
        }
        fn visit_unit<E: de::Error>(self) -> Result<$out, E> {
            Ok($nothing)
        }
        fn visit_none<E: de::Error>(self) -> Result<$out, E> {
            Ok($nothing)
        }
    };
}

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl<'de> Visitor<'de> for TextVisitor {
            type Value = Text;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            scalars_are_nothing!(Text, Text(None));
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Text, E> {
                Ok(Text(Some(s.to_owned())))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Text, A::Error> {
                drain_seq(seq).map(|()| Text(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Text, A::Error> {
                drain_map(map).map(|()| Text(None))
            }
        }
        d.deserialize_any(TextVisitor)
    }
}

impl<'de> Deserialize<'de> for Params {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ParamsVisitor;
        impl<'de> Visitor<'de> for ParamsVisitor {
            type Value = Params;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            scalars_are_nothing!(Params, Params::default());
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Params, E> {
                Ok(Params::default())
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Params, A::Error> {
                drain_seq(seq).map(|()| Params::default())
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Params, A::Error> {
                let mut p = Params::default();
                while let Some(key) = map.next_key::<Key>()? {
                    match key {
                        Key::Name => p.name = map.next_value::<Text>()?.0,
                        Key::Uri => p.uri = map.next_value::<Text>()?.0,
                        _ => drop(map.next_value::<IgnoredAny>()?),
                    }
                }
                Ok(p)
            }
        }
        d.deserialize_any(ParamsVisitor)
    }
}

impl<'de> Deserialize<'de> for Member {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct MemberVisitor;
        impl<'de> Visitor<'de> for MemberVisitor {
            type Value = Member;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            scalars_are_nothing!(Member, Member(None));
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Member, E> {
                Ok(Member(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Member, A::Error> {
                drain_seq(seq).map(|()| Member(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Member, A::Error> {
                message(map).map(|m| Member(Some(m)))
            }
        }
        d.deserialize_any(MemberVisitor)
    }
}

impl<'de> Deserialize<'de> for Messages {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct MessagesVisitor;
        impl<'de> Visitor<'de> for MessagesVisitor {
            type Value = Messages;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON-RPC message or batch")
            }
            scalars_are_nothing!(Messages, Messages(Vec::new()));
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Messages, E> {
                Ok(Messages(Vec::new()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Messages, A::Error> {
                let mut out = Vec::new();
                while let Some(Member(m)) = seq.next_element::<Member>()? {
                    out.extend(m);
                }
                Ok(Messages(out))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Messages, A::Error> {
                message(map).map(|m| Messages(vec![m]))
            }
        }
        d.deserialize_any(MessagesVisitor)
    }
}

/// One message, from its members.
fn message<'de, A: MapAccess<'de>>(mut map: A) -> Result<Message, A::Error> {
    let (mut method, mut params, mut id) = (None, Params::default(), Value::Null);
    while let Some(key) = map.next_key::<Key>()? {
        match key {
            Key::Method => method = map.next_value::<Text>()?.0,
            Key::Params => params = map.next_value::<Params>()?,
            Key::Id => id = map.next_value::<Value>()?,
            _ => drop(map.next_value::<IgnoredAny>()?),
        }
    }
    let name = match method.as_deref() {
        Some(m) if m.starts_with("resources/") => params.uri,
        _ => params.name.or(params.uri),
    };
    Ok(Message { method, name, id })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `serde_json::Value` finds in `bytes`: the reference this module must agree with.
    fn by_value(bytes: &[u8]) -> Option<Vec<Message>> {
        let value: Value = serde_json::from_slice(bytes).ok()?;
        let one = |v: &Value| {
            let o = v.as_object()?;
            let method = o.get("method").and_then(Value::as_str).map(str::to_owned);
            let text = |k: &str| {
                let p = o.get("params")?.get(k)?;
                p.as_str().map(str::to_owned)
            };
            let name = match method.as_deref() {
                Some(m) if m.starts_with("resources/") => text("uri"),
                _ => text("name").or_else(|| text("uri")),
            };
            let id = o.get("id").cloned().unwrap_or(Value::Null);
            Some(Message { method, name, id })
        };
        Some(match &value {
            Value::Array(items) => items.iter().filter_map(one).collect(),
            single => one(single).into_iter().collect(),
        })
    }

    #[test]
    fn messages() {
        let one = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t"}}"#;
        let m = parse(one).unwrap();
        assert_eq!(m[0].method.as_deref(), Some("tools/call"));
        assert_eq!(m[0].name.as_deref(), Some("t"));
        assert_eq!(m[0].id, 1);
        let batch = br#"[{"method":"resources/read","params":{"uri":"a://b","name":"n"}},
                         {"method":"notifications/initialized"}, 7, {"id":3,"result":{}}]"#;
        let m = parse(batch).unwrap();
        assert_eq!(m.len(), 3);
        assert_eq!(m[0].name.as_deref(), Some("a://b"));
        assert_eq!(m[1].id, Value::Null);
        assert_eq!(m[2].method, None);
        assert!(parse(b"{").is_none());
        assert!(parse(b"\"text\"").unwrap().is_empty());
    }

    #[test]
    fn agrees_with_serde_json_value() {
        let cases: &[&[u8]] = &[
            br#"{"method":"tools/call","params":{"name":"a","name":"b"}}"#,
            br#"{"method":"tools/call","params":{"name":"a"},"params":{"uri":"u"}}"#,
            br#"{"method":"tools/call","method":"prompts/get","params":{"name":"p"}}"#,
            br#"{"method":"tools/call","params":{"name":"a","name":7}}"#,
            br#"{"\u006dethod":"tools/call","params":{"n\u0061me":"\u0061dmin"}}"#,
            br#"{"method":5,"params":[1,{"name":"x"}],"id":{"a":[1,2]}}"#,
            br#"{"method":"resources/read","params":{"name":"n","uri":{"x":1}}}"#,
            br#"{"method":"tools/call","params":"name","id":null}"#,
            br#"[[{"method":"tools/call","params":{"name":"nested"}}], null, true, "x", 1.5]"#,
            br#"{"method":"tools/call","params":{"name":"a"}} x"#,
            br#"{"method":"tools/call","params":{"name":"a"},}"#,
            b"{\"method\":\"tools/call\",\"params\":{\"name\":\"a\xff\"}}",
            b"[]",
            b"  {}  ",
            b"",
        ];
        for case in cases {
            assert_eq!(
                parse(case),
                by_value(case),
                "{}",
                String::from_utf8_lossy(case)
            );
        }
    }

    #[test]
    fn what_value_refuses_for_depth_is_read_here() {
        // serde_json stops `Value` at 128 levels; skipped members have no such limit (and
        // are skipped without recursion). Reading more than the handler can is the safe
        // side: a call found is a call whose scopes are needed.
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert_eq!(by_value(deep.as_bytes()), None);
        assert_eq!(parse(deep.as_bytes()), Some(Vec::new()));
        let inside = format!(
            r#"{{"method":"tools/call","params":{{"name":"a","arguments":{}{}}}}}"#,
            "[".repeat(200),
            "]".repeat(200)
        );
        let m = parse(inside.as_bytes()).unwrap();
        assert_eq!(m[0].name.as_deref(), Some("a"));
        // Bytes that are not UTF-8 in a skipped string: refused, or the call is found.
        let bad = b"{\"method\":\"tools/call\",\"params\":{\"name\":\"a\"},\"x\":\"\xff\"}";
        assert_eq!(by_value(bad), None);
        assert!(parse(bad).is_none_or(|m| m[0].name.as_deref() == Some("a")));
    }
}
