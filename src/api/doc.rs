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
    let attributes = match data.remove("attributes") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m,
        Some(_) => {
            return Err(Error::invalid(
                "/data/attributes",
                "`data.attributes` must be an object",
            ))
        }
    };
    let relationships = match data.remove("relationships") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m,
        Some(_) => {
            return Err(Error::invalid(
                "/data/relationships",
                "`data.relationships` must be an object",
            ))
        }
    };
    Ok(WriteDoc {
        id,
        attributes,
        relationships,
    })
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
    let step = match (id, url_step) {
        (Some(id), _) => id,
        (None, Some(url)) => url.to_string(),
        (None, None) => {
            return Err(Error::invalid(
                "/data/id",
                "`data.id` is required: the id of the step the snapshot belongs to",
            ))
        }
    };
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
