//! The console's files (spec section 12): served at `/` and under `/console/{hash}/` without
//! authentication, with the security and cache headers, small, own origin only. What the console
//! does in a browser is tested by `scripts/browser-test.sh` (tests/browser/console_test.py).

mod common;
use common::*;

const CSP_MUST: &[&str] = &[
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "connect-src 'self'",
    "frame-ancestors 'none'",
    "base-uri 'none'",
    "form-action 'self'",
];

#[track_caller]
fn assert_secured(r: &Resp) {
    let csp = r.header("Content-Security-Policy").expect("CSP header");
    for must in CSP_MUST {
        assert!(csp.contains(must), "CSP {csp:?} lacks {must:?}");
    }
    assert!(!csp.contains("unsafe-"), "{csp}");
    assert!(!csp.contains("http:") && !csp.contains("https:"), "{csp}");
    assert_eq!(r.header("X-Content-Type-Options"), Some("nosniff"));
    assert_eq!(r.header("Referrer-Policy"), Some("no-referrer"));
}

fn get_anon(s: &Server, path: &str, headers: &[(&str, &str)]) -> Resp {
    s.request("GET", path, None, headers, None)
}

/// The hashed file URLs that the page names (`src` and `href` under /console/).
fn file_urls(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    for attr in ["src=\"", "href=\""] {
        for part in html.split(attr).skip(1) {
            let url = part.split('"').next().unwrap_or("");
            if url.starts_with("/console/") && !out.contains(&url.to_string()) {
                out.push(url.to_string());
            }
        }
    }
    out
}

/// Every file the page loads.
fn all_files(s: &Server, html: &str) -> Vec<(String, Resp)> {
    file_urls(html)
        .into_iter()
        .map(|url| {
            let r = get_anon(s, &url, &[]);
            (url, r)
        })
        .collect()
}

#[test]
fn the_page_and_its_files_load_without_credentials_with_security_and_cache_headers() {
    let s = Server::start();
    let before = s.state();
    let page = get_anon(&s, "/", &[]);
    assert_eq!(page.status, 200, "{}", page.text());
    assert_eq!(
        page.header("Content-Type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(page.header("Cache-Control"), Some("no-cache"));
    assert!(page.header("WWW-Authenticate").is_none());
    assert_secured(&page);
    let html = page.text();
    assert!(html.contains("<html lang=\"en\">"));
    // No inline script or style: every <script> has a src, no style attribute or element.
    assert_eq!(
        html.matches("<script").count(),
        html.matches("<script type=\"module\" src=\"/console/")
            .count()
    );
    assert!(!html.contains(" style=") && !html.contains("<style"));

    // The page loads two files (one stylesheet, one module assembled from console/*.js) and
    // nothing else: its icons are inline.
    let files = all_files(&s, &html);
    let mut names: Vec<&str> = files
        .iter()
        .map(|(u, _)| u.rsplit('/').next().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["app.css", "app.js"]);
    assert!(
        !html
            .replace("http://www.w3.org/2000/svg", "")
            .contains("http"),
        "{html}"
    );
    let mut total = html.len();
    for (url, r) in &files {
        assert_eq!(r.status, 200, "{url}: {}", r.text());
        assert_secured(r);
        assert_eq!(
            r.header("Cache-Control"),
            Some("public, max-age=31536000, immutable"),
            "{url}"
        );
        let want = match url.rsplit('.').next().unwrap() {
            "js" => "text/javascript; charset=utf-8",
            "css" => "text/css; charset=utf-8",
            other => panic!("unexpected file type {other}"),
        };
        assert_eq!(r.header("Content-Type"), Some(want), "{url}");
        let text = r.text();
        // Every value and name is shown as text: no markup parsing anywhere in the console.
        for banned in [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "eval(",
            "new Function",
        ] {
            assert!(!text.contains(banned), "{url} uses {banned}");
        }
        // Own origin only: no address of another host (the SVG namespace is a name, not a request).
        let hosts = text.replace("http://www.w3.org/2000/svg", "");
        assert!(
            !hosts.contains("http://") && !hosts.contains("https://") && !hosts.contains("//cdn"),
            "{url}"
        );
        total += r.body.len();
    }
    assert!(
        total < 150 * 1024,
        "the console is {total} bytes; the limit is 150 KB"
    );
    // All files live under one hashed prefix, which the page names.
    let prefixes: std::collections::BTreeSet<&str> = files
        .iter()
        .map(|(u, _)| u.rsplit_once('/').unwrap().0)
        .collect();
    assert_eq!(prefixes.len(), 1, "{prefixes:?}");
    let prefix = prefixes.into_iter().next().unwrap();
    assert_eq!(prefix.len(), "/console/".len() + 16, "{prefix}");
    assert_eq!(s.state(), before, "loading the console changed nothing");
}

#[test]
fn the_page_is_revalidated_by_its_etag() {
    let s = Server::start();
    let page = get_anon(&s, "/", &[]);
    let etag = page.header("ETag").expect("ETag").to_string();
    assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");
    let again = get_anon(&s, "/", &[("If-None-Match", &etag)]);
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());
    assert_eq!(again.header("ETag"), Some(etag.as_str()));
    assert_secured(&again);
    let other = get_anon(&s, "/", &[("If-None-Match", "\"0000000000000000\"")]);
    assert_eq!(other.status, 200);
    assert_eq!(other.text(), page.text());
    // The same binary answers the same page and ETag after a restart.
    let mut s = s;
    s.restart();
    let after = get_anon(&s, "/", &[]);
    assert_eq!(after.header("ETag"), Some(etag.as_str()));
    assert_eq!(after.text(), page.text());
}

#[test]
fn console_refusals_are_json_errors_with_the_same_headers_and_change_nothing() {
    let s = Server::start();
    let page = get_anon(&s, "/", &[]).text();
    let app = file_urls(&page)
        .into_iter()
        .find(|u| u.ends_with("/app.js"))
        .unwrap();
    let prefix = app.strip_suffix("/app.js").unwrap().to_string();
    let before = s.state();
    let cases: Vec<(&str, String, u16)> = vec![
        ("POST", "/".into(), 405),
        ("DELETE", "/".into(), 405),
        ("PATCH", app.clone(), 405),
        ("GET", "/console/0000000000000000/app.js".into(), 404),
        ("GET", format!("{prefix}/nothing.js"), 404),
        ("GET", format!("{prefix}/"), 404),
        ("GET", format!("{prefix}/../app.js"), 404),
        ("GET", format!("{prefix}/app.js/x"), 404),
        ("GET", "/console".into(), 404),
        ("GET", "/console/".into(), 404),
    ];
    for (method, path, status) in &cases {
        let r = s.request(method, path, None, &[], None);
        assert_eq!(r.status, *status, "{method} {path}: {}", r.text());
        assert_error_doc(&r, *status);
        assert_secured(&r);
        if *status == 405 {
            assert_eq!(r.header("Allow"), Some("GET"), "{method} {path}");
        }
        assert!(
            r.header("Cache-Control")
                .is_none_or(|c| !c.contains("immutable")),
            "{path}"
        );
    }
    assert_eq!(s.state(), before);
}

#[test]
fn everything_else_still_needs_credentials() {
    let s = Server::start();
    // The console's files need none, and ignore a wrong one.
    let r = s.request(
        "GET",
        "/",
        Some(&basic("admin@example.com", "wrong")),
        &[],
        None,
    );
    assert_eq!(r.status, 200);
    // The API still answers 401 first, as before, also on paths near the console's.
    for path in [
        "/v2/users/me",
        "/index.html",
        "/consoles",
        "/v2/console",
        "/favicon.ico",
    ] {
        let r = get_anon(&s, path, &[]);
        r.expect(401);
        assert!(r.header("WWW-Authenticate").is_some(), "{path}");
    }
    s.get("/v2/users/me", &s.admin).expect(200);
}

#[test]
fn the_module_is_every_console_file_without_imports_and_each_top_level_name_once() {
    let s = Server::start();
    let html = get_anon(&s, "/", &[]).text();
    let app = file_urls(&html)
        .into_iter()
        .find(|u| u.ends_with("/app.js"))
        .unwrap();
    let js = get_anon(&s, &app, &[]).text();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("console");
    let mut sources: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".js"))
        .collect();
    sources.sort();
    let mut names = std::collections::BTreeMap::new();
    for file in &sources {
        assert!(
            js.contains(&format!("// --- {file}")),
            "{file} is not in the module"
        );
        let text = std::fs::read_to_string(dir.join(file)).unwrap();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("import ") {
                // Imports name only modules of the console.
                let from = rest.split("from '").nth(1).unwrap_or("");
                assert!(
                    from.starts_with("./") && sources.iter().any(|f| from == format!("./{f}';")),
                    "{file}: {line}"
                );
            }
            let decl = line.strip_prefix("export ").unwrap_or(line);
            let decl = decl.strip_prefix("async ").unwrap_or(decl);
            for kw in ["function ", "const ", "let ", "class "] {
                if let Some(rest) = decl.strip_prefix(kw) {
                    let name: String = rest
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    if let Some(other) = names.insert(name.clone(), file.clone()) {
                        panic!("{name} is declared at the top of both {other} and {file}");
                    }
                }
            }
        }
    }
    assert!(names.len() > 50, "{names:?}");
    assert!(!js
        .lines()
        .any(|l| l.starts_with("import ") || l.starts_with("export ")));
}

#[test]
fn console_requests_are_counted_by_route_template_not_by_file() {
    let s = Server::start();
    let html = get_anon(&s, "/", &[]).text();
    for url in file_urls(&html) {
        assert_eq!(get_anon(&s, &url, &[]).status, 200);
    }
    get_anon(&s, "/console/0000000000000000/x.js", &[]);
    let m = get_anon(&s, "/metrics", &[]).text();
    let line = |route: &str, status: u16| {
        m.lines()
            .find(|l| {
                l.starts_with("flowsnap_http_requests_total{")
                    && l.contains(&format!("route=\"{route}\""))
                    && l.contains(&format!("status=\"{status}\""))
                    && l.contains("method=\"GET\"")
            })
            .map(|l| l.rsplit(' ').next().unwrap().to_string())
    };
    assert_eq!(line("/", 200).as_deref(), Some("1"), "{m}");
    assert_eq!(
        line("/console/{hash}/{file}", 200).as_deref(),
        Some("2"),
        "{m}"
    );
    assert_eq!(
        line("/console/{hash}/{file}", 404).as_deref(),
        Some("1"),
        "{m}"
    );
    let hash = file_urls(&html)[0].split('/').nth(2).unwrap().to_string();
    assert!(!m.contains(&hash) && !m.contains("app.js"), "{m}");
}
