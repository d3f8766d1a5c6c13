//! `GET /v2/openapi.json`: the OpenAPI 3.1 document of the whole contract, kept in
//! `docs/openapi.json` and embedded in the binary.

use rouille::Response;

pub const DOCUMENT: &str = include_str!("../../docs/openapi.json");

pub fn response() -> Response {
    super::raw_json_response(200, DOCUMENT.to_string())
}
