//! Reading JSON:API-style write documents: `{"data": {"type", "id"?, "attributes", "relationships"?}}`.
//! Pure functions from a parsed body to typed parts or a 400/409 naming the member.

use crate::error::{Error, Result};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

#[derive(Debug, Clone)]
pub struct WriteDoc {
    pub id: Option<String>,
    pub attributes: Map<String, Value>,
    pub relationships: Map<String, Value>,
}

/// Checks the document's shape: `data` an object, `data.type` the endpoint's type (else 409),
/// `data.id` a string and, when `url_id` is given, equal to it (else 409).
pub fn parse_write(body: Value, expected_type: &str, url_id: Option<&str>) -> Result<WriteDoc> {
    let Value::Object(mut top) = body else {
        return Err(Error::invalid(
            "",
            "The body must be a JSON object with a `data` member",
        ));
    };
    let Some(Value::Object(mut data)) = top.remove("data") else {
        return Err(Error::invalid(
            "/data",
            "`data` is required and must be an object",
        ));
    };
    let id = type_and_id(
        data.remove("type"),
        data.remove("id"),
        expected_type,
        url_id,
    )?;
    let attributes = optional_object(&mut data, "attributes")?;
    let relationships = optional_object(&mut data, "relationships")?;
    Ok(WriteDoc {
        id,
        attributes,
        relationships,
    })
}

/// The member `name` of `data`: absent or `null` is an empty object, anything but an object is 400.
fn optional_object(data: &mut Map<String, Value>, name: &str) -> Result<Map<String, Value>> {
    match data.remove(name) {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(m)) => Ok(m),
        Some(_) => Err(Error::invalid(
            &format!("/data/{name}"),
            format!("`data.{name}` must be an object"),
        )),
    }
}

/// `data.type` must be the endpoint's type (else 409); `data.id`, when sent, a string equal to the
/// URL's id when there is one (else 409).
fn type_and_id(
    ty: Option<Value>,
    id: Option<Value>,
    expected_type: &str,
    url_id: Option<&str>,
) -> Result<Option<String>> {
    match ty {
        Some(Value::String(t)) if t == expected_type => {}
        Some(Value::String(t)) => {
            return Err(Error::conflict(format!(
                "`data.type` is {t:?}, but this endpoint takes {expected_type:?}"
            ))
            .with_pointer("/data/type"))
        }
        Some(_) => return Err(Error::invalid("/data/type", "`data.type` must be a string")),
        None => {
            return Err(Error::invalid(
                "/data/type",
                format!("`data.type` is required: {expected_type:?}"),
            ))
        }
    }
    let id = match id {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        Some(_) => return Err(Error::invalid("/data/id", "`data.id` must be a string")),
    };
    if let (Some(id), Some(url)) = (&id, url_id) {
        if id != url {
            return Err(Error::conflict(format!(
                "`data.id` {id:?} does not match the id in the URL {url:?}"
            ))
            .with_pointer("/data/id"));
        }
    }
    Ok(id)
}

/// An object's members, each value its JSON text borrowed from the body (no copy, no recursion).
type RawMap<'a> = std::collections::HashMap<std::borrow::Cow<'a, str>, &'a RawValue>;

/// An object member by member, each value left as its JSON text (no recursion into it).
fn raw_object<'a>(raw: &'a RawValue, pointer: &str, detail: &str) -> Result<RawMap<'a>> {
    if !raw.get().starts_with('{') {
        return Err(Error::invalid(pointer, detail));
    }
    serde_json::from_str(raw.get()).map_err(|_| Error::invalid(pointer, detail))
}

/// A small member (type, id) as a value; a deep or odd one is simply not a string.
fn small_value(raw: Option<&RawValue>) -> Option<Value> {
    raw.map(|r| serde_json::from_str(r.get()).unwrap_or(Value::Bool(false)))
}

/// Reads a snapshot write document without parsing the snapshot into a tree: returns the step id
/// (`data.id`, else `url_step`) and the snapshot's compact JSON text exactly as written. The
/// checks and their answers are those of `parse_write`; a missing `attributes.snapshot` is 400.
pub fn parse_snapshot_write(
    bytes: &[u8],
    url_step: Option<&str>,
    max_depth: usize,
) -> Result<(String, String)> {
    match serde_json::from_slice::<FastTop>(bytes) {
        Ok(FastTop {
            data:
                FastData {
                    kind,
                    id,
                    attributes:
                        Some(FastAttributes {
                            snapshot: Some(value),
                        }),
                },
        }) => {
            let id = type_and_id(small_value(kind), small_value(id), "snapshot", url_step)?;
            let step = step_of(id, url_step)?;
            Ok((step, crate::rawjson::compact(value.get(), max_depth)?))
        }
        // Anything else (not JSON, another shape, a member twice, a missing snapshot) is read
        // again member by member, which gives each case its own answer.
        _ => parse_snapshot_write_by_member(bytes, url_step, max_depth),
    }
}

/// The well-formed snapshot write document, read in one pass over the body: the nested
/// `parse_snapshot_write_by_member` reads the snapshot's text four times (the body, `data`,
/// `attributes`, then the compaction), which was 30% of a PATCH's instructions. Each level is
/// read only from a JSON object (serde's derived structs would also take an array), `null` is
/// kept as a value, an absent member is `None`, and a member given twice is an error, which sends
/// the body to the member-by-member reading: both readings accept the same bodies.
struct FastTop<'a> {
    data: FastData<'a>,
}

struct FastData<'a> {
    kind: Option<&'a RawValue>,
    id: Option<&'a RawValue>,
    attributes: Option<FastAttributes<'a>>,
}

struct FastAttributes<'a> {
    snapshot: Option<&'a RawValue>,
}

/// Reads a JSON object member by member: `member(i, map)` reads the value of `wanted[i]`; other
/// members are skipped. A wanted member given twice is an error.
fn read_object<'de, A, F>(
    mut map: A,
    wanted: &[&str],
    mut member: F,
) -> std::result::Result<(), A::Error>
where
    A: serde::de::MapAccess<'de>,
    F: FnMut(usize, &mut A) -> std::result::Result<(), A::Error>,
{
    let mut seen = 0u32;
    while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
        match wanted.iter().position(|w| *w == key) {
            Some(i) if seen & (1 << i) != 0 => {
                return Err(serde::de::Error::custom("a member is given twice"))
            }
            Some(i) => {
                seen |= 1 << i;
                member(i, &mut map)?;
            }
            None => {
                map.next_value::<serde::de::IgnoredAny>()?;
            }
        }
    }
    Ok(())
}

/// A `Deserialize` that accepts only a JSON object, read by `$body` from the map `$map`.
macro_rules! object_only {
    ($ty:ident, $expecting:literal, |$map:ident| $body:block) => {
        impl<'de> serde::Deserialize<'de> for $ty<'de> {
            fn deserialize<D: serde::Deserializer<'de>>(
                d: D,
            ) -> std::result::Result<Self, D::Error> {
                struct V;
                impl<'de> serde::de::Visitor<'de> for V {
                    type Value = $ty<'de>;
                    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                        f.write_str($expecting)
                    }
                    fn visit_map<A: serde::de::MapAccess<'de>>(
                        self,
                        $map: A,
                    ) -> std::result::Result<Self::Value, A::Error> {
                        $body
                    }
                }
                d.deserialize_map(V)
            }
        }
    };
}

object_only!(FastTop, "a document object", |map| {
    let mut data = None;
    read_object(map, &["data"], |_, m| {
        data = Some(m.next_value::<FastData>()?);
        Ok(())
    })?;
    data.map(|data| FastTop { data })
        .ok_or_else(|| serde::de::Error::custom("no data"))
});

object_only!(FastData, "a data object", |map| {
    let (mut kind, mut id, mut attributes) = (None, None, None);
    read_object(map, &["type", "id", "attributes"], |i, m| {
        match i {
            0 => kind = Some(m.next_value::<&RawValue>()?),
            1 => id = Some(m.next_value::<&RawValue>()?),
            _ => attributes = m.next_value::<Option<FastAttributes>>()?,
        }
        Ok(())
    })?;
    Ok(FastData {
        kind,
        id,
        attributes,
    })
});

object_only!(FastAttributes, "an attributes object", |map| {
    let mut snapshot = None;
    read_object(map, &["snapshot"], |_, m| {
        snapshot = Some(m.next_value::<&RawValue>()?);
        Ok(())
    })?;
    Ok(FastAttributes { snapshot })
});

/// The step a snapshot write names: `data.id`, else the step in the URL.
fn step_of(id: Option<String>, url_step: Option<&str>) -> Result<String> {
    match (id, url_step) {
        (Some(id), _) => Ok(id),
        (None, Some(url)) => Ok(url.to_string()),
        (None, None) => Err(Error::invalid(
            "/data/id",
            "`data.id` is required: the id of the step the snapshot belongs to",
        )),
    }
}

/// `parse_snapshot_write`, member by member: each object of the document is read as a map of
/// raw members, so every malformed shape gets its own 400 or 409.
fn parse_snapshot_write_by_member(
    bytes: &[u8],
    url_step: Option<&str>,
    max_depth: usize,
) -> Result<(String, String)> {
    let not_json = |e: serde_json::Error| {
        Error::bad_request(format!("The request body is not valid JSON: {e}"))
    };
    // An object is read member by member in the same pass that checks it is JSON; anything
    // else is checked as JSON first, so that invalid JSON and a non-object get their own answers.
    let first = bytes.iter().find(|b| !b" \t\n\r".contains(b));
    let mut top: RawMap = if first == Some(&b'{') {
        serde_json::from_slice(bytes).map_err(not_json)?
    } else {
        let top: &RawValue = serde_json::from_slice(bytes).map_err(not_json)?;
        raw_object(
            top,
            "",
            "The body must be a JSON object with a `data` member",
        )?
    };
    let data = top
        .remove("data")
        .ok_or_else(|| Error::invalid("/data", "`data` is required and must be an object"))?;
    let mut data = raw_object(data, "/data", "`data` is required and must be an object")?;
    let id = type_and_id(
        small_value(data.remove("type")),
        small_value(data.remove("id")),
        "snapshot",
        url_step,
    )?;
    let step = step_of(id, url_step)?;
    let mut attributes = match data.remove("attributes") {
        Some(a) if a.get() != "null" => {
            raw_object(a, "/data/attributes", "`data.attributes` must be an object")?
        }
        _ => RawMap::new(),
    };
    let value = attributes.remove("snapshot").ok_or_else(|| {
        Error::invalid(
            "/data/attributes/snapshot",
            "`data.attributes.snapshot` is required; send null to store null",
        )
    })?;
    Ok((step, crate::rawjson::compact(value.get(), max_depth)?))
}

fn ptr(name: &str) -> String {
    format!("/data/attributes/{name}")
}

/// A required string attribute.
pub fn req_str(attrs: &Map<String, Value>, name: &str) -> Result<String> {
    match attrs.get(name) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(Error::invalid(
            &ptr(name),
            format!("`{name}` must be a string"),
        )),
        None => Err(Error::invalid(&ptr(name), format!("`{name}` is required"))),
    }
}

/// An optional string attribute (absent: None).
pub fn opt_str(attrs: &Map<String, Value>, name: &str) -> Result<Option<String>> {
    match attrs.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(Error::invalid(
            &ptr(name),
            format!("`{name}` must be a string"),
        )),
    }
}

/// An optional nullable string attribute (absent: None; null: Some(None)).
pub fn opt_nullable_str(attrs: &Map<String, Value>, name: &str) -> Result<Option<Option<String>>> {
    match attrs.get(name) {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(Value::String(s)) => Ok(Some(Some(s.clone()))),
        Some(_) => Err(Error::invalid(
            &ptr(name),
            format!("`{name}` must be a string or null"),
        )),
    }
}

/// The id in `relationships.NAME.data.id`, if sent.
pub fn relationship_id(rels: &Map<String, Value>, name: &str) -> Result<Option<String>> {
    let Some(rel) = rels.get(name) else {
        return Ok(None);
    };
    let at = format!("/data/relationships/{name}/data/id");
    match rel.get("data").and_then(|d| d.get("id")) {
        Some(Value::String(s)) => Ok(Some(s.clone())),
        _ => Err(Error::invalid(
            &at,
            format!("`relationships.{name}.data.id` must be a string id"),
        )),
    }
}

/// `roles`: exactly one known role.
pub fn roles(attrs: &Map<String, Value>) -> Result<crate::access::Role> {
    let at = ptr("roles");
    let Some(Value::Array(list)) = attrs.get("roles") else {
        return Err(Error::invalid(
            &at,
            "`roles` is required: an array with exactly one role",
        ));
    };
    if list.len() != 1 {
        return Err(Error::invalid(
            &at,
            format!("`roles` must hold exactly one role, not {}", list.len()),
        ));
    }
    match list[0].as_str().and_then(crate::access::Role::parse) {
        Some(r) => Ok(r),
        None => Err(Error::invalid(
            &at,
            format!(
                "unknown role {}; roles are owner, admin, integrator and guest",
                list[0]
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The one-pass reading and the member-by-member reading give the same answer for any body:
    /// the same value and step, or an error of the same status, pointer and detail.
    fn same_answer(body: &[u8], url: Option<&str>) {
        let a = parse_snapshot_write(body, url, 50);
        let b = parse_snapshot_write_by_member(body, url, 50);
        match (a, b) {
            (Ok(a), Ok(b)) => assert_eq!(a, b),
            (Err(a), Err(b)) => {
                assert_eq!(
                    (a.kind.status(), &a.pointer, &a.detail),
                    (b.kind.status(), &b.pointer, &b.detail)
                );
            }
            (a, b) => panic!(
                "{:?} vs {:?} for {:?}",
                a.is_ok(),
                b.is_ok(),
                String::from_utf8_lossy(body)
            ),
        }
    }

    #[test]
    fn one_pass_and_member_by_member_agree_on_known_shapes() {
        let bodies: &[&str] = &[
            r#"{"data":{"type":"snapshot","id":"s1","attributes":{"snapshot":{"a":[1,2]}}}}"#,
            r#"{"data":{"type":"snapshot","attributes":{"snapshot":null}}}"#,
            r#"{"data":{"type":null,"id":"s1","attributes":{"snapshot":1}}}"#,
            r#"{"data":{"id":null,"attributes":{"snapshot":1}}}"#,
            r#"{"data":{"type":"flow","attributes":{"snapshot":1}}}"#,
            r#"{"data":{"type":"snapshot","id":"s2","attributes":{"snapshot":1}}}"#,
            r#"{"data":{"type":"snapshot","id":7,"attributes":{"snapshot":1}}}"#,
            r#"{"data":{"type":"snapshot","attributes":{"snapshot":1},"attributes":{"snapshot":2}}}"#,
            r#"{"data":{"type":"snapshot","attributes":{"snapshot":1,"snapshot":2}}}"#,
            r#"{"data":{"type":"snapshot","attributes":null}}"#,
            r#"{"data":{"type":"snapshot","attributes":{}}}"#,
            r#"{"data":{"type":"snapshot","attributes":[1]}}"#,
            r#"{"data":{"type":"snapshot"}}"#,
            r#"{"data":null}"#,
            r#"{"data":[]}"#,
            r#"{"data":{"type":"snapshot","attributes":{"snapshot":"x"}}}"#,
            r#"{"data":{"type":"snapshot","attributes":{"snapshot":[[[[[[[[]]]]]]]],"x":1}},"y":2}"#,
            "{\"data\":{\"type\":\"snapshot\",\"attributes\":{\"snapshot\": [ 1 ,\n 2 ] }}}",
            r#"[]"#,
            r#"{"#,
            r#"{"data":{"type":"snapshot","attributes":{"snapshot":1}}} x"#,
            "",
        ];
        for body in bodies {
            for url in [None, Some("s1")] {
                same_answer(body.as_bytes(), url);
            }
        }
        let deep = format!(
            r#"{{"data":{{"type":"snapshot","attributes":{{"snapshot":{}{}}}}}}}"#,
            "[".repeat(60),
            "]".repeat(60)
        );
        same_answer(deep.as_bytes(), Some("s1"));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn one_pass_and_member_by_member_agree_on_any_bytes(
            bytes in prop::collection::vec(any::<u8>(), 0..200),
            shape in 0u8..4,
        ) {
            // Raw bytes, and bytes spliced into the documents' places.
            let tail = String::from_utf8_lossy(&bytes).to_string();
            let body = match shape {
                0 => bytes.clone(),
                1 => format!(r#"{{"data":{{"type":"snapshot","attributes":{{"snapshot":{tail}}}}}}}"#).into_bytes(),
                2 => format!(r#"{{"data":{{"type":{tail},"attributes":{{"snapshot":1}}}}}}"#).into_bytes(),
                _ => format!(r#"{{"data":{{"type":"snapshot",{tail}}}}}"#).into_bytes(),
            };
            same_answer(&body, Some("s1"));
            same_answer(&body, None);
        }
    }
    use serde_json::json;

    #[test]
    fn type_and_id_mismatches_are_conflicts() {
        let e = parse_write(json!({"data": {"type": "flow"}}), "snapshot", None).unwrap_err();
        assert_eq!(e.kind.status(), 409);
        let e = parse_write(
            json!({"data": {"type": "snapshot", "id": "a"}}),
            "snapshot",
            Some("b"),
        )
        .unwrap_err();
        assert_eq!(e.kind.status(), 409);
        let d = parse_write(
            json!({"data": {"type": "snapshot", "id": "b", "attributes": {"x": 1}}}),
            "snapshot",
            Some("b"),
        )
        .unwrap();
        assert_eq!(d.attributes["x"], 1);
    }

    #[test]
    fn shapes_are_400() {
        for body in [
            json!([]),
            json!({"data": 1}),
            json!({"data": {}}),
            json!({"data": {"type": 3}}),
        ] {
            assert_eq!(parse_write(body, "x", None).unwrap_err().kind.status(), 400);
        }
    }
}
