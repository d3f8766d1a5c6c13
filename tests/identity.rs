//! Spec sections 3 and 4 over HTTP against the real binary: users and API keys, the contract,
//! workspaces, members, the role table, and tenant isolation.
//!
//! Every refusal also checks that the database is exactly as it was before (`refuse`).

mod common;
use common::*;
use serde_json::{json, Value};

// ---------------------------------------------------------------------------------------------
// Helpers: document shapes and refusals
// ---------------------------------------------------------------------------------------------

fn is_hex24(s: &str) -> bool {
    s.len() == 24 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[track_caller]
fn assert_id(v: &Value, what: &str) -> String {
    let s = v
        .as_str()
        .unwrap_or_else(|| panic!("{what}: id must be a string, got {v}"));
    assert!(is_hex24(s), "{what}: id {s:?} is not 24 lowercase hex");
    s.to_string()
}

/// `2026-11-27T10:23:58.123Z`.
#[track_caller]
fn assert_iso_ms(v: &Value, what: &str) {
    let s = v
        .as_str()
        .unwrap_or_else(|| panic!("{what}: time must be a string, got {v}"));
    let shape = "dddd-dd-ddTdd:dd:dd.dddZ";
    let ok = s.len() == shape.len()
        && s.bytes().zip(shape.bytes()).all(|(c, p)| match p {
            b'd' => c.is_ascii_digit(),
            _ => c == p,
        });
    assert!(ok, "{what}: {s:?} is not an ISO time with milliseconds");
}

#[track_caller]
fn assert_keys(v: &Value, expected: &[&str], what: &str) {
    let obj = v
        .as_object()
        .unwrap_or_else(|| panic!("{what}: expected an object, got {v}"));
    let mut got: Vec<&str> = obj.keys().map(String::as_str).collect();
    got.sort_unstable();
    let mut want = expected.to_vec();
    want.sort_unstable();
    assert_eq!(got, want, "{what}: members of {v}");
}

/// The single-resource envelope: `{"data": {...}, "meta": {}}`; returns `data`.
#[track_caller]
fn single<'a>(v: &'a Value, what: &str) -> &'a Value {
    assert_keys(v, &["data", "meta"], what);
    assert_eq!(v["meta"], json!({}), "{what}: meta");
    &v["data"]
}

/// The paged collection envelope with exact meta; returns `data`.
#[track_caller]
fn collection(
    r: &Resp,
    path: &str,
    page: i64,
    per_page: i64,
    total: i64,
    pages: i64,
    what: &str,
) -> Vec<Value> {
    assert_eq!(r.status, 200, "{what}: status; body {}", r.text());
    assert_eq!(
        r.header("Content-Type"),
        Some("application/json"),
        "{what}: content type"
    );
    let v = r.json();
    assert_keys(&v, &["data", "meta", "links"], what);
    assert_eq!(
        v["meta"],
        json!({"page": page, "per_page": per_page, "total": total, "total_pages": pages}),
        "{what}: meta"
    );
    assert_eq!(v["links"], json!({"self": path}), "{what}: links");
    v["data"]
        .as_array()
        .unwrap_or_else(|| panic!("{what}: data must be an array: {v}"))
        .clone()
}

fn ids(list: &[Value]) -> Vec<String> {
    list.iter()
        .map(|d| d["id"].as_str().unwrap_or("").to_string())
        .collect()
}

/// A user resource, shape and values.
#[track_caller]
fn check_user(d: &Value, id: &str, email: &str, what: &str) {
    assert_keys(d, &["id", "type", "links", "attributes"], what);
    assert_eq!(d["type"], "user", "{what}: type");
    assert_eq!(assert_id(&d["id"], what), id, "{what}: id");
    assert_eq!(
        d["links"],
        json!({"self": format!("/v2/users/{id}")}),
        "{what}: links"
    );
    let a = &d["attributes"];
    assert_keys(
        a,
        &[
            "first_name",
            "last_name",
            "email",
            "registered",
            "last_login",
        ],
        &format!("{what}: attributes (never a password or key)"),
    );
    assert_eq!(a["email"], email, "{what}: email");
    assert!(a["first_name"].is_string(), "{what}: first_name");
    assert!(a["last_name"].is_string(), "{what}: last_name");
    assert_iso_ms(&a["registered"], &format!("{what}: registered"));
    if !a["last_login"].is_null() {
        assert_iso_ms(&a["last_login"], &format!("{what}: last_login"));
    }
}

/// A workspace resource, shape and values; members in the order given.
#[track_caller]
fn check_workspace(d: &Value, id: &str, name: &str, contract: &str, members: &[&str], what: &str) {
    assert_keys(
        d,
        &["id", "type", "links", "attributes", "relationships"],
        what,
    );
    assert_eq!(d["type"], "workspace", "{what}: type");
    assert_eq!(assert_id(&d["id"], what), id, "{what}: id");
    assert_eq!(
        d["links"],
        json!({"self": format!("/v2/workspaces/{id}")}),
        "{what}: links"
    );
    let a = &d["attributes"];
    assert_keys(a, &["name", "created_at", "updated_at"], what);
    assert_eq!(a["name"], name, "{what}: name");
    assert_iso_ms(&a["created_at"], &format!("{what}: created_at"));
    assert_iso_ms(&a["updated_at"], &format!("{what}: updated_at"));
    let rel = &d["relationships"];
    assert_keys(
        rel,
        &["contract", "members"],
        &format!("{what}: relationships"),
    );
    assert_eq!(
        rel["contract"]["data"],
        json!({"id": contract, "type": "contract"}),
        "{what}: relationships.contract"
    );
    let want: Vec<Value> = members
        .iter()
        .map(|m| json!({"id": m, "type": "member"}))
        .collect();
    assert_eq!(
        rel["members"]["data"],
        Value::Array(want),
        "{what}: relationships.members.data"
    );
}

/// A member resource, shape and values.
#[track_caller]
fn check_member(d: &Value, ws: &str, u: &User, role: &str, what: &str) {
    assert_keys(d, &["id", "type", "links", "attributes"], what);
    assert_eq!(d["type"], "member", "{what}: type");
    assert_eq!(d["id"], u.id.as_str(), "{what}: id is the user id");
    assert_eq!(
        d["links"],
        json!({"self": format!("/v2/workspaces/{ws}/members/{}", u.id)}),
        "{what}: links"
    );
    let a = &d["attributes"];
    assert_keys(a, &["first_name", "last_name", "email", "roles"], what);
    assert_eq!(a["email"], u.email.as_str(), "{what}: email");
    assert_eq!(a["first_name"], "Test", "{what}: first_name");
    assert_eq!(a["last_name"], "User", "{what}: last_name");
    assert_eq!(a["roles"], json!([role]), "{what}: roles");
}

/// Checks the status, the error document of section 2, and (when `what` says so) nothing else.
#[track_caller]
fn check_error(r: &Resp, status: u16, what: &str) {
    assert_eq!(
        r.status,
        status,
        "{what}: expected {status}, got {}; body {}",
        r.status,
        r.text()
    );
    assert_eq!(
        r.header("Content-Type"),
        Some("application/json"),
        "{what}: error content type; body {}",
        r.text()
    );
    let v: Value = serde_json::from_slice(&r.body)
        .unwrap_or_else(|e| panic!("{what}: error body is not JSON ({e}): {}", r.text()));
    assert_keys(&v, &["errors"], what);
    let e = &v["errors"][0];
    assert_eq!(e["status"], status, "{what}: errors[0].status in {v}");
    assert_eq!(e["code"], status, "{what}: errors[0].code in {v}");
    assert!(
        e["title"].as_str().is_some_and(|t| !t.is_empty()),
        "{what}: errors[0].title in {v}"
    );
    assert!(
        e["detail"].as_str().is_some_and(|t| t.len() > 10),
        "{what}: errors[0].detail must say what to do: {v}"
    );
}

/// Runs a request that must be refused with `status` and must change nothing in the database.
#[track_caller]
fn refuse(s: &Server, what: &str, status: u16, f: impl FnOnce() -> Resp) -> Value {
    let before = s.state();
    let r = f();
    check_error(&r, status, what);
    assert!(
        before == s.state(),
        "{what}: the refused request changed the database"
    );
    r.json()
}

#[track_caller]
fn ok(r: Resp, status: u16, what: &str) -> Value {
    assert_eq!(
        r.status,
        status,
        "{what}: expected {status}, got {}; body {}",
        r.status,
        r.text()
    );
    if status == 204 {
        assert!(r.body.is_empty(), "{what}: 204 has no body: {}", r.text());
        return Value::Null;
    }
    assert_eq!(
        r.header("Content-Type"),
        Some("application/json"),
        "{what}: content type"
    );
    r.json()
}

/// POST with no body and no content type (like the rotation call of a real client).
fn post_empty(s: &Server, path: &str, auth: &str) -> Resp {
    s.request("POST", path, Some(auth), &[], None)
}

fn user_doc(first: &str, last: &str, email: &str, password: &str) -> Value {
    json!({"data": {"type": "user", "attributes": {
        "first_name": first, "last_name": last, "email": email, "password": password}}})
}

fn member_doc(user_id: &str, roles: Value) -> Value {
    json!({"data": {"type": "member", "id": user_id, "attributes": {"roles": roles}}})
}

fn ws_rename(id: &str, name: &str) -> Value {
    json!({"data": {"type": "workspace", "id": id, "attributes": {"name": name}}})
}

fn contract_id(s: &Server) -> String {
    let r = s.get("/v2/contracts", &s.admin);
    let list = collection(&r, "/v2/contracts", 1, 50, 1, 1, "contract list");
    list[0]["id"].as_str().unwrap_or("").to_string()
}

// ---------------------------------------------------------------------------------------------
// Section 3: users
// ---------------------------------------------------------------------------------------------

#[test]
fn users_me_get_and_authentication() {
    let s = Server::start();
    let alice = s.user("alice@example.com");
    let bob = s.user("bob@example.com");

    // GET /v2/users/me for a user and for the tenant-admin.
    let v = ok(s.get("/v2/users/me", &alice), 200, "alice GET /v2/users/me");
    let d = single(&v, "alice me");
    check_user(d, &alice.id, "alice@example.com", "alice me");
    assert_eq!(d["attributes"]["first_name"], "Test", "alice first_name");
    assert_eq!(d["attributes"]["last_name"], "User", "alice last_name");
    assert_iso_ms(
        &d["attributes"]["last_login"],
        "last_login after an authenticated request",
    );
    let v = ok(s.get("/v2/users/me/", &s.admin), 200, "admin GET me/");
    check_user(
        single(&v, "admin me"),
        &s.admin.id,
        "admin@example.com",
        "admin me",
    );

    // The e-mail is case-insensitive.
    let shouty = User {
        email: "ALICE@Example.COM".into(),
        ..alice.clone()
    };
    let v = ok(s.get("/v2/users/me", &shouty), 200, "upper-case e-mail");
    assert_eq!(v["data"]["id"], alice.id.as_str(), "upper-case e-mail user");

    // GET /v2/users/{id}: self, tenant-admin; not another user; unknown is 404.
    let v = ok(
        s.get(&format!("/v2/users/{}", alice.id), &alice),
        200,
        "alice reads herself",
    );
    check_user(
        single(&v, "alice self"),
        &alice.id,
        "alice@example.com",
        "alice self",
    );
    let v = ok(
        s.get(&format!("/v2/users/{}/", bob.id), &s.admin),
        200,
        "admin reads bob",
    );
    check_user(
        single(&v, "admin reads bob"),
        &bob.id,
        "bob@example.com",
        "admin reads bob",
    );
    let r = s.get(&format!("/v2/users/{}", bob.id), &alice);
    check_error(&r, 403, "alice reads bob");
    assert!(
        !r.text().contains("bob@example.com"),
        "a 403 must not show bob's e-mail: {}",
        r.text()
    );
    refuse(&s, "alice reads the admin", 403, || {
        s.get(&format!("/v2/users/{}", s.admin.id), &alice)
    });
    let unknown = "0123456789abcdef01234567";
    refuse(&s, "admin reads unknown user", 404, || {
        s.get(&format!("/v2/users/{unknown}"), &s.admin)
    });
    refuse(&s, "alice reads unknown user", 404, || {
        s.get(&format!("/v2/users/{unknown}"), &alice)
    });
    refuse(&s, "malformed user id", 404, || {
        s.get("/v2/users/not-an-id", &s.admin)
    });

    // 401: one identical body, with WWW-Authenticate, whatever the reason; before 404.
    let wrong_key = User {
        key: "0".repeat(40),
        ..alice.clone()
    };
    let unknown_user = User {
        email: "nobody@example.com".into(),
        ..alice.clone()
    };
    let cases: Vec<(&str, Resp)> = vec![
        (
            "no header",
            s.request("GET", "/v2/users/me", None, &[], None),
        ),
        (
            "not Basic",
            s.request(
                "GET",
                "/v2/users/me",
                Some(&format!("Bearer {}", alice.key)),
                &[],
                None,
            ),
        ),
        ("wrong key", s.get("/v2/users/me", &wrong_key)),
        ("unknown e-mail", s.get("/v2/users/me", &unknown_user)),
        ("unknown path", s.get("/v2/nothing/here", &wrong_key)),
        (
            "unknown user id",
            s.get(&format!("/v2/users/{unknown}"), &wrong_key),
        ),
    ];
    let first = cases[0].1.text();
    for (what, r) in &cases {
        check_error(r, 401, what);
        assert_eq!(
            r.header("WWW-Authenticate"),
            Some("Basic realm=\"flowsnap\""),
            "{what}: WWW-Authenticate"
        );
        assert_eq!(r.text(), first, "{what}: every 401 has the same body");
    }
}

#[test]
fn users_list_is_admin_only_and_paged() {
    let s = Server::start();
    let u1 = s.user("u1@example.com");
    let mut created = vec![s.admin.id.clone(), u1.id.clone()];
    for i in 2..=5 {
        let r = s.post(
            "/v2/users",
            &s.admin,
            &user_doc(
                "N",
                &format!("{i}"),
                &format!("u{i}@example.com"),
                "pass-w0rd",
            ),
        );
        created.push(
            ok(r, 201, "create user")["data"]["id"]
                .as_str()
                .unwrap_or("")
                .to_string(),
        );
    }
    // 6 users: the admin, u1 (command line) and u2..u5 (HTTP), in creation order.

    let r = s.get("/v2/users", &u1);
    check_error(&r, 403, "non-admin lists users");

    let r = s.get("/v2/users", &s.admin);
    let all = collection(&r, "/v2/users", 1, 50, 6, 1, "default page");
    assert_eq!(ids(&all), created, "users in creation order");
    check_user(&all[0], &s.admin.id, "admin@example.com", "list item 0");
    check_user(&all[1], &u1.id, "u1@example.com", "list item 1");
    let trailing = s.get("/v2/users/", &s.admin);
    collection(&trailing, "/v2/users/", 1, 50, 6, 1, "trailing slash");

    // Exact totals with page[size]=1, then every page one by one.
    let p = "/v2/users?page[size]=1";
    let r = s.get(p, &s.admin);
    collection(&r, p, 1, 1, 6, 6, "page[size]=1");
    let mut walked = Vec::new();
    for n in 1..=3 {
        let p = format!("/v2/users?page[size]=2&page[number]={n}");
        let r = s.get(&p, &s.admin);
        let page = collection(&r, &p, n, 2, 6, 3, &format!("page {n} of 3"));
        assert_eq!(page.len(), 2, "page {n} holds 2");
        walked.extend(ids(&page));
    }
    assert_eq!(walked, created, "paging walks every user once, in order");

    // A page[size] above 100 is lowered to 100.
    let p = "/v2/users?page[size]=500";
    collection(&s.get(p, &s.admin), p, 1, 100, 6, 1, "page[size]=500");
    let p = "/v2/users?page[size]=100";
    collection(&s.get(p, &s.admin), p, 1, 100, 6, 1, "page[size]=100");
    // A page past the end is 200 with [].
    let p = "/v2/users?page[size]=4&page[number]=3";
    let d = collection(&s.get(p, &s.admin), p, 3, 4, 6, 2, "page past end");
    assert!(d.is_empty(), "page past the end has no data: {d:?}");
    let p = "/v2/users?page[number]=1000000";
    let d = collection(&s.get(p, &s.admin), p, 1000000, 50, 6, 1, "far page");
    assert!(d.is_empty(), "far page has no data");
    // Percent-encoded brackets work; unknown parameters are ignored.
    let p = "/v2/users?page%5Bsize%5D=5&page%5Bnumber%5D=2&foo=bar";
    let d = collection(&s.get(p, &s.admin), p, 2, 5, 6, 2, "percent-encoded");
    assert_eq!(ids(&d), created[5..].to_vec(), "percent-encoded page 2");
    // Values that are not positive integers are 400.
    for bad in ["0", "-1", "abc", "1.5", "", "1e2", "%20"] {
        for name in ["page[size]", "page[number]"] {
            let p = format!("/v2/users?{name}={bad}");
            refuse(&s, &format!("GET {p}"), 400, || s.get(&p, &s.admin));
        }
    }
    // A non-admin is refused before the query is looked at.
    refuse(&s, "non-admin with a bad page", 403, || {
        s.get("/v2/users?page[size]=abc", &u1)
    });
}

#[test]
fn create_user_rules() {
    let s = Server::start();
    let alice = s.user("alice@example.com");

    // Only a tenant-admin, and that before the body is looked at.
    refuse(&s, "non-admin POST /v2/users", 403, || {
        s.post(
            "/v2/users",
            &alice,
            &user_doc("A", "B", "new@example.com", "abcd123!"),
        )
    });
    refuse(&s, "non-admin POST /v2/users with a bad body", 403, || {
        s.post("/v2/users", &alice, &json!({"nope": 1}))
    });

    // Required attributes.
    for missing in ["first_name", "last_name", "email", "password"] {
        let mut doc = user_doc("A", "B", "new@example.com", "abcd123!");
        if let Some(a) = doc["data"]["attributes"].as_object_mut() {
            a.remove(missing);
        }
        let v = refuse(&s, &format!("missing {missing}"), 400, || {
            s.post("/v2/users", &s.admin, &doc)
        });
        assert!(
            v.to_string().contains(missing),
            "the error names {missing}: {v}"
        );
        let mut doc = user_doc("A", "B", "new@example.com", "abcd123!");
        doc["data"]["attributes"][missing] = json!(12);
        refuse(&s, &format!("{missing} not a string"), 400, || {
            s.post("/v2/users", &s.admin, &doc)
        });
    }
    // Neither an address without `@`, nor one with a colon: HTTP Basic splits `email:key` at the
    // first colon, so that user could never sign in.
    for bad in ["no-at-sign", "a:b@example.com"] {
        refuse(&s, &format!("e-mail {bad:?}"), 400, || {
            s.post("/v2/users", &s.admin, &user_doc("A", "B", bad, "abcd123!"))
        });
    }

    // Password: at least 8 characters with a letter, a digit and another symbol, and at most
    // 1024 bytes (the longest secret a request is read with).
    let too_long = format!("a1!{}", "x".repeat(1022));
    for bad in [
        too_long.as_str(),
        "abc12!",    // too short
        "ab1!ab1",   // 7 characters
        "abcdefgh1", // no symbol
        "abcdefgh!", // no digit
        "12345678!", // no letter
        "        ",  // nothing but spaces
        "",          // empty
    ] {
        let v = refuse(&s, &format!("password {bad:?}"), 400, || {
            s.post(
                "/v2/users",
                &s.admin,
                &user_doc("A", "B", "new@example.com", bad),
            )
        });
        assert!(
            v.to_string().contains("password"),
            "password {bad:?}: the error names the password: {v}"
        );
    }

    // Wrong data.type is 409, malformed documents 400, not JSON 415.
    refuse(&s, "data.type workspace", 409, || {
        s.post(
            "/v2/users",
            &s.admin,
            &json!({"data": {"type": "workspace", "attributes": {"first_name": "A", "last_name": "B", "email": "new@example.com", "password": "abcd123!"}}}),
        )
    });
    refuse(&s, "no data", 400, || {
        s.post("/v2/users", &s.admin, &json!({"type": "user"}))
    });
    refuse(&s, "malformed JSON", 400, || {
        s.request(
            "POST",
            "/v2/users",
            Some(&s.admin.auth()),
            &[("Content-Type", "application/json")],
            Some(b"{\"data\": "),
        )
    });
    refuse(&s, "text/plain body", 415, || {
        s.request(
            "POST",
            "/v2/users",
            Some(&s.admin.auth()),
            &[("Content-Type", "text/plain")],
            Some(
                user_doc("A", "B", "new@example.com", "abcd123!")
                    .to_string()
                    .as_bytes(),
            ),
        )
    });

    // A valid user: 201 with the user document; server-set attributes sent along are ignored.
    let mut doc = user_doc("Carol", "Jones", "Carol@Example.com", "abcd123!");
    doc["data"]["attributes"]["registered"] = json!("1999-01-01T00:00:00.000Z");
    doc["data"]["attributes"]["last_login"] = json!("1999-01-01T00:00:00.000Z");
    let v = ok(
        s.request(
            "POST",
            "/v2/users",
            Some(&s.admin.auth()),
            &[("Content-Type", "application/vnd.api+json; charset=utf-8")],
            Some(doc.to_string().as_bytes()),
        ),
        201,
        "create carol",
    );
    let d = single(&v, "create carol");
    let carol_id = assert_id(&d["id"], "carol id");
    check_user(d, &carol_id, "Carol@Example.com", "create carol");
    assert_eq!(d["attributes"]["first_name"], "Carol");
    assert_eq!(d["attributes"]["last_name"], "Jones");
    assert_eq!(
        d["attributes"]["last_login"],
        Value::Null,
        "never logged in"
    );
    assert_ne!(
        d["attributes"]["registered"], "1999-01-01T00:00:00.000Z",
        "registered is set by the server"
    );
    assert!(
        !v.to_string().contains("abcd123!"),
        "the password is never returned: {v}"
    );
    let v = ok(
        s.get(&format!("/v2/users/{carol_id}"), &s.admin),
        200,
        "read carol",
    );
    check_user(
        single(&v, "read carol"),
        &carol_id,
        "Carol@Example.com",
        "read carol",
    );

    // Exactly 8 characters is enough; non-ASCII letters count as letters.
    let v = ok(
        s.post(
            "/v2/users",
            &s.admin,
            &user_doc("Dé", "Ñ", "dave@example.com", "ab1!ab1!"),
        ),
        201,
        "8-character password",
    );
    assert_eq!(v["data"]["attributes"]["first_name"], "Dé");

    // Duplicate e-mail, in any letter case, is 409.
    for dup in [
        "carol@example.com",
        "CAROL@EXAMPLE.COM",
        "alice@EXAMPLE.com",
    ] {
        refuse(&s, &format!("duplicate e-mail {dup}"), 409, || {
            s.post("/v2/users", &s.admin, &user_doc("X", "Y", dup, "abcd123!"))
        });
    }

    // The new user logs in with its password only to get a key.
    let carol_pw = User {
        id: carol_id.clone(),
        email: "carol@example.com".into(),
        key: "abcd123!".into(),
    };
    let r = s.get("/v2/users/me", &carol_pw);
    check_error(&r, 401, "a password is not an API key");
    let v = ok(
        post_empty(
            &s,
            &format!("/v2/users/{carol_id}/api-key"),
            &carol_pw.auth(),
        ),
        201,
        "carol gets a key with her password",
    );
    let key = v["data"]["attributes"]["api_key"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let carol = User { key, ..carol_pw };
    let v = ok(s.get("/v2/users/me", &carol), 200, "carol with her key");
    assert_eq!(v["data"]["id"], carol_id.as_str());
}

#[test]
fn api_key_rotation() {
    let s = Server::start();
    let alice = s.user("alice@example.com");
    let bob = s.user("bob@example.com");
    let path = |u: &User| format!("/v2/users/{}/api-key", u.id);

    // Self-rotation with the key: exact document, old key dead on the very next request.
    ok(s.get("/v2/users/me", &alice), 200, "alice warms the cache");
    let before = s.state();
    let v = ok(
        post_empty(&s, &path(&alice), &alice.auth()),
        201,
        "alice rotates",
    );
    assert_ne!(before, s.state(), "rotation stores a new key hash");
    assert_keys(&v, &["data", "meta"], "api-key document");
    assert_eq!(v["meta"], json!({}), "api-key meta");
    assert_keys(&v["data"], &["type", "id", "attributes"], "api-key data");
    assert_eq!(v["data"]["type"], "api-key");
    assert_eq!(v["data"]["id"], alice.id.as_str());
    assert_keys(&v["data"]["attributes"], &["api_key"], "api-key attributes");
    let new_key = v["data"]["attributes"]["api_key"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(new_key.len() >= 32, "a long random key: {new_key:?}");
    assert_ne!(new_key, alice.key);
    refuse(&s, "alice's old key", 401, || s.get("/v2/users/me", &alice));
    let alice = User {
        key: new_key.clone(),
        ..alice
    };
    ok(s.get("/v2/users/me", &alice), 200, "alice's new key");
    assert!(
        !s.state().contains(&new_key),
        "the key is stored only as a hash"
    );

    // Another user may not rotate it; an unknown user is 404 (before 403).
    refuse(&s, "bob rotates alice's key", 403, || {
        post_empty(&s, &path(&alice), &bob.auth())
    });
    refuse(&s, "bob rotates an unknown user's key", 404, || {
        post_empty(
            &s,
            "/v2/users/0123456789abcdef01234567/api-key",
            &bob.auth(),
        )
    });
    refuse(&s, "GET on api-key", 405, || {
        s.request("GET", &path(&alice), Some(&alice.auth()), &[], None)
    });

    // The tenant-admin may; alice's cached key dies at once.
    ok(s.get("/v2/users/me", &alice), 200, "alice warm again");
    let v = ok(
        post_empty(&s, &path(&alice), &s.admin.auth()),
        201,
        "admin rotates alice",
    );
    refuse(&s, "alice's key after admin rotation", 401, || {
        s.get("/v2/users/me", &alice)
    });
    let alice = User {
        key: v["data"]["attributes"]["api_key"]
            .as_str()
            .unwrap_or("")
            .to_string(),
        ..alice
    };
    ok(
        s.get("/v2/users/me", &alice),
        200,
        "alice's admin-issued key",
    );

    // A rotation by the command line (another process) also ends the cached key at once.
    let out = s.cli(
        &["user", "rotate-key", "--email", "alice@example.com"],
        None,
    );
    assert!(out.status.success(), "cli rotate-key");
    let cli: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    refuse(&s, "alice's key after cli rotation", 401, || {
        s.get("/v2/users/me", &alice)
    });
    let alice = User {
        key: cli["api_key"].as_str().unwrap_or("").to_string(),
        ..alice
    };
    ok(s.get("/v2/users/me", &alice), 200, "alice's cli-issued key");

    // Password login: accepted by this call only.
    let r = s.post(
        "/v2/users",
        &s.admin,
        &user_doc("Pat", "Word", "pat@example.com", "s3cret-pw"),
    );
    let pat_id = ok(r, 201, "create pat")["data"]["id"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let pat_pw = User {
        id: pat_id.clone(),
        email: "pat@example.com".into(),
        key: "s3cret-pw".into(),
    };
    for (method, p) in [
        ("GET", "/v2/users/me".to_string()),
        ("GET", format!("/v2/users/{pat_id}")),
        ("GET", "/v2/workspaces".to_string()),
    ] {
        refuse(&s, &format!("password on {method} {p}"), 401, || {
            s.request(method, &p, Some(&pat_pw.auth()), &[], None)
        });
    }
    refuse(&s, "password on POST /v2/workspaces", 401, || {
        s.post(
            "/v2/workspaces",
            &pat_pw,
            &json!({"data": {"type": "workspace", "attributes": {"name": "Nope"}}}),
        )
    });
    refuse(&s, "wrong password on api-key", 401, || {
        post_empty(&s, &path(&pat_pw), &basic("pat@example.com", "s3cret-px"))
    });
    refuse(&s, "pat's password for bob's key", 403, || {
        post_empty(&s, &path(&bob), &pat_pw.auth())
    });
    let v = ok(
        post_empty(&s, &path(&pat_pw), &basic("PAT@example.com", "s3cret-pw")),
        201,
        "pat's key with her password",
    );
    let pat = User {
        key: v["data"]["attributes"]["api_key"]
            .as_str()
            .unwrap_or("")
            .to_string(),
        ..pat_pw.clone()
    };
    ok(s.get("/v2/users/me", &pat), 200, "pat's new key");
    // Rotating again with the password ends the key issued before.
    let v = ok(
        post_empty(&s, &path(&pat_pw), &pat_pw.auth()),
        201,
        "pat again",
    );
    refuse(&s, "pat's previous key", 401, || {
        s.get("/v2/users/me", &pat)
    });
    let pat = User {
        key: v["data"]["attributes"]["api_key"]
            .as_str()
            .unwrap_or("")
            .to_string(),
        ..pat
    };
    ok(s.get("/v2/users/me", &pat), 200, "pat's latest key");
    // The password still works for this call after rotations, and the key does too.
    ok(
        post_empty(&s, &path(&pat), &pat.auth()),
        201,
        "pat rotates with her key",
    );
}

#[test]
fn delete_user() {
    let s = Server::start();
    let u = s.user("leaver@example.com");
    let o = s.user("other@example.com");

    // W1: u alone, with a flow and a snapshot. W2: o's, u an integrator with a flow of its own.
    // W3: u the only owner, o a guest.
    let w1 = s.workspace(&u, "Solo space");
    let f1 = s.flow(&u, &w1, &["solo_step"]);
    ok(
        s.post(
            &format!("/v2/flows/{f1}/snapshots"),
            &u,
            &snapshot_doc("solo_step", json!({"solo": "value-1"})),
        ),
        201,
        "snapshot in W1",
    );
    let w2 = s.workspace(&o, "Shared space");
    s.add_member(&o, &w2, &u, "integrator");
    let f2 = s.flow(&u, &w2, &["x"]);
    let w3 = s.workspace(&u, "Owned space");
    s.add_member(&u, &w3, &o, "guest");
    let user_path = format!("/v2/users/{}", u.id);

    refuse(&s, "non-admin deletes a user", 403, || {
        s.delete(&user_path, &o)
    });
    refuse(&s, "a user deletes itself", 403, || {
        s.delete(&user_path, &u)
    });
    refuse(&s, "delete unknown user", 404, || {
        s.delete("/v2/users/0123456789abcdef01234567", &s.admin)
    });
    let v = refuse(&s, "last owner of a workspace with members", 409, || {
        s.delete(&user_path, &s.admin)
    });
    assert!(
        v.to_string().contains(&w3),
        "the 409 names the workspace to transfer: {v}"
    );

    // Transfer ownership, then the delete goes through.
    ok(
        s.patch(
            &format!("/v2/workspaces/{w3}/members/{}", o.id),
            &u,
            &member_doc(&o.id, json!(["owner"])),
        ),
        200,
        "make o owner of W3",
    );
    ok(s.get("/v2/users/me", &u), 200, "u's key is cached");
    ok(s.delete(&user_path, &s.admin), 204, "delete u");

    refuse(&s, "deleted user's key", 401, || s.get("/v2/users/me", &u));
    refuse(&s, "deleted user", 404, || s.get(&user_path, &s.admin));
    refuse(&s, "delete twice", 404, || s.delete(&user_path, &s.admin));
    // W1 had no other member: gone with its flow, steps and snapshot.
    refuse(&s, "W1", 404, || {
        s.get(&format!("/v2/workspaces/{w1}"), &s.admin)
    });
    refuse(&s, "W1's flow", 404, || {
        s.get(&format!("/v2/flows/{f1}"), &s.admin)
    });
    let state = s.state_without_audit();
    for gone in [
        w1.as_str(),
        f1.as_str(),
        "solo_step",
        "value-1",
        "leaver@example.com",
    ] {
        assert!(!state.contains(gone), "{gone} left in the database");
    }
    // W2 stays, without u; u's flow there stays, still naming its creator.
    let v = ok(s.get(&format!("/v2/workspaces/{w2}"), &o), 200, "W2");
    assert_eq!(
        v["data"]["relationships"]["members"]["data"],
        json!([{"id": o.id, "type": "member"}]),
        "W2 members"
    );
    let v = ok(s.get(&format!("/v2/flows/{f2}"), &o), 200, "u's flow in W2");
    assert_eq!(
        v["data"]["relationships"]["user"]["data"]["id"],
        u.id.as_str()
    );
    // W3 stays, with o its owner.
    let r = s.get(&format!("/v2/workspaces/{w3}/members"), &o);
    let m = collection(
        &r,
        &format!("/v2/workspaces/{w3}/members"),
        1,
        50,
        1,
        1,
        "W3 members",
    );
    check_member(&m[0], &w3, &o, "owner", "W3 owner");
    // Listing users no longer shows u.
    let r = s.get("/v2/users", &s.admin);
    let list = collection(&r, "/v2/users", 1, 50, 2, 1, "users after delete");
    assert_eq!(ids(&list), vec![s.admin.id.clone(), o.id.clone()]);

    // Decision: the last tenant-admin cannot be deleted (nobody could manage users any more).
    refuse(&s, "delete the last tenant-admin", 409, || {
        s.delete(&format!("/v2/users/{}", s.admin.id), &s.admin)
    });
    let out = s.cli(
        &[
            "user",
            "create",
            "--email",
            "admin2@example.com",
            "--tenant-admin",
        ],
        None,
    );
    assert!(out.status.success(), "cli create admin2");
    let admin2: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    let admin2_id = admin2["id"].as_str().unwrap_or("").to_string();
    ok(
        s.delete(&format!("/v2/users/{admin2_id}"), &s.admin),
        204,
        "delete a second tenant-admin",
    );
}

// ---------------------------------------------------------------------------------------------
// Section 4: contract, workspaces, members, roles
// ---------------------------------------------------------------------------------------------

#[test]
fn contract() {
    let s = Server::start();
    let alice = s.user("alice@example.com");
    let c = contract_id(&s);
    assert_id(&json!(c), "contract id");

    for who in [&s.admin, &alice] {
        let r = s.get("/v2/contracts", who);
        let list = collection(&r, "/v2/contracts", 1, 50, 1, 1, "contracts");
        let d = &list[0];
        assert_keys(
            d,
            &["id", "type", "links", "attributes"],
            "contract in list",
        );
        assert_eq!(d["type"], "contract");
        assert_eq!(d["links"], json!({"self": format!("/v2/contracts/{c}")}));
        assert_keys(&d["attributes"], &["name"], "contract attributes");
        assert!(d["attributes"]["name"]
            .as_str()
            .is_some_and(|n| !n.is_empty()));
        let v = ok(
            s.get(&format!("/v2/contracts/{c}"), who),
            200,
            "GET contract",
        );
        assert_eq!(
            single(&v, "contract"),
            d,
            "contract document equals list item"
        );
    }
    let p = "/v2/contracts?page[size]=1&page[number]=2";
    let d = collection(&s.get(p, &alice), p, 2, 1, 1, 1, "contracts page 2");
    assert!(d.is_empty(), "contracts past the end");
    refuse(&s, "contracts bad page", 400, || {
        s.get("/v2/contracts?page[size]=0", &alice)
    });
    refuse(&s, "unknown contract", 404, || {
        s.get("/v2/contracts/0123456789abcdef01234567", &alice)
    });

    // Every workspace points at it, in create, get and list.
    let mut ws = Vec::new();
    for name in ["One", "Two"] {
        let r = s.post(
            "/v2/workspaces",
            &alice,
            &json!({"data": {"type": "workspace", "attributes": {"name": name}}}),
        );
        let v = ok(r, 201, "create workspace");
        let d = single(&v, "created workspace");
        let id = assert_id(&d["id"], "workspace id");
        check_workspace(d, &id, name, &c, &[&alice.id], "created workspace");
        ws.push(id);
    }
    // Naming the contract explicitly works; naming another is 404.
    let r = s.post(
        "/v2/workspaces",
        &s.admin,
        &json!({"data": {"type": "workspace", "attributes": {"name": "Three"},
                "relationships": {"contract": {"data": {"id": c, "type": "contract"}}}}}),
    );
    let v = ok(r, 201, "workspace naming the contract");
    ws.push(v["data"]["id"].as_str().unwrap_or("").to_string());
    refuse(&s, "workspace in an unknown contract", 404, || {
        s.post(
            "/v2/workspaces",
            &s.admin,
            &json!({"data": {"type": "workspace", "attributes": {"name": "Four"},
                    "relationships": {"contract": {"data": {"id": "0123456789abcdef01234567", "type": "contract"}}}}}),
        )
    });
    let v = ok(
        s.get(&format!("/v2/workspaces/{}", ws[0]), &alice),
        200,
        "get",
    );
    assert_eq!(
        v["data"]["relationships"]["contract"]["data"]["id"],
        c.as_str()
    );

    let p = format!("/v2/workspaces?contract_id={c}");
    let r = s.get(&p, &s.admin);
    let list = collection(&r, &p, 1, 50, 3, 1, "workspaces of the contract");
    assert_eq!(ids(&list), ws, "every workspace, in creation order");
    for d in &list {
        assert_eq!(d["relationships"]["contract"]["data"]["id"], c.as_str());
    }
    let r = s.get(&p, &alice);
    let list = collection(&r, &p, 1, 50, 2, 1, "alice's workspaces of the contract");
    assert_eq!(ids(&list), ws[..2].to_vec());
    let p = "/v2/workspaces?contract_id=0123456789abcdef01234567";
    let list = collection(&s.get(p, &s.admin), p, 1, 50, 0, 0, "another contract");
    assert!(list.is_empty());
}

#[test]
fn workspaces_crud_and_listing() {
    let s = Server::start();
    let c = contract_id(&s);
    let alice = s.user("alice@example.com");
    let bob = s.user("bob@example.com");

    // Name rule: 3 to 40 of letters, digits, space, `-`, `_`.
    let create = |u: &User, name: Value| {
        s.post(
            "/v2/workspaces",
            u,
            &json!({"data": {"type": "workspace", "attributes": {"name": name}}}),
        )
    };
    for bad in [
        json!("ab"),
        json!("a".repeat(41)),
        json!("a/b/c"),
        json!("dots.not.ok"),
        json!("emoji 🙂"),
        json!("tab\there"),
        json!(""),
        json!(42),
        json!(null),
    ] {
        let v = refuse(&s, &format!("workspace name {bad}"), 400, || {
            create(&alice, bad.clone())
        });
        assert!(
            v.to_string().contains("name"),
            "name {bad}: the error names the attribute: {v}"
        );
    }
    refuse(&s, "workspace without attributes", 400, || {
        s.post(
            "/v2/workspaces",
            &alice,
            &json!({"data": {"type": "workspace"}}),
        )
    });
    refuse(&s, "workspace with data.type flow", 409, || {
        s.post(
            "/v2/workspaces",
            &alice,
            &json!({"data": {"type": "flow", "attributes": {"name": "Fine name"}}}),
        )
    });

    let mut alice_ws = Vec::new();
    for name in ["abc", &"x".repeat(40), "My team_1-x", "Ünïcode 9"] {
        let v = ok(create(&alice, json!(name)), 201, &format!("name {name:?}"));
        let d = single(&v, "created workspace");
        let id = assert_id(&d["id"], "workspace id");
        check_workspace(d, &id, name, &c, &[&alice.id], &format!("created {name:?}"));
        alice_ws.push(id);
    }
    assert_ne!(alice_ws[0], alice_ws[1], "ids differ");
    let bob_ws = s.workspace(&bob, "Bobs place");

    // The creator is its owner.
    let p = format!("/v2/workspaces/{}/members", alice_ws[0]);
    let m = collection(&s.get(&p, &alice), &p, 1, 50, 1, 1, "creator membership");
    check_member(&m[0], &alice_ws[0], &alice, "owner", "creator");

    // List: only the caller's; all for the tenant-admin; paged, exact totals.
    let r = s.get("/v2/workspaces", &alice);
    let list = collection(&r, "/v2/workspaces", 1, 50, 4, 1, "alice's workspaces");
    assert_eq!(ids(&list), alice_ws, "alice's in creation order");
    check_workspace(
        &list[2],
        &alice_ws[2],
        "My team_1-x",
        &c,
        &[&alice.id],
        "listed",
    );
    let r = s.get("/v2/workspaces", &bob);
    let list = collection(&r, "/v2/workspaces", 1, 50, 1, 1, "bob's workspaces");
    assert_eq!(ids(&list), vec![bob_ws.clone()]);
    let r = s.get("/v2/workspaces", &s.admin);
    let list = collection(&r, "/v2/workspaces", 1, 50, 5, 1, "all for admin");
    let mut all = alice_ws.clone();
    all.push(bob_ws.clone());
    assert_eq!(ids(&list), all);
    let mut walked = Vec::new();
    for n in 1..=3 {
        let p = format!("/v2/workspaces?page[size]=2&page[number]={n}");
        let page = collection(&s.get(&p, &alice), &p, n, 2, 4, 2, &format!("page {n}"));
        walked.extend(ids(&page));
    }
    assert_eq!(walked, alice_ws, "paging alice's workspaces");
    let p = "/v2/workspaces?page%5Bsize%5D=1";
    collection(&s.get(p, &alice), p, 1, 1, 4, 4, "percent-encoded");
    let p = "/v2/workspaces?page[size]=1000";
    collection(&s.get(p, &alice), p, 1, 100, 4, 1, "size lowered");
    refuse(&s, "bad page", 400, || {
        s.get("/v2/workspaces?page[number]=x", &alice)
    });
    let p = "/v2/workspaces?page[number]=2";
    let empty = collection(&s.get(p, &bob), p, 2, 50, 1, 1, "bob past the end");
    assert!(empty.is_empty());

    // Get: member, tenant-admin; not a stranger; unknown 404.
    let w = &alice_ws[0];
    let wp = format!("/v2/workspaces/{w}");
    let v = ok(s.get(&wp, &alice), 200, "alice gets her workspace");
    check_workspace(single(&v, "get"), w, "abc", &c, &[&alice.id], "get");
    let v = ok(s.get(&format!("{wp}/"), &s.admin), 200, "admin gets it");
    check_workspace(
        single(&v, "admin get"),
        w,
        "abc",
        &c,
        &[&alice.id],
        "admin get",
    );
    refuse(&s, "bob gets alice's workspace", 403, || s.get(&wp, &bob));
    refuse(&s, "unknown workspace", 404, || {
        s.get("/v2/workspaces/0123456789abcdef01234567", &alice)
    });
    // relationships.members.data grows with members, in joining order.
    s.add_member(&alice, w, &bob, "guest");
    let v = ok(s.get(&wp, &bob), 200, "bob, now a guest, reads it");
    check_workspace(
        single(&v, "with bob"),
        w,
        "abc",
        &c,
        &[&alice.id, &bob.id],
        "with bob",
    );

    // Patch: workspace.edit (owner); rules on the name, type, id.
    let before = v["data"]["attributes"]["updated_at"].clone();
    std::thread::sleep(std::time::Duration::from_millis(5));
    let mut doc = ws_rename(w, "Renamed space");
    doc["data"]["attributes"]["created_at"] = json!("1999-01-01T00:00:00.000Z");
    doc["data"]["attributes"]["updated_at"] = json!("1999-01-01T00:00:00.000Z");
    let v = ok(s.patch(&wp, &alice, &doc), 200, "owner renames");
    let d = single(&v, "renamed");
    check_workspace(d, w, "Renamed space", &c, &[&alice.id, &bob.id], "renamed");
    assert_ne!(d["attributes"]["updated_at"], before, "updated_at moves");
    assert_ne!(d["attributes"]["created_at"], "1999-01-01T00:00:00.000Z");
    let v = ok(
        s.patch(
            &wp,
            &alice,
            &json!({"data": {"type": "workspace", "attributes": {}}}),
        ),
        200,
        "patch without changes, without data.id",
    );
    assert_eq!(v["data"]["attributes"]["name"], "Renamed space");
    // A client sends back the document it read, with a new name: links, relationships and
    // server-set attributes included.
    let mut read = ok(s.get(&wp, &alice), 200, "read for send-back");
    read["data"]["attributes"]["name"] = json!("Sent back");
    let v = ok(
        s.patch(&wp, &alice, &read),
        200,
        "send back the read document",
    );
    check_workspace(
        single(&v, "sent back"),
        w,
        "Sent back",
        &c,
        &[&alice.id, &bob.id],
        "sent back",
    );
    refuse(&s, "guest renames", 403, || {
        s.patch(&wp, &bob, &ws_rename(w, "Guest was here"))
    });
    refuse(&s, "guest renames with a bad body", 403, || {
        s.patch(&wp, &bob, &json!("nonsense"))
    });
    refuse(&s, "rename to a bad name", 400, || {
        s.patch(&wp, &alice, &ws_rename(w, "x"))
    });
    refuse(&s, "rename with null name", 400, || {
        s.patch(
            &wp,
            &alice,
            &json!({"data": {"type": "workspace", "attributes": {"name": null}}}),
        )
    });
    refuse(&s, "patch with another id", 409, || {
        s.patch(&wp, &alice, &ws_rename(&alice_ws[1], "Other id"))
    });
    refuse(&s, "patch with data.type user", 409, || {
        s.patch(
            &wp,
            &alice,
            &json!({"data": {"type": "user", "id": w, "attributes": {"name": "Fine"}}}),
        )
    });
    refuse(&s, "patch unknown workspace", 404, || {
        s.patch(
            "/v2/workspaces/0123456789abcdef01234567",
            &alice,
            &ws_rename("0123456789abcdef01234567", "Fine"),
        )
    });
    refuse(&s, "PUT workspace", 405, || {
        s.send("PUT", &wp, &alice, &ws_rename(w, "Put name"))
    });

    // Delete: workspace.edit; cascades to flows, steps, snapshots and members.
    let f1 = s.flow(&alice, w, &["cascade_a", "cascade_b"]);
    let f2 = s.flow(&alice, w, &["cascade_c"]);
    ok(
        s.post(
            &format!("/v2/flows/{f1}/snapshots"),
            &alice,
            &snapshot_doc("cascade_a", json!("cascade-value")),
        ),
        201,
        "snapshot before delete",
    );
    ok(
        s.request(
            "POST",
            &format!("/v2/flows/{f2}/start"),
            Some(&alice.auth()),
            &[],
            None,
        ),
        202,
        "start f2",
    );
    refuse(&s, "guest deletes the workspace", 403, || {
        s.delete(&wp, &bob)
    });
    refuse(&s, "stranger deletes the workspace", 403, || {
        s.delete(&format!("/v2/workspaces/{bob_ws}"), &alice)
    });
    refuse(&s, "tenant-admin non-member deletes", 403, || {
        s.delete(&wp, &s.admin)
    });
    refuse(&s, "delete unknown workspace", 404, || {
        s.delete("/v2/workspaces/0123456789abcdef01234567", &alice)
    });
    ok(s.delete(&wp, &alice), 204, "owner deletes (a flow running)");
    refuse(&s, "deleted workspace", 404, || s.get(&wp, &alice));
    refuse(&s, "delete twice", 404, || s.delete(&wp, &alice));
    refuse(&s, "flow of deleted ws", 404, || {
        s.get(&format!("/v2/flows/{f1}"), &alice)
    });
    refuse(&s, "snapshots of deleted ws", 404, || {
        s.get(&format!("/v2/flows/{f1}/snapshots"), &alice)
    });
    let state = s.state_without_audit();
    for gone in [
        w.as_str(),
        &f1,
        &f2,
        "cascade_a",
        "cascade_c",
        "cascade-value",
    ] {
        assert!(
            !state.contains(gone),
            "{gone} left in the database after delete"
        );
    }
    let r = s.get("/v2/workspaces", &bob);
    let list = collection(&r, "/v2/workspaces", 1, 50, 1, 1, "bob after delete");
    assert_eq!(ids(&list), vec![bob_ws.clone()], "membership went with it");
    let r = s.get("/v2/workspaces", &alice);
    collection(&r, "/v2/workspaces", 1, 50, 3, 1, "alice after delete");
}

#[test]
fn members() {
    let s = Server::start();
    let owner = s.user("owner@example.com");
    let admin = s.user("wsadmin@example.com");
    let integ = s.user("integ@example.com");
    let guest = s.user("guest@example.com");
    let w = s.workspace(&owner, "Member space");
    let mp = format!("/v2/workspaces/{w}/members");
    let one = |u: &User| format!("{mp}/{}", u.id);

    // Add: 200 with the member document.
    let v = ok(
        s.post(&mp, &owner, &member_doc(&admin.id, json!(["admin"]))),
        200,
        "owner adds admin",
    );
    check_member(single(&v, "add admin"), &w, &admin, "admin", "add admin");
    // An admin has workspace.edit and may add members too.
    let v = ok(
        s.post(
            &format!("{mp}/"),
            &admin,
            &member_doc(&integ.id, json!(["integrator"])),
        ),
        200,
        "admin adds integrator",
    );
    check_member(
        single(&v, "add integrator"),
        &w,
        &integ,
        "integrator",
        "add integ",
    );

    // Refusals of add, each leaving everything as it was.
    refuse(&s, "integrator adds a member", 403, || {
        s.post(&mp, &integ, &member_doc(&guest.id, json!(["guest"])))
    });
    refuse(&s, "non-member adds itself", 403, || {
        s.post(&mp, &guest, &member_doc(&guest.id, json!(["owner"])))
    });
    refuse(&s, "tenant-admin non-member adds", 403, || {
        s.post(&mp, &s.admin, &member_doc(&guest.id, json!(["guest"])))
    });
    refuse(&s, "add to unknown workspace", 404, || {
        s.post(
            "/v2/workspaces/0123456789abcdef01234567/members",
            &owner,
            &member_doc(&guest.id, json!(["guest"])),
        )
    });
    refuse(&s, "add unknown user", 404, || {
        s.post(
            &mp,
            &owner,
            &member_doc("0123456789abcdef01234567", json!(["guest"])),
        )
    });
    for (what, roles) in [
        ("unknown role", json!(["superuser"])),
        ("upper-case role", json!(["Guest"])),
        ("no roles", json!([])),
        ("two roles", json!(["guest", "admin"])),
        ("roles not an array", json!("guest")),
        ("role not a string", json!([1])),
        ("roles null", json!(null)),
    ] {
        refuse(&s, what, 400, || {
            s.post(&mp, &owner, &member_doc(&guest.id, roles.clone()))
        });
    }
    refuse(&s, "roles missing", 400, || {
        s.post(
            &mp,
            &owner,
            &json!({"data": {"type": "member", "id": guest.id}}),
        )
    });
    refuse(&s, "data.id missing", 400, || {
        s.post(
            &mp,
            &owner,
            &json!({"data": {"type": "member", "attributes": {"roles": ["guest"]}}}),
        )
    });
    refuse(&s, "data.type user", 409, || {
        s.post(
            &mp,
            &owner,
            &json!({"data": {"type": "user", "id": guest.id, "attributes": {"roles": ["guest"]}}}),
        )
    });
    refuse(&s, "already a member", 409, || {
        s.post(&mp, &owner, &member_doc(&integ.id, json!(["guest"])))
    });
    refuse(&s, "owner already a member", 409, || {
        s.post(&mp, &owner, &member_doc(&owner.id, json!(["owner"])))
    });
    ok(
        s.post(&mp, &owner, &member_doc(&guest.id, json!(["guest"]))),
        200,
        "add guest",
    );

    // List: every member, in joining order, paged.
    for who in [&owner, &guest, &s.admin] {
        let list = collection(&s.get(&mp, who), &mp, 1, 50, 4, 1, "members");
        check_member(&list[0], &w, &owner, "owner", "member 0");
        check_member(&list[1], &w, &admin, "admin", "member 1");
        check_member(&list[2], &w, &integ, "integrator", "member 2");
        check_member(&list[3], &w, &guest, "guest", "member 3");
    }
    let p = format!("{mp}?page[size]=3&page[number]=2");
    let list = collection(&s.get(&p, &owner), &p, 2, 3, 4, 2, "members page 2");
    assert_eq!(ids(&list), vec![guest.id.clone()]);
    let p = format!("{mp}?page%5Bsize%5D=1");
    collection(
        &s.get(&p, &owner),
        &p,
        1,
        1,
        4,
        4,
        "members percent-encoded",
    );
    refuse(&s, "members bad page", 400, || {
        s.get(&format!("{mp}?page[size]=-3"), &owner)
    });
    let outsider = s.user("outsider@example.com");
    refuse(&s, "outsider lists members", 403, || s.get(&mp, &outsider));
    refuse(&s, "members of unknown workspace", 404, || {
        s.get("/v2/workspaces/0123456789abcdef01234567/members", &owner)
    });
    // One member.
    let v = ok(s.get(&one(&integ), &guest), 200, "get one member");
    check_member(
        single(&v, "one member"),
        &w,
        &integ,
        "integrator",
        "one member",
    );
    refuse(&s, "non-member as member", 404, || {
        s.get(&one(&outsider), &owner)
    });
    refuse(&s, "outsider reads a member", 403, || {
        s.get(&one(&integ), &outsider)
    });

    // PATCH roles.
    let v = ok(
        s.patch(
            &one(&guest),
            &admin,
            &member_doc(&guest.id, json!(["integrator"])),
        ),
        200,
        "admin promotes guest",
    );
    check_member(single(&v, "promoted"), &w, &guest, "integrator", "promoted");
    let v = ok(
        s.patch(
            &one(&guest),
            &owner,
            &json!({"data": {"type": "member", "attributes": {"roles": ["guest"]}}}),
        ),
        200,
        "demote back without data.id",
    );
    check_member(single(&v, "demoted"), &w, &guest, "guest", "demoted");
    refuse(&s, "integrator changes a role", 403, || {
        s.patch(
            &one(&guest),
            &integ,
            &member_doc(&guest.id, json!(["admin"])),
        )
    });
    refuse(&s, "guest promotes itself", 403, || {
        s.patch(
            &one(&guest),
            &guest,
            &member_doc(&guest.id, json!(["owner"])),
        )
    });
    refuse(&s, "patch a non-member", 404, || {
        s.patch(
            &one(&outsider),
            &owner,
            &member_doc(&outsider.id, json!(["guest"])),
        )
    });
    refuse(&s, "patch with another id", 409, || {
        s.patch(
            &one(&guest),
            &owner,
            &member_doc(&integ.id, json!(["admin"])),
        )
    });
    refuse(&s, "patch with two roles", 400, || {
        s.patch(
            &one(&guest),
            &owner,
            &member_doc(&guest.id, json!(["admin", "guest"])),
        )
    });
    refuse(&s, "patch to unknown role", 400, || {
        s.patch(
            &one(&guest),
            &owner,
            &member_doc(&guest.id, json!(["boss"])),
        )
    });

    // The last owner cannot be demoted or removed, by itself or by an admin.
    for (who, by) in [(&owner, "itself"), (&admin, "an admin")] {
        refuse(&s, &format!("demote the last owner, by {by}"), 409, || {
            s.patch(&one(&owner), who, &member_doc(&owner.id, json!(["admin"])))
        });
        refuse(&s, &format!("remove the last owner, by {by}"), 409, || {
            s.delete(&one(&owner), who)
        });
    }
    // A client sends back the member document it read, with a new role.
    let mut read = ok(s.get(&one(&guest), &owner), 200, "read a member");
    read["data"]["attributes"]["roles"] = json!(["admin"]);
    let v = ok(
        s.patch(&one(&guest), &owner, &read),
        200,
        "send back a member",
    );
    check_member(single(&v, "sent back"), &w, &guest, "admin", "sent back");
    ok(
        s.patch(
            &one(&guest),
            &owner,
            &member_doc(&guest.id, json!(["guest"])),
        ),
        200,
        "guest again",
    );
    // Keeping the last owner an owner is no change.
    let v = ok(
        s.patch(
            &one(&owner),
            &owner,
            &member_doc(&owner.id, json!(["owner"])),
        ),
        200,
        "owner stays owner",
    );
    check_member(
        single(&v, "owner stays"),
        &w,
        &owner,
        "owner",
        "owner stays",
    );
    // With a second owner, the first may step down; then the second is the last one.
    ok(
        s.patch(
            &one(&admin),
            &owner,
            &member_doc(&admin.id, json!(["owner"])),
        ),
        200,
        "second owner",
    );
    let v = ok(
        s.patch(
            &one(&owner),
            &owner,
            &member_doc(&owner.id, json!(["guest"])),
        ),
        200,
        "first owner steps down",
    );
    check_member(
        single(&v, "stepped down"),
        &w,
        &owner,
        "guest",
        "stepped down",
    );
    refuse(&s, "the new last owner removes itself", 409, || {
        s.delete(&one(&admin), &admin)
    });
    refuse(&s, "the old owner, now a guest, edits", 403, || {
        s.patch(
            &one(&owner),
            &owner,
            &member_doc(&owner.id, json!(["owner"])),
        )
    });

    // DELETE a member.
    refuse(&s, "integrator removes a member", 403, || {
        s.delete(&one(&guest), &integ)
    });
    refuse(&s, "tenant-admin non-member removes", 403, || {
        s.delete(&one(&guest), &s.admin)
    });
    refuse(&s, "remove a non-member", 404, || {
        s.delete(&one(&outsider), &admin)
    });
    ok(s.delete(&one(&guest), &admin), 204, "remove guest");
    refuse(&s, "removed member", 404, || s.get(&one(&guest), &admin));
    refuse(&s, "removed member lists members", 403, || {
        s.get(&mp, &guest)
    });
    refuse(&s, "remove twice", 404, || s.delete(&one(&guest), &admin));
    let list = collection(&s.get(&mp, &admin), &mp, 1, 50, 3, 1, "after removal");
    assert_eq!(
        ids(&list),
        vec![owner.id.clone(), admin.id.clone(), integ.id.clone()]
    );
    let v = ok(
        s.get(&format!("/v2/workspaces/{w}"), &admin),
        200,
        "ws after removal",
    );
    assert_eq!(
        v["data"]["relationships"]["members"]["data"],
        json!([
            {"id": owner.id, "type": "member"},
            {"id": admin.id, "type": "member"},
            {"id": integ.id, "type": "member"}
        ]),
    );
    // A re-added member is back, with the new role.
    ok(
        s.post(&mp, &admin, &member_doc(&guest.id, json!(["integrator"]))),
        200,
        "re-add",
    );
    // An owner may leave when another owner stays.
    ok(
        s.patch(
            &one(&owner),
            &admin,
            &member_doc(&owner.id, json!(["owner"])),
        ),
        200,
        "owner again",
    );
    ok(s.delete(&one(&owner), &owner), 204, "an owner leaves");
    refuse(&s, "left", 403, || {
        s.get(&format!("/v2/workspaces/{w}"), &owner)
    });
}

#[test]
fn role_table() {
    let s = Server::start();
    let owner = s.user("owner@example.com");
    let admin = s.user("wsadmin@example.com");
    let integ = s.user("integ@example.com");
    let guest = s.user("guest@example.com");
    let outsider = s.user("outsider@example.com");
    let w = s.workspace(&owner, "Role space");
    s.add_member(&owner, &w, &admin, "admin");
    s.add_member(&owner, &w, &integ, "integrator");
    s.add_member(&owner, &w, &guest, "guest");
    let f = s.flow(&owner, &w, &["a", "b"]);
    ok(
        s.post(
            &format!("/v2/flows/{f}/snapshots"),
            &owner,
            &snapshot_doc("a", json!(1)),
        ),
        201,
        "snapshot",
    );
    let wp = format!("/v2/workspaces/{w}");
    let fp = format!("/v2/flows/{f}");
    let start = |u: &User| s.request("POST", &format!("{fp}/start"), Some(&u.auth()), &[], None);
    let stop = |u: &User| {
        s.request(
            "POST",
            &format!("{fp}/stop"),
            Some(&u.auth()),
            &[("Content-Type", "application/x-www-form-urlencoded")],
            None,
        )
    };
    let reads = |u: &User, who: &str, status: u16| {
        for p in [
            wp.clone(),
            format!("{wp}/members"),
            format!("{wp}/members/{}", owner.id),
            format!("/v2/flows?workspace_id={w}"),
            fp.clone(),
            format!("{fp}/snapshots"),
            format!("{fp}/snapshots/a"),
            format!("/v1/tasks/{f}/steps/a"),
        ] {
            if status == 200 {
                let r = s.get(&p, u);
                assert_eq!(r.status, 200, "{who} reads {p}: {}", r.text());
            } else {
                refuse(&s, &format!("{who} reads {p}"), status, || s.get(&p, u));
            }
        }
    };

    // (role, user, [workspace.edit, flow.edit, flow.toggleStatus])
    let table = [
        ("owner", &owner, [true, true, true]),
        ("admin", &admin, [true, true, true]),
        ("integrator", &integ, [false, true, true]),
        ("guest", &guest, [false, false, false]),
    ];
    for (role, u, [ws_edit, flow_edit, toggle]) in table {
        reads(u, role, 200);

        // workspaces.workspace.edit: rename the workspace, add and remove a member.
        let doc = ws_rename(&w, &format!("Renamed by {role}"));
        let add = member_doc(&outsider.id, json!(["guest"]));
        if ws_edit {
            let v = ok(
                s.patch(&wp, u, &doc),
                200,
                &format!("{role}: workspace.edit"),
            );
            assert_eq!(
                v["data"]["attributes"]["name"],
                format!("Renamed by {role}")
            );
            ok(
                s.post(&format!("{wp}/members"), u, &add),
                200,
                &format!("{role}: add member"),
            );
            ok(
                s.delete(&format!("{wp}/members/{}", outsider.id), u),
                204,
                &format!("{role}: remove member"),
            );
        } else {
            refuse(&s, &format!("{role}: workspace.edit"), 403, || {
                s.patch(&wp, u, &doc)
            });
            refuse(&s, &format!("{role}: add member"), 403, || {
                s.post(&format!("{wp}/members"), u, &add)
            });
            refuse(&s, &format!("{role}: remove member"), 403, || {
                s.delete(&format!("{wp}/members/{}", guest.id), u)
            });
            refuse(&s, &format!("{role}: delete workspace"), 403, || {
                s.delete(&wp, u)
            });
        }

        // workspaces.flow.edit: create, patch and delete a flow; write a snapshot.
        let new_flow = flow_doc(&w, &format!("{role} flow"), &["s1"]);
        let patch = json!({"data": {"type": "flow", "id": f, "attributes": {"description": role}}});
        let snap = json!({"data": {"type": "snapshot", "attributes": {"snapshot": role}}});
        if flow_edit {
            let v = ok(
                s.post("/v2/flows", u, &new_flow),
                201,
                &format!("{role}: flow.edit"),
            );
            let id = v["data"]["id"].as_str().unwrap_or("").to_string();
            let v = ok(s.patch(&fp, u, &patch), 200, &format!("{role}: patch flow"));
            assert_eq!(v["data"]["attributes"]["description"], role);
            ok(
                s.patch(&format!("{fp}/snapshots/a"), u, &snap),
                200,
                &format!("{role}: patch snapshot"),
            );
            ok(
                s.delete(&format!("/v2/flows/{id}"), u),
                204,
                &format!("{role}: delete flow"),
            );
        } else {
            refuse(&s, &format!("{role}: flow.edit"), 403, || {
                s.post("/v2/flows", u, &new_flow)
            });
            refuse(&s, &format!("{role}: patch flow"), 403, || {
                s.patch(&fp, u, &patch)
            });
            refuse(&s, &format!("{role}: patch snapshot"), 403, || {
                s.patch(&format!("{fp}/snapshots/a"), u, &snap)
            });
            refuse(&s, &format!("{role}: delete flow"), 403, || {
                s.delete(&fp, u)
            });
        }

        // workspaces.flow.toggleStatus: start and stop.
        if toggle {
            let v = ok(start(u), 202, &format!("{role}: flow.toggleStatus start"));
            assert_eq!(v["data"]["attributes"]["status"], "active");
            ok(stop(u), 202, &format!("{role}: flow.toggleStatus stop"));
        } else {
            refuse(&s, &format!("{role}: start"), 403, || start(u));
            // Permission comes before the rules: stopping an inactive flow is 403, not 409.
            refuse(&s, &format!("{role}: stop"), 403, || stop(u));
            ok(start(&owner), 202, "owner starts for the guest");
            refuse(&s, &format!("{role}: stop a running flow"), 403, || stop(u));
            ok(stop(&owner), 202, "owner stops again");
        }
    }

    // A non-member: nothing, reads included.
    reads(&outsider, "non-member", 403);
    refuse(&s, "non-member renames", 403, || {
        s.patch(&wp, &outsider, &ws_rename(&w, "Mine now"))
    });
    refuse(&s, "non-member creates a flow", 403, || {
        s.post("/v2/flows", &outsider, &flow_doc(&w, "x", &["s"]))
    });
    refuse(&s, "non-member starts", 403, || start(&outsider));

    // A tenant-admin reads everything but writes nothing without a role.
    reads(&s.admin, "tenant-admin", 200);
    type Call<'a> = Box<dyn Fn() -> Resp + 'a>;
    let admin_writes: Vec<(&str, Call)> = vec![
        (
            "rename",
            Box::new(|| s.patch(&wp, &s.admin, &ws_rename(&w, "Admin was here"))),
        ),
        ("delete workspace", Box::new(|| s.delete(&wp, &s.admin))),
        (
            "add itself",
            Box::new(|| {
                s.post(
                    &format!("{wp}/members"),
                    &s.admin,
                    &member_doc(&s.admin.id, json!(["owner"])),
                )
            }),
        ),
        (
            "change a role",
            Box::new(|| {
                s.patch(
                    &format!("{wp}/members/{}", guest.id),
                    &s.admin,
                    &member_doc(&guest.id, json!(["owner"])),
                )
            }),
        ),
        (
            "remove a member",
            Box::new(|| s.delete(&format!("{wp}/members/{}", guest.id), &s.admin)),
        ),
        (
            "create a flow",
            Box::new(|| s.post("/v2/flows", &s.admin, &flow_doc(&w, "x", &["s"]))),
        ),
        (
            "patch a flow",
            Box::new(|| {
                s.patch(
                    &fp,
                    &s.admin,
                    &json!({"data": {"type": "flow", "attributes": {"name": "admin"}}}),
                )
            }),
        ),
        ("delete a flow", Box::new(|| s.delete(&fp, &s.admin))),
        ("start", Box::new(|| start(&s.admin))),
        ("stop", Box::new(|| stop(&s.admin))),
        (
            "create a snapshot",
            Box::new(|| {
                s.post(
                    &format!("{fp}/snapshots"),
                    &s.admin,
                    &snapshot_doc("b", json!(2)),
                )
            }),
        ),
        (
            "delete a snapshot",
            Box::new(|| s.delete(&format!("{fp}/snapshots/a"), &s.admin)),
        ),
    ];
    for (what, f) in &admin_writes {
        refuse(
            &s,
            &format!("tenant-admin without membership: {what}"),
            403,
            f,
        );
    }
    // As a guest, the tenant-admin's role decides.
    s.add_member(&owner, &w, &s.admin, "guest");
    refuse(&s, "tenant-admin as guest renames", 403, || {
        s.patch(&wp, &s.admin, &ws_rename(&w, "Admin was here"))
    });
    refuse(&s, "tenant-admin as guest starts", 403, || start(&s.admin));
}

// ---------------------------------------------------------------------------------------------
// Tenant isolation
// ---------------------------------------------------------------------------------------------

#[test]
fn tenant_isolation() {
    let s = Server::start();
    let a = s.user("alpha@example.com");
    let b = s.user("bravo@example.com");
    let b2 = s.user("bravo-two@example.com");
    let wa = s.workspace(&a, "Alpha space");
    let fa = s.flow(&a, &wa, &["alpha_step"]);
    let wb = s.workspace(&b, "Bravo secret space");
    s.add_member(&b, &wb, &b2, "integrator");
    let fb_doc = flow_doc(
        &wb,
        "Bravo secret flow",
        &["bravo_step_one", "bravo_step_two"],
    );
    let fb = ok(s.post("/v2/flows", &b, &fb_doc), 201, "bravo flow")["data"]["id"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let fb2 = s.flow(&b, &wb, &["bravo_step_three"]);
    ok(
        s.request(
            "POST",
            &format!("/v2/flows/{fb2}/start"),
            Some(&b.auth()),
            &[],
            None,
        ),
        202,
        "start fb2",
    );
    ok(
        s.post(
            &format!("/v2/flows/{fb}/snapshots"),
            &b,
            &snapshot_doc("bravo_step_one", json!({"bravo_secret": "sauce-42"})),
        ),
        201,
        "bravo snapshot",
    );
    // What A must never see unless A itself sent it in the request.
    let secrets: Vec<String> = vec![
        wb.clone(),
        fb.clone(),
        fb2.clone(),
        b.id.clone(),
        b2.id.clone(),
        "bravo@example.com".into(),
        "bravo-two@example.com".into(),
        "Bravo secret".into(),
        "bravo_step".into(),
        "bravo_secret".into(),
        "sauce-42".into(),
    ];
    let check_no_leak = |what: &str, request: &str, r: &Resp| {
        let body = r.text();
        for secret in &secrets {
            if !request.contains(secret.as_str()) {
                assert!(
                    !body.contains(secret.as_str()),
                    "{what}: the response shows {secret:?}: {body}"
                );
            }
        }
    };

    let wbp = format!("/v2/workspaces/{wb}");
    let fbp = format!("/v2/flows/{fb}");
    let snap = snapshot_doc("bravo_step_one", json!("alpha was here"));
    let flow_patch =
        json!({"data": {"type": "flow", "id": fb, "attributes": {"name": "Alpha owns it"}}});
    let calls: Vec<(&str, String, Option<Value>)> = vec![
        ("GET", wbp.clone(), None),
        ("PATCH", wbp.clone(), Some(ws_rename(&wb, "Alpha owns it"))),
        ("DELETE", wbp.clone(), None),
        ("GET", format!("{wbp}/members"), None),
        (
            "POST",
            format!("{wbp}/members"),
            Some(member_doc(&a.id, json!(["owner"]))),
        ),
        ("GET", format!("{wbp}/members/{}", b.id), None),
        (
            "PATCH",
            format!("{wbp}/members/{}", b2.id),
            Some(member_doc(&b2.id, json!(["guest"]))),
        ),
        ("DELETE", format!("{wbp}/members/{}", b2.id), None),
        ("DELETE", format!("{wbp}/members/{}", b.id), None),
        ("GET", format!("/v2/flows?workspace_id={wb}"), None),
        (
            "GET",
            format!("/v2/flows?workspace_id={wb}&page[size]=1"),
            None,
        ),
        (
            "POST",
            "/v2/flows".into(),
            Some(flow_doc(&wb, "Alpha flow", &["x"])),
        ),
        ("GET", fbp.clone(), None),
        ("PATCH", fbp.clone(), Some(flow_patch.clone())),
        ("DELETE", fbp.clone(), None),
        ("POST", format!("{fbp}/start"), None),
        ("POST", format!("/v2/flows/{fb2}/stop"), None),
        ("DELETE", format!("/v2/flows/{fb2}"), None),
        ("GET", format!("{fbp}/snapshots"), None),
        ("GET", format!("{fbp}/snapshots/bravo_step_one"), None),
        ("GET", format!("{fbp}/snapshots/no_such_step"), None),
        (
            "POST",
            format!("{fbp}/snapshots"),
            Some(snapshot_doc("bravo_step_two", json!(1))),
        ),
        (
            "PATCH",
            format!("{fbp}/snapshots/bravo_step_one"),
            Some(snap.clone()),
        ),
        ("DELETE", format!("{fbp}/snapshots/bravo_step_one"), None),
        ("GET", format!("/v1/tasks/{fb}/steps/bravo_step_one"), None),
        ("GET", format!("/v1/tasks/{fb}/steps/nothing"), None),
        ("GET", format!("/v2/users/{}", b.id), None),
        ("DELETE", format!("/v2/users/{}", b.id), None),
        ("POST", format!("/v2/users/{}/api-key", b.id), None),
    ];
    for (method, path, body) in &calls {
        let what = format!("A: {method} {path}");
        let request = format!(
            "{path} {}",
            body.as_ref().map(Value::to_string).unwrap_or_default()
        );
        let before = s.state();
        let r = match body {
            Some(b) => s.send(method, path, &a, b),
            None => s.request(method, path, Some(&a.auth()), &[], None),
        };
        check_error(&r, 403, &what);
        assert!(
            before == s.state(),
            "{what}: the refused request changed the database"
        );
        check_no_leak(&what, &request, &r);
    }

    // A's own lists and reads show nothing of B.
    for path in [
        "/v2/workspaces".to_string(),
        "/v2/workspaces?page[size]=1".to_string(),
        "/v2/users/me".to_string(),
        "/v2/contracts".to_string(),
        format!("/v2/workspaces/{wa}"),
        format!("/v2/workspaces/{wa}/members"),
        format!("/v2/flows?workspace_id={wa}"),
        format!("/v2/flows/{fa}"),
        format!("/v2/flows/{fa}/snapshots"),
        format!("/v1/tasks/{fa}/steps/alpha_step"),
    ] {
        let r = s.get(&path, &a);
        assert_eq!(r.status, 200, "A: GET {path}: {}", r.text());
        check_no_leak(&format!("A: GET {path}"), &path, &r);
    }
    let r = s.get("/v2/workspaces", &a);
    let list = collection(&r, "/v2/workspaces", 1, 50, 1, 1, "A's workspaces");
    assert_eq!(ids(&list), vec![wa.clone()]);
    let r = s.get(&format!("/v2/flows?workspace_id={wa}"), &a);
    assert_eq!(r.json()["meta"]["total"], 1, "A's flows: only A's");
    refuse(&s, "A lists users", 403, || s.get("/v2/users", &a));

    // A's flow cannot be moved into B's workspace by a PATCH naming it.
    let moved = s.patch(
        &format!("/v2/flows/{fa}"),
        &a,
        &json!({"data": {"type": "flow", "id": fa, "attributes": {},
                "relationships": {"workspace": {"data": {"id": wb, "type": "workspace"}}}}}),
    );
    assert!(
        moved.status == 200 || (400..500).contains(&moved.status),
        "A moves its flow: {}",
        moved.text()
    );
    let v = ok(
        s.get(&format!("/v2/flows/{fa}"), &a),
        200,
        "A's flow after the move attempt",
    );
    assert_eq!(
        v["data"]["relationships"]["workspace"]["data"]["id"],
        wa.as_str(),
        "flow stays in A's workspace"
    );
    let r = s.get(&format!("/v2/flows?workspace_id={wb}"), &b);
    assert_eq!(r.json()["meta"]["total"], 2, "B's flows unchanged");

    // And B still has everything.
    let v = ok(s.get(&wbp, &b), 200, "B reads its workspace");
    assert_eq!(v["data"]["attributes"]["name"], "Bravo secret space");
    let v = ok(
        s.get(&format!("{fbp}/snapshots/bravo_step_one"), &b),
        200,
        "B's snapshot",
    );
    assert_eq!(
        v["data"]["attributes"]["snapshot"],
        json!({"bravo_secret": "sauce-42"})
    );
    let v = ok(
        s.get(&format!("/v2/flows/{fb2}"), &b),
        200,
        "B's running flow",
    );
    assert_eq!(v["data"]["attributes"]["status"], "active");
}

/// Spec 1: "A value that is not a positive integer is 400; a page[size] above the maximum (100)
/// is lowered to it; a page past the end is 200 with data: []". A positive integer too large for
/// 64 bits is still a positive integer.
#[test]
fn huge_page_values_are_positive_integers() {
    let s = Server::start();
    let p = "/v2/users?page[size]=99999999999999999999";
    collection(
        &s.get(p, &s.admin),
        p,
        1,
        100,
        1,
        1,
        "huge page[size] is lowered",
    );
    let r = s.get("/v2/users?page[number]=99999999999999999999", &s.admin);
    assert_eq!(
        r.status,
        200,
        "huge page[number] is past the end: {}",
        r.text()
    );
    assert_eq!(r.json()["data"], json!([]), "huge page[number]");
}
