//! Test harness: starts the real `flowsnap` binary on 127.0.0.1 port 0 with a fresh temporary
//! database, and speaks HTTP/1.1 to it over a plain TCP socket (so tests can also send what no
//! well-behaved client would).
#![allow(dead_code)]

use base64::Engine;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_flowsnap");

/// A user as the tests know it: its id, e-mail and API key.
#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    pub email: String,
    pub key: String,
}

impl User {
    pub fn auth(&self) -> String {
        basic(&self.email, &self.key)
    }
}

pub fn basic(user: &str, secret: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{secret}"))
    )
}

#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "response is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    /// Asserts the status and, for errors, the error document of spec section 2.
    #[track_caller]
    pub fn expect(&self, status: u16) -> &Resp {
        assert_eq!(
            self.status,
            status,
            "unexpected status; body: {}",
            self.text()
        );
        if status >= 400 {
            assert_error_doc(self, status);
        }
        self
    }
    pub fn id(&self) -> String {
        self.json()["data"]["id"]
            .as_str()
            .expect("data.id")
            .to_string()
    }
}

#[track_caller]
pub fn assert_error_doc(r: &Resp, status: u16) {
    assert_eq!(
        r.header("Content-Type"),
        Some("application/json"),
        "{}",
        r.text()
    );
    let v = r.json();
    let e = &v["errors"][0];
    assert_eq!(e["status"], status, "{v}");
    assert_eq!(e["code"], status, "{v}");
    assert!(e["title"].as_str().is_some_and(|t| !t.is_empty()), "{v}");
    assert!(
        e["detail"].as_str().is_some_and(|t| t.len() > 10),
        "detail must say what to do: {v}"
    );
}

pub struct Server {
    pub dir: PathBuf,
    pub addr: String,
    pub admin: User,
    child: Option<Child>,
    pub log: Arc<Mutex<Vec<String>>>,
    env: Vec<(String, String)>,
    /// Lines the server wrote on stdout (servers started by `start_serving`).
    pub stdout: Arc<Mutex<Vec<String>>>,
}

fn temp_dir() -> PathBuf {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let d = std::env::temp_dir().join(format!(
        "flowsnap-test-{}-{n}-{}",
        std::process::id(),
        rand_suffix()
    ));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(Instant::now().elapsed().as_nanos() as u64);
    h.finish()
}

impl Server {
    pub fn start() -> Server {
        Server::start_with(&[])
    }

    /// Starts a server with extra `FLOWSNAP_*` settings.
    pub fn start_with(env: &[(&str, &str)]) -> Server {
        let dir = temp_dir();
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut s = Server {
            dir,
            addr: String::new(),
            admin: User {
                id: String::new(),
                email: String::new(),
                key: String::new(),
            },
            child: None,
            log: Arc::new(Mutex::new(Vec::new())),
            env,
            stdout: Arc::new(Mutex::new(Vec::new())),
        };
        let admin_key = s.spawn();
        let key = admin_key.expect("first start prints the admin key");
        let mut admin = User {
            id: String::new(),
            email: "admin@example.com".into(),
            key,
        };
        let me = s.get("/v2/users/me", &admin);
        me.expect(200);
        admin.id = me.id();
        s.admin = admin;
        s
    }

    pub fn db(&self) -> PathBuf {
        self.dir.join("flowsnap.db")
    }

    /// A new temporary directory for a server started by `start_serving` (fixture files, a
    /// database).
    pub fn new_dir() -> PathBuf {
        temp_dir()
    }

    /// Runs `flowsnap ARGS` (a `serve` with `--listen 127.0.0.1:0`) with `dir` as its working
    /// directory (removed when the server is dropped), and waits for the readiness line on
    /// stdout: returns the server (its `admin` is `admin`) and the line. `Err` carries stderr
    /// when the process exits before it is ready.
    pub fn start_serving(
        dir: PathBuf,
        args: &[&str],
        admin: User,
    ) -> Result<(Server, Value), String> {
        let mut child = Command::new(BIN)
            .args(args)
            .current_dir(&dir)
            .env("FLOWSNAP_LOG_LEVEL", "info")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn flowsnap");
        let log = Arc::new(Mutex::new(Vec::new()));
        let stdout_lines = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().expect("stderr");
        let stdout = child.stdout.take().expect("stdout");
        let l = log.clone();
        let stderr_done = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                l.lock().unwrap().push(line);
            }
        });
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let o = stdout_lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                o.lock().unwrap().push(line.clone());
                let _ = tx.send(line);
            }
        });
        let line = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                let _ = stderr_done.join();
                let log = log.lock().unwrap().join("\n");
                return Err(log);
            }
        };
        let ready: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("the readiness line is not JSON ({e}): {line}"));
        // stderr is a pipe of its own, read by another thread: what the server wrote there
        // before the readiness line (the admin key, the demo's keys, then "listening on") may
        // not have been read yet. Wait for its last line, so that a test reads the log whole.
        let caught_up = Instant::now() + Duration::from_secs(20);
        while !log
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("listening on"))
            && Instant::now() < caught_up
        {
            std::thread::sleep(Duration::from_millis(10));
        }
        let addr = ready["url"]
            .as_str()
            .and_then(|u| u.strip_prefix("http://"))
            .unwrap_or_else(|| panic!("no url in the readiness line: {line}"))
            .to_string();
        let s = Server {
            dir,
            addr,
            admin,
            child: Some(child),
            log,
            env: Vec::new(),
            stdout: stdout_lines,
        };
        Ok((s, ready))
    }

    /// Spawns the binary; returns the admin key when it printed one.
    fn spawn(&mut self) -> Option<String> {
        let mut cmd = Command::new(BIN);
        cmd.arg("--db")
            .arg(self.db())
            .args(["serve", "--listen", "127.0.0.1:0"]);
        cmd.env("FLOWSNAP_LOG_LEVEL", "info").env_remove("RUST_LOG");
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn flowsnap");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let log = self.log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                log.lock().unwrap().push(line.clone());
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut key = None;
        let mut next_is_key = false;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = rx
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("server did not start: {:?}", self.log.lock().unwrap()));
            if next_is_key && !line.trim().is_empty() {
                key = Some(line.trim().to_string());
                next_is_key = false;
            }
            if line.contains("shown only now") {
                // With log_format = "json" the key is a member of the same line.
                match serde_json::from_str::<Value>(&line) {
                    Ok(v) if v["api_key"].is_string() => {
                        key = v["api_key"].as_str().map(str::to_string);
                    }
                    _ => next_is_key = true,
                }
            }
            if let Some(rest) = line.split("listening on http://").nth(1) {
                self.addr = rest.split_whitespace().next().unwrap().to_string();
                break;
            }
        }
        self.child = Some(child);
        key
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Sends SIGTERM and returns the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        unsafe_kill(child.id(), "TERM");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(st) = child.try_wait().expect("wait") {
                return st;
            }
            assert!(
                Instant::now() < deadline,
                "server did not exit after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL, no goodbye.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Sets (or replaces) a `FLOWSNAP_*` setting for the next start.
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_string(), value.to_string()));
    }

    /// Sends a raw JSON text body.
    pub fn send_raw(
        &self,
        method: &str,
        path: &str,
        u: &User,
        body: &str,
        headers: &[(&str, &str)],
    ) -> Resp {
        let mut h = vec![("Content-Type", "application/json")];
        h.extend_from_slice(headers);
        self.request(method, path, Some(&u.auth()), &h, Some(body.as_bytes()))
    }

    /// Stops the server (SIGTERM) and starts it again on the same database.
    pub fn restart(&mut self) {
        let st = self.terminate();
        assert!(st.success(), "{st:?}");
        assert!(
            self.spawn().is_none(),
            "a second start must not create another admin"
        );
    }

    /// Starts the server again after `kill`, on the same database.
    pub fn respawn(&mut self) {
        assert!(self.child.is_none(), "kill it first");
        assert!(
            self.spawn().is_none(),
            "a second start must not create another admin"
        );
    }

    /// Runs the binary's command line on this server's database.
    pub fn cli(&self, args: &[&str], stdin: Option<&str>) -> std::process::Output {
        let mut cmd = Command::new(BIN);
        cmd.arg("--db")
            .arg(self.db())
            .args(args)
            .env("FLOWSNAP_LOG_LEVEL", "info");
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn cli");
        if let Some(input) = stdin {
            child
                .stdin
                .take()
                .unwrap()
                .write_all(input.as_bytes())
                .unwrap();
        } else {
            drop(child.stdin.take());
        }
        child.wait_with_output().expect("cli output")
    }

    /// Creates a user through the command line and returns it with its key.
    pub fn user(&self, email: &str) -> User {
        let out = self.cli(
            &[
                "user",
                "create",
                "--email",
                email,
                "--first-name",
                "Test",
                "--last-name",
                "User",
            ],
            None,
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stdout).expect("user create prints JSON");
        User {
            id: v["id"].as_str().unwrap().into(),
            email: v["email"].as_str().unwrap().into(),
            key: v["api_key"].as_str().unwrap().into(),
        }
    }

    pub fn raw(&self, request: &[u8]) -> Resp {
        let mut s = TcpStream::connect(&self.addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        s.write_all(request).expect("write");
        read_response(&mut s)
    }

    /// Like `request`, but `None` when the server is gone (connection refused, reset, or a
    /// response cut short): the outcome of the request is unknown.
    pub fn try_request(
        &self,
        method: &str,
        path: &str,
        auth: &str,
        body: Option<&str>,
    ) -> Option<Resp> {
        let mut s = TcpStream::connect(&self.addr).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
        let body = body.unwrap_or("");
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: {auth}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        s.write_all(req.as_bytes()).ok()?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).ok()?;
        let r = parse_response(&buf)?;
        let complete = match r
            .header("Content-Length")
            .and_then(|v| v.parse::<usize>().ok())
        {
            Some(n) => r.body.len() == n,
            None => r.status == 204,
        };
        complete.then_some(r)
    }

    pub fn request(
        &self,
        method: &str,
        path: &str,
        auth: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Resp {
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
            self.addr
        );
        if let Some(a) = auth {
            req.push_str(&format!("Authorization: {a}\r\n"));
        }
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        let body = body.unwrap_or(b"");
        if !body.is_empty() || matches!(method, "POST" | "PATCH" | "PUT") {
            req.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        req.push_str("\r\n");
        let mut bytes = req.into_bytes();
        bytes.extend_from_slice(body);
        self.raw(&bytes)
    }

    pub fn get(&self, path: &str, u: &User) -> Resp {
        self.request("GET", path, Some(&u.auth()), &[], None)
    }
    pub fn get_with(&self, path: &str, u: &User, headers: &[(&str, &str)]) -> Resp {
        self.request("GET", path, Some(&u.auth()), headers, None)
    }
    pub fn send(&self, method: &str, path: &str, u: &User, body: &Value) -> Resp {
        self.send_with(method, path, u, body, &[])
    }
    pub fn send_with(
        &self,
        method: &str,
        path: &str,
        u: &User,
        body: &Value,
        headers: &[(&str, &str)],
    ) -> Resp {
        let mut h = vec![("Content-Type", "application/json")];
        h.extend_from_slice(headers);
        self.request(
            method,
            path,
            Some(&u.auth()),
            &h,
            Some(body.to_string().as_bytes()),
        )
    }
    pub fn post(&self, path: &str, u: &User, body: &Value) -> Resp {
        self.send("POST", path, u, body)
    }
    pub fn patch(&self, path: &str, u: &User, body: &Value) -> Resp {
        self.send("PATCH", path, u, body)
    }
    pub fn delete(&self, path: &str, u: &User) -> Resp {
        self.request("DELETE", path, Some(&u.auth()), &[], None)
    }

    /// Creates a workspace owned by `u`.
    pub fn workspace(&self, u: &User, name: &str) -> String {
        let r = self.post(
            "/v2/workspaces",
            u,
            &json!({"data": {"type": "workspace", "attributes": {"name": name}}}),
        );
        r.expect(201);
        r.id()
    }

    pub fn add_member(&self, owner: &User, ws: &str, user: &User, role: &str) {
        self.post(
            &format!("/v2/workspaces/{ws}/members"),
            owner,
            &json!({"data": {"type": "member", "id": user.id, "attributes": {"roles": [role]}}}),
        )
        .expect(200);
    }

    /// Creates a flow in `ws` whose graph is a chain of `steps`.
    pub fn flow(&self, u: &User, ws: &str, steps: &[&str]) -> String {
        let r = self.post("/v2/flows", u, &flow_doc(ws, "flow", steps));
        r.expect(201);
        r.id()
    }

    /// Every row of every table, as text, except `users.last_login` (which a login changes): two
    /// equal dumps mean nothing changed.
    pub fn state(&self) -> String {
        state_of(&self.db())
    }

    /// `state` without the audit log, which keeps the ids of deleted things by design (spec
    /// section 10: events of deleted workspaces stay).
    pub fn state_without_audit(&self) -> String {
        self.state()
            .split("== ")
            .filter(|t| !t.starts_with("audit_events\n") && !t.starts_with("sqlite_sequence\n"))
            .collect::<Vec<_>>()
            .join("== ")
    }
}

pub fn graph(steps: &[&str]) -> Value {
    let nodes: Vec<Value> = steps
        .iter()
        .map(|s| json!({"id": s, "command": format!("elasticio/test:{s}@1.0.0"), "name": s, "fields": {"step": s}}))
        .collect();
    let edges: Vec<Value> = steps
        .windows(2)
        .map(|w| json!({"source": w[0], "target": w[1]}))
        .collect();
    json!({"nodes": nodes, "edges": edges})
}

pub fn flow_doc(ws: &str, name: &str, steps: &[&str]) -> Value {
    json!({"data": {"type": "flow", "attributes": {"name": name, "type": "ordinary", "graph": graph(steps)},
                    "relationships": {"workspace": {"data": {"id": ws, "type": "workspace"}}}}})
}

pub fn snapshot_doc(step: &str, value: Value) -> Value {
    json!({"data": {"type": "snapshot", "id": step, "attributes": {"snapshot": value}}})
}

pub fn state_of(db: &Path) -> String {
    let c = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .expect("open db");
    let mut out = String::new();
    let tables: Vec<String> = c
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    for t in tables {
        let cols = if t == "users" {
            "pk, id, email, first_name, last_name, password_hash, api_key_hash, tenant_admin, registered".to_string()
        } else {
            "*".to_string()
        };
        let mut st = c
            .prepare(&format!("SELECT {cols} FROM {t} ORDER BY 1, 2"))
            .unwrap();
        let n = st.column_count();
        let mut rows = st.query([]).unwrap();
        out.push_str(&format!("== {t}\n"));
        while let Some(row) = rows.next().unwrap() {
            for i in 0..n {
                let v: rusqlite::types::Value = row.get(i).unwrap();
                out.push_str(&format!("{v:?}|"));
            }
            out.push('\n');
        }
    }
    out
}

pub fn unsafe_kill(pid: u32, signal: &str) {
    let st = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .expect("kill");
    assert!(st.success());
}

pub fn read_response(s: &mut TcpStream) -> Resp {
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    parse_response(&buf)
        .unwrap_or_else(|| panic!("no HTTP response: {:?}", String::from_utf8_lossy(&buf)))
}

pub fn parse_response(buf: &[u8]) -> Option<Resp> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| {
            l.split_once(':')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        })
        .collect();
    let rest = &buf[end + 4..];
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("Transfer-Encoding") && v.contains("chunked"));
    let body = if chunked {
        let mut out = Vec::new();
        let mut r = rest;
        loop {
            let nl = r.windows(2).position(|w| w == b"\r\n")?;
            let size =
                usize::from_str_radix(std::str::from_utf8(&r[..nl]).ok()?.trim(), 16).ok()?;
            if size == 0 {
                break;
            }
            out.extend_from_slice(&r[nl + 2..nl + 2 + size]);
            r = &r[nl + 2 + size + 2..];
        }
        out
    } else if let Some(len) = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("Content-Length"))
        .and_then(|(_, v)| v.parse::<usize>().ok())
    {
        rest[..len.min(rest.len())].to_vec()
    } else {
        rest.to_vec()
    };
    Some(Resp {
        status,
        headers,
        body,
    })
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A database as an earlier flowsnap left it: `schema.sql` (version 1), plus the `flows_head`
/// index for version 2, with one user, workspace, flow of two steps and one snapshot of `value`
/// (revision 4, generation 9, changed at `updated_at` ms). For the migration tests.
pub fn legacy_db(path: &Path, version: i64, value: &str, updated_at: i64) {
    let _ = std::fs::remove_file(path);
    let c = rusqlite::Connection::open(path).unwrap();
    c.execute_batch("PRAGMA page_size = 8192; PRAGMA journal_mode = WAL;")
        .unwrap();
    c.execute_batch(include_str!("../../schema.sql")).unwrap();
    if version >= 2 {
        c.execute_batch("CREATE INDEX flows_head ON flows (id, workspace_pk, status);")
            .unwrap();
    }
    c.execute_batch(&format!(
        "PRAGMA user_version = {version};
         INSERT INTO contracts (pk, id, name, created_at) VALUES (1, 'c00000000000000000000001', 'C', 0);
         INSERT INTO users (pk, id, email, api_key_hash, tenant_admin, registered)
             VALUES (1, 'a00000000000000000000001', 'old@example.com', 'x', 1, 0);
         INSERT INTO workspaces (pk, id, contract_pk, name, created_at, updated_at)
             VALUES (7, 'b00000000000000000000007', 1, 'W', 0, 0);
         INSERT INTO members (workspace_pk, user_pk, role, added_at) VALUES (7, 1, 'owner', 0);
         INSERT INTO flows (pk, id, workspace_pk, creator_id, name, type, status,
                            default_mapper_type, graph, nodes_config, created_at, updated_at)
             VALUES (3, 'f00000000000000000000003', 7, 'a00000000000000000000001', 'F',
                     'ordinary', 'inactive', 'jsonata', '{{}}', '{{}}', 0, 0);
         INSERT INTO steps (flow_pk, step_id, position) VALUES (3, 's1', 0), (3, 's2', 1);
         INSERT INTO snapshots (flow_pk, step_id, value, revision, generation, updated_at)
             VALUES (3, 's1', '{}', 4, 9, {updated_at});
         UPDATE counters SET value = 9;",
        value.replace('\'', "''")
    ))
    .unwrap();
}
