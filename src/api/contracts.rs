//! `/v2/contracts`: the one built-in contract every workspace belongs to.

use super::{json_response, Ctx};
use crate::db::workspaces;
use crate::error::{Error, Result};
use rouille::Response;
use serde_json::{json, Value};

fn resource(id: &str, name: &str) -> Value {
    json!({"id": id, "type": "contract", "links": {"self": format!("/v2/contracts/{id}")}, "attributes": {"name": name}})
}

pub fn list(ctx: &Ctx) -> Result<Response> {
    let page = ctx.page()?;
    let (_, id, name) = ctx.app.store.read(workspaces::contract)?;
    let data = if page.offset() == 0 {
        vec![resource(&id, &name)]
    } else {
        vec![]
    };
    Ok(ctx.collection(data, page, 1))
}

pub fn get(ctx: &Ctx, id: &str) -> Result<Response> {
    let (_, cid, name) = ctx.app.store.read(workspaces::contract)?;
    if cid != id {
        return Err(Error::not_found(format!("Contract {id} not found")));
    }
    Ok(json_response(
        200,
        &json!({"data": resource(&cid, &name), "meta": {}}),
    ))
}
