//! The HTTP layer: routing, authentication order, body reading, paging, and the one place where
//! an `Error` becomes a response. Resource handlers live one per module beside this file; they
//! parse and authorize, run one store transaction, and build the document. They write no SQL.

pub mod admin;
pub mod audit;
pub mod console;
pub mod contracts;
pub mod doc;
pub mod flows;
pub mod openapi;
pub mod snapshots;
pub mod users;
pub mod versions;
pub mod workspaces;

use crate::access::Principal;
use crate::auth::Auth;
use crate::config::Config;
use crate::db::Store;
use crate::error::{Error, Kind, Result};
use crate::metrics::{method_label, Metrics};
use crate::util::percent_decode;
use rouille::{Request, Response};
use serde_json::{json, Value};
use std::io::Read;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Everything a request handler may use.
pub struct App {
    pub store: Arc<Store>,
    pub auth: Auth,
    pub config: Config,
    /// Set on SIGTERM: responses then ask clients to close their connections.
    pub stopping: AtomicBool,
    requests: AtomicU64,
    /// `None` with `metrics = false`.
    metrics: Option<Metrics>,
    /// The database right after the fixture was loaded (`serve --fixture`/`--demo`): what
    /// `POST /_flowsnap/reset` restores. None: the reset path does not exist.
    pub baseline: Option<Arc<crate::db::Baseline>>,
}

impl App {
    pub fn new(store: Arc<Store>, auth: Auth, config: Config) -> Result<App> {
        let metrics = if config.metrics {
            Some(Metrics::new()?)
        } else {
            None
        };
        Ok(App {
            store,
            auth,
            config,
            stopping: AtomicBool::new(false),
            // Request ids name audit events too: a random high half keeps them apart across
            // restarts, the low half counts this process's requests.
            requests: AtomicU64::new(u64::from(rand::random::<u32>()) << 32),
            metrics,
            baseline: None,
        })
    }

    /// Enables `POST /_flowsnap/reset`, which restores `baseline`.
    pub fn with_baseline(mut self, baseline: crate::db::Baseline) -> App {
        self.baseline = Some(Arc::new(baseline));
        self
    }
}

/// One request being handled: the app, the request, the caller, the query. The caller is a
/// confirmed `Principal`, except on the snapshot paths that confirm remembered credentials in
/// their own statement or transaction (`W = Identity`, see `auth::Auth::identify`).
pub struct Ctx<'a, W = Principal> {
    pub app: &'a App,
    pub req: &'a Request,
    pub who: W,
    query: Vec<(String, String)>,
}

/// The routes of the contract. Path segments are borrowed from the request URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route<'a> {
    Health,
    OpenApi,
    Metrics,
    UsersMe,
    Users,
    User(&'a str),
    UserApiKey(&'a str),
    Contracts,
    Contract(&'a str),
    Workspaces,
    Workspace(&'a str),
    Members(&'a str),
    Member(&'a str, &'a str),
    Flows,
    Flow(&'a str),
    FlowStart(&'a str),
    FlowStop(&'a str),
    Snapshots(&'a str),
    Snapshot(&'a str, &'a str),
    SnapshotVersions(&'a str, &'a str),
    SnapshotVersion(&'a str, &'a str, &'a str),
    SnapshotRestore(&'a str, &'a str, &'a str),
    WorkspaceAudit(&'a str),
    Audit,
    AuditEvent(&'a str),
    Task(&'a str, &'a str),
    Reset,
}

fn route(path: &str) -> Option<Route<'_>> {
    let trimmed = path.strip_suffix('/').unwrap_or(path);
    let segs: Vec<&str> = trimmed.split('/').skip(1).collect();
    use Route::*;
    Some(match segs.as_slice() {
        ["healthz"] => Health,
        ["metrics"] => Metrics,
        ["v2", "openapi.json"] => OpenApi,
        ["v2", "users", "me"] => UsersMe,
        ["v2", "users"] => Users,
        ["v2", "users", id] => User(id),
        ["v2", "users", id, "api-key"] => UserApiKey(id),
        ["v2", "contracts"] => Contracts,
        ["v2", "contracts", id] => Contract(id),
        ["v2", "workspaces"] => Workspaces,
        ["v2", "workspaces", id] => Workspace(id),
        ["v2", "workspaces", id, "members"] => Members(id),
        ["v2", "workspaces", id, "members", uid] => Member(id, uid),
        ["v2", "flows"] => Flows,
        ["v2", "flows", id] => Flow(id),
        ["v2", "flows", id, "start"] => FlowStart(id),
        ["v2", "flows", id, "stop"] => FlowStop(id),
        ["v2", "flows", id, "snapshots"] => Snapshots(id),
        ["v2", "flows", id, "snapshots", sid] => Snapshot(id, sid),
        ["v2", "flows", id, "snapshots", sid, "versions"] => SnapshotVersions(id, sid),
        ["v2", "flows", id, "snapshots", sid, "versions", v] => SnapshotVersion(id, sid, v),
        ["v2", "flows", id, "snapshots", sid, "versions", v, "restore"] => {
            SnapshotRestore(id, sid, v)
        }
        ["v2", "workspaces", id, "audit"] => WorkspaceAudit(id),
        ["v2", "audit"] => Audit,
        ["v2", "audit", id] => AuditEvent(id),
        ["v1", "tasks", id, "steps", sid] => Task(id, sid),
        ["_flowsnap", "reset"] => Reset,
        _ => return None,
    })
}

fn allowed(r: Route) -> &'static str {
    use Route::*;
    match r {
        Health | OpenApi | Metrics | UsersMe | Contracts | Contract(_) | Task(..) => "GET",
        SnapshotVersions(..) | SnapshotVersion(..) | WorkspaceAudit(_) | Audit | AuditEvent(_) => {
            "GET"
        }
        SnapshotRestore(..) => "POST",
        Users | Workspaces | Flows | Snapshots(_) | Members(_) => "GET, POST",
        User(_) => "GET, DELETE",
        UserApiKey(_) | FlowStart(_) | FlowStop(_) | Reset => "POST",
        Workspace(_) | Flow(_) | Member(..) | Snapshot(..) => "GET, PATCH, DELETE",
    }
}

/// The route's template: the label of its requests in the metrics (never a raw path).
fn template(r: Option<Route>) -> &'static str {
    use Route::*;
    let Some(r) = r else {
        return "unmatched";
    };
    match r {
        Health => "/healthz",
        OpenApi => "/v2/openapi.json",
        Metrics => "/metrics",
        UsersMe => "/v2/users/me",
        Users => "/v2/users",
        User(_) => "/v2/users/{id}",
        UserApiKey(_) => "/v2/users/{id}/api-key",
        Contracts => "/v2/contracts",
        Contract(_) => "/v2/contracts/{id}",
        Workspaces => "/v2/workspaces",
        Workspace(_) => "/v2/workspaces/{id}",
        Members(_) => "/v2/workspaces/{id}/members",
        Member(..) => "/v2/workspaces/{id}/members/{user_id}",
        Flows => "/v2/flows",
        Flow(_) => "/v2/flows/{id}",
        FlowStart(_) => "/v2/flows/{id}/start",
        FlowStop(_) => "/v2/flows/{id}/stop",
        Snapshots(_) => "/v2/flows/{id}/snapshots",
        Snapshot(..) => "/v2/flows/{id}/snapshots/{step_id}",
        SnapshotVersions(..) => "/v2/flows/{id}/snapshots/{step_id}/versions",
        SnapshotVersion(..) => "/v2/flows/{id}/snapshots/{step_id}/versions/{version_id}",
        SnapshotRestore(..) => "/v2/flows/{id}/snapshots/{step_id}/versions/{version_id}/restore",
        WorkspaceAudit(_) => "/v2/workspaces/{id}/audit",
        Audit => "/v2/audit",
        AuditEvent(_) => "/v2/audit/{id}",
        Task(..) => "/v1/tasks/{flow_id}/steps/{step_id}",
        Reset => "/_flowsnap/reset",
    }
}

/// Records the audit event of an accepted change made by `user_id`, in the change's transaction
/// (section 10).
pub(crate) fn audit_event(
    c: &rusqlite::Connection,
    user_id: &str,
    action: &str,
    workspace_id: Option<&str>,
    target: crate::db::audit::Target,
) -> Result<()> {
    crate::db::audit::record(
        c,
        &crate::db::audit::NewEvent {
            action,
            user_id: Some(user_id),
            workspace_id,
            target,
            version_id: None,
        },
    )?;
    Ok(())
}

/// The server's request handler: never panics, always answers JSON, logs one line per request.
pub fn handle(app: &App, req: &Request) -> Response {
    let n = app.requests.fetch_add(1, Ordering::Relaxed);
    let _marked = crate::reqlog::enter(Some(n));
    let rid = crate::reqlog::format(n);
    let started = Instant::now();
    let raw = req.raw_url();
    let path = raw.split('?').next().unwrap_or("");
    let route = route(path);
    let response = match catch_unwind(AssertUnwindSafe(|| dispatch(app, req, path, route))) {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            if e.kind == Kind::Internal {
                log::error!("{} {}: {}", req.method(), req.raw_url(), e.detail);
            }
            error_response(&e)
        }
        Err(_) => {
            log::error!("{} {}: the handler panicked", req.method(), req.raw_url());
            error_response(&Error::internal(format!(
                "An internal error happened; it has been logged with request id {rid}"
            )))
        }
    };
    log::info!(
        "{} {} -> {} in {}us",
        req.method(),
        req.raw_url(),
        response.status_code,
        started.elapsed().as_micros()
    );
    if let Some(m) = &app.metrics {
        let label = match route {
            None if console::owns(path) => console::template(path),
            r => template(r),
        };
        m.observe(
            label,
            method_label(req.method()),
            response.status_code,
            started.elapsed(),
        );
    }
    let mut response = response.with_additional_header("X-Request-Id", rid);
    if app.stopping.load(Ordering::Relaxed) {
        response = response.with_additional_header("Connection", "close");
    }
    response
}

fn dispatch(app: &App, req: &Request, path: &str, route: Option<Route>) -> Result<Response> {
    let method = req.method();
    match route {
        Some(Route::Health) if method == "GET" => {
            return Ok(json_response(200, &json!({"status": "ok"})))
        }
        Some(Route::Metrics) => {
            let Some(m) = &app.metrics else {
                return Err(Error::not_found(
                    "Metrics are off on this server (metrics = false in its configuration)",
                ));
            };
            if method != "GET" {
                return Err(method_not_allowed("GET"));
            }
            let (content_type, body) = m.render(
                &app.store.write_stats(),
                &app.auth.stats(),
                app.store.path(),
            )?;
            return Ok(Response::from_data(content_type, body));
        }
        Some(Route::OpenApi) if method == "GET" => return Ok(openapi::response()),
        Some(r @ (Route::Health | Route::OpenApi)) => return Err(method_not_allowed(allowed(r))),
        None if console::owns(path) => return Ok(console::serve(req, path)),
        _ => {}
    }
    let allow_password = matches!(route, Some(Route::UserApiKey(_))) && method == "POST";
    let header = req.header("Authorization");
    let identity = app.auth.identify(&app.store, header, allow_password)?;
    // The hot snapshot paths confirm remembered credentials in their own read or write.
    if let Some(Route::Snapshot(fid, sid)) = route {
        if matches!(method, "GET" | "PATCH" | "DELETE") {
            let ctx = Ctx {
                app,
                req,
                who: identity,
                query: Vec::new(),
            };
            return match method {
                "GET" => snapshots::get(&ctx, fid, sid),
                "PATCH" => snapshots::update(&ctx, fid, sid),
                _ => snapshots::delete(&ctx, fid, sid),
            };
        }
    }
    if let (Some(Route::SnapshotRestore(fid, sid, vid)), "POST") = (route, method) {
        let ctx = Ctx {
            app,
            req,
            who: identity,
            query: Vec::new(),
        };
        return snapshots::restore(&ctx, fid, sid, vid);
    }
    if let (Some(Route::Snapshots(fid)), "POST") = (route, method) {
        let ctx = Ctx {
            app,
            req,
            who: identity,
            query: Vec::new(),
        };
        return snapshots::create(&ctx, fid);
    }
    if allow_password {
        // The key rotation checks the caller's proof again inside its write transaction.
        let (who, proof) =
            app.auth
                .confirm_with_proof(&app.store, header, allow_password, identity)?;
        let Some(Route::UserApiKey(id)) = route else {
            return Err(Error::internal("allow_password outside the key rotation"));
        };
        let ctx = Ctx {
            app,
            req,
            who,
            query: Vec::new(),
        };
        return users::rotate_key(&ctx, id, proof);
    }
    let who = app
        .auth
        .confirm(&app.store, header, allow_password, identity)?;
    // The reset path exists only on a server started with a fixture.
    let route = route.filter(|r| *r != Route::Reset || app.baseline.is_some());
    let Some(route) = route else {
        return Err(Error::not_found(format!(
            "No resource at {path}; see GET /v2/openapi.json for the paths this server has"
        )));
    };
    let ctx = Ctx {
        app,
        req,
        who,
        query: parse_query(req.raw_query_string()),
    };
    use Route::*;
    match (route, method) {
        (UsersMe, "GET") => users::me(&ctx),
        (Users, "GET") => users::list(&ctx),
        (Users, "POST") => users::create(&ctx),
        (User(id), "GET") => users::get(&ctx, id),
        (User(id), "DELETE") => users::delete(&ctx, id),
        (Contracts, "GET") => contracts::list(&ctx),
        (Contract(id), "GET") => contracts::get(&ctx, id),
        (Workspaces, "GET") => workspaces::list(&ctx),
        (Workspaces, "POST") => workspaces::create(&ctx),
        (Workspace(id), "GET") => workspaces::get(&ctx, id),
        (Workspace(id), "PATCH") => workspaces::update(&ctx, id),
        (Workspace(id), "DELETE") => workspaces::delete(&ctx, id),
        (Members(id), "GET") => workspaces::members(&ctx, id),
        (Members(id), "POST") => workspaces::add_member(&ctx, id),
        (Member(id, uid), "GET") => workspaces::member(&ctx, id, uid),
        (Member(id, uid), "PATCH") => workspaces::update_member(&ctx, id, uid),
        (Member(id, uid), "DELETE") => workspaces::remove_member(&ctx, id, uid),
        (Flows, "GET") => flows::list(&ctx),
        (Flows, "POST") => flows::create(&ctx),
        (Flow(id), "GET") => flows::get(&ctx, id),
        (Flow(id), "PATCH") => flows::update(&ctx, id),
        (Flow(id), "DELETE") => flows::delete(&ctx, id),
        (FlowStart(id), "POST") => flows::start(&ctx, id),
        (FlowStop(id), "POST") => flows::stop(&ctx, id),
        (Snapshots(fid), "GET") => snapshots::list(&ctx, fid),
        (Task(fid, sid), "GET") => flows::task_step(&ctx, fid, sid),
        (SnapshotVersions(fid, sid), "GET") => versions::list(&ctx, fid, sid),
        (SnapshotVersion(fid, sid, v), "GET") => versions::get(&ctx, fid, sid, v),
        (WorkspaceAudit(id), "GET") => audit::workspace(&ctx, id),
        (Audit, "GET") => audit::list(&ctx),
        (AuditEvent(id), "GET") => audit::get(&ctx, id),
        (Reset, "POST") => admin::reset(&ctx),
        (r, _) => Err(method_not_allowed(allowed(r))),
    }
}

fn method_not_allowed(allow: &'static str) -> Error {
    Error {
        allow: Some(allow),
        ..Error::new(
            Kind::MethodNotAllowed,
            format!("This path supports only {allow}"),
        )
    }
}

fn parse_query(raw: &str) -> Vec<(String, String)> {
    raw.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (percent_decode(k), percent_decode(v)),
            None => (percent_decode(p), String::new()),
        })
        .collect()
}

/// A page request, validated: `page[number]` from 1, `page[size]` lowered to the maximum.
#[derive(Debug, Clone, Copy)]
pub struct Page {
    pub number: i64,
    pub size: i64,
}

impl Page {
    pub fn offset(&self) -> i64 {
        (self.number - 1).saturating_mul(self.size)
    }
    pub fn meta(&self, total: i64) -> Value {
        let pages = if total == 0 {
            0
        } else {
            (total + self.size - 1) / self.size
        };
        json!({"page": self.number, "per_page": self.size, "total": total, "total_pages": pages})
    }
}

impl<W> Ctx<'_, W> {
    /// The last value of a query parameter (percent-decoded).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn page(&self) -> Result<Page> {
        // A positive integer: digits only, not all zeros. One too large for 64 bits is still a
        // positive integer: a size is lowered to the maximum, a number lands past the end.
        let read = |name: &str, default: i64| -> Result<i64> {
            match self.param(name) {
                None => Ok(default),
                Some(v)
                    if !v.is_empty()
                        && v.bytes().all(|b| b.is_ascii_digit())
                        && v.bytes().any(|b| b != b'0') =>
                {
                    Ok(v.parse::<i64>().unwrap_or(i64::MAX))
                }
                Some(v) => Err(Error::bad_request(format!(
                    "Query parameter {name} must be a positive integer, not {v:?}"
                ))),
            }
        };
        let number = read("page[number]", 1)?;
        let size = read("page[size]", self.app.config.default_page_size as i64)?;
        let max = self.app.config.max_page_size as i64;
        // Keep offsets far from overflow: past the end is an empty page anyway.
        let number = number.min(i64::MAX / max / 2);
        Ok(Page {
            number,
            size: size.min(max),
        })
    }

    /// Paged collection document.
    pub fn collection(&self, data: Vec<Value>, page: Page, total: i64) -> Response {
        json_response(
            200,
            &json!({"data": data, "meta": page.meta(total), "links": {"self": self.req.raw_url()}}),
        )
    }

    /// Paged collection document from resources that are JSON text already.
    pub fn collection_raw(&self, data: Vec<String>, page: Page, total: i64) -> Response {
        let rest =
            json!({"meta": page.meta(total), "links": {"self": self.req.raw_url()}}).to_string();
        // `rest` is `{"meta":...,"links":...}`: splice the data array in front of its members.
        raw_json_response(
            200,
            format!(r#"{{"data":[{}],{}"#, data.join(","), &rest[1..]),
        )
    }

    /// Reads the JSON request body: size (413), content type (415), syntax (400).
    pub fn body(&self) -> Result<Value> {
        read_json(self.req, self.app.config.max_body_bytes)
    }

    /// Reads the request body's bytes: size (413), content type (415), emptiness (400).
    pub fn body_bytes(&self) -> Result<Vec<u8>> {
        read_body(self.req, self.app.config.max_body_bytes)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.req.header(name)
    }
}

/// True for `application/json` and `application/vnd.api+json`, with any parameters.
fn is_json_type(ct: &str) -> bool {
    let base = ct.split(';').next().unwrap_or("").trim();
    base.eq_ignore_ascii_case("application/json")
        || base.eq_ignore_ascii_case("application/vnd.api+json")
}

/// Reads at most `max + 1` bytes of the body and parses it; never buffers more than the limit.
pub fn read_json(req: &Request, max: usize) -> Result<Value> {
    let buf = read_body(req, max)?;
    serde_json::from_slice(&buf)
        .map_err(|e| Error::bad_request(format!("The request body is not valid JSON: {e}")))
}

/// Reads at most `max + 1` bytes of the body: size (413), content type (415), emptiness (400).
/// The bytes are not parsed.
pub fn read_body(req: &Request, max: usize) -> Result<Vec<u8>> {
    let too_large = |n: Option<u64>| {
        let size = n
            .map(|n| format!("{n} bytes"))
            .unwrap_or_else(|| "larger than the limit".into());
        Error::too_large(format!(
            "The request body is {size}; the limit (max_body_bytes) is {max} bytes"
        ))
    };
    if let Some(len) = req
        .header("Content-Length")
        .and_then(|v| v.trim().parse::<u64>().ok())
    {
        if len > max as u64 {
            return Err(too_large(Some(len)));
        }
    }
    let ct = req.header("Content-Type");
    let mut buf = Vec::new();
    if let Some(mut data) = req.data() {
        data.by_ref()
            .take(max as u64 + 1)
            .read_to_end(&mut buf)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
                    // Close the connection after the answer instead of draining the rest.
                    crate::sockets::stop_reading(*req.remote_addr());
                    Error::new(
                        Kind::RequestTimeout,
                        "The request body stopped arriving for longer than the server's idle \
                     timeout (idle_timeout_secs); nothing was changed. Send the whole body \
                     without pausing",
                    )
                }
                _ => Error::bad_request(format!("The request body could not be read: {e}")),
            })?;
    }
    if buf.len() > max {
        return Err(too_large(None));
    }
    match ct {
        Some(ct) if is_json_type(ct) => {}
        Some(ct) => {
            return Err(Error::new(
                Kind::UnsupportedMediaType,
                format!("Content-Type {ct:?} is not JSON; send the body as application/json"),
            ))
        }
        None if buf.is_empty() => {}
        None => {
            return Err(Error::new(
                Kind::UnsupportedMediaType,
                "The request has a body but no Content-Type; send it as application/json",
            ))
        }
    }
    if buf.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(Error::bad_request(
            "The request body is empty; this call needs a JSON document",
        ));
    }
    Ok(buf)
}

pub fn json_response(status: u16, body: &Value) -> Response {
    raw_json_response(status, body.to_string())
}

pub fn raw_json_response(status: u16, body: String) -> Response {
    Response::from_data("application/json", body).with_status_code(status)
}

/// `204 No Content`.
pub fn no_content() -> Response {
    Response::empty_204()
}

/// The one place an `Error` becomes an HTTP response: the JSON error document of spec section 2.
pub fn error_response(e: &Error) -> Response {
    let status = e.kind.status();
    let mut item = json!({"status": status, "code": status, "title": e.kind.title(), "detail": e.detail, "meta": {}});
    if let Some(p) = &e.pointer {
        item["source"] = json!({"pointer": p});
    }
    let mut r = json_response(status, &json!({"errors": [item]}));
    match e.kind {
        Kind::Unauthorized => {
            r = r.with_additional_header("WWW-Authenticate", "Basic realm=\"flowsnap\"")
        }
        Kind::MethodNotAllowed => r = r.with_additional_header("Allow", e.allow.unwrap_or("GET")),
        Kind::TooManyRequests | Kind::Unavailable => {
            r = r.with_additional_header("Retry-After", "1")
        }
        Kind::PayloadTooLarge | Kind::RequestTimeout if e.pointer.is_none() => {
            // The unread rest of a large body would otherwise be drained to keep the connection
            // (and after a timeout, where the next request starts is unknown).
            r = r.with_additional_header("Connection", "close")
        }
        _ => {}
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_accept_a_trailing_slash() {
        assert_eq!(
            route("/v2/flows/abc/snapshots/"),
            Some(Route::Snapshots("abc"))
        );
        assert_eq!(
            route("/v2/flows/abc/snapshots"),
            Some(Route::Snapshots("abc"))
        );
        assert_eq!(
            route("/v2/flows/a/snapshots/s1"),
            Some(Route::Snapshot("a", "s1"))
        );
        assert_eq!(route("/v2/nothing"), None);
        assert_eq!(route("/v2/flows//snapshots"), Some(Route::Snapshots("")));
    }

    #[test]
    fn json_content_types() {
        assert!(is_json_type("application/json; charset=utf-8"));
        assert!(is_json_type("application/vnd.api+json"));
        assert!(!is_json_type("text/plain"));
        assert!(!is_json_type("application/x-www-form-urlencoded"));
    }
}
