//! The web console (spec section 12): `GET /` and the files under `/console/{hash}/`, embedded
//! in the binary at compile time from `console/`. It needs no authentication to load: everything
//! it shows it fetches from the API with the credentials the person types in.
//!
//! Caching: the file URLs carry a hash of all the embedded files, so a browser may keep them for a
//! year (`immutable`); a new binary with other files has another hash and so other URLs. The page
//! at `/` names those URLs, so it is revalidated on every load (`no-cache` with an `ETag`, answered
//! by `304` while the binary is the same). A request for another hash is 404: a page from an older
//! binary must not mix with the files of a newer one.

use super::method_not_allowed;
use crate::error::{Error, Result};
use blake2::{Blake2s256, Digest};
use rouille::{Request, Response};
use std::sync::OnceLock;

/// The path prefix of the console's files.
pub const PREFIX: &str = "/console/";

/// Content-Security-Policy of every console response: its own origin only, no inline script or
/// style, no framing, no `<base>`; images also from `data:` (none is used today).
pub const CSP: &str =
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; font-src 'self'; object-src 'none'; frame-ancestors 'none'; \
     base-uri 'none'; form-action 'self'";

/// The page: `%BASE%` is replaced by the hashed prefix of the files.
const INDEX: &str = include_str!("../../console/index.html");

/// The console's ES modules, in dependency order. They are served as one module, `app.js`,
/// assembled at start (see `assemble`): a browser then loads the page with two requests besides
/// `/` instead of a burst over several new connections, which the HTTP layer (tiny_http 0.12)
/// may leave unread until another connection closes (README, "The HTTP layer's limits").
const MODULES: &[(&str, &str)] = &[
    ("json.js", include_str!("../../console/json.js")),
    ("diff.js", include_str!("../../console/diff.js")),
    ("api.js", include_str!("../../console/api.js")),
    ("ui.js", include_str!("../../console/ui.js")),
    ("pages.js", include_str!("../../console/pages.js")),
    ("snapshot.js", include_str!("../../console/snapshot.js")),
    ("app.js", include_str!("../../console/app.js")),
];

const CSS: &[u8] = include_bytes!("../../console/app.css");

/// One module from the modules: their `import` lines dropped (every import is one line, of a
/// module named here) and their `export` keywords removed. Top-level names are unique across the
/// files, which `tests/console.rs` checks.
fn assemble() -> String {
    let mut out =
        String::from("// flowsnap console: console/*.js assembled in dependency order.\n");
    for (name, text) in MODULES {
        out.push_str(&format!("\n// --- {name}\n"));
        for line in text.lines() {
            if line.starts_with("import ") {
                continue;
            }
            out.push_str(line.strip_prefix("export ").unwrap_or(line));
            out.push('\n');
        }
    }
    out
}

struct Built {
    /// 16 hex digits of a BLAKE2s hash of every embedded file.
    hash: String,
    /// The assembled module.
    js: String,
    /// `index.html` with the hashed prefix filled in.
    index: String,
    /// The strong ETag of `index`.
    etag: String,
}

fn built() -> &'static Built {
    static BUILT: OnceLock<Built> = OnceLock::new();
    BUILT.get_or_init(|| {
        let js = assemble();
        let mut h = Blake2s256::new();
        for part in [INDEX.as_bytes(), CSS, js.as_bytes()] {
            h.update((part.len() as u64).to_le_bytes());
            h.update(part);
        }
        let digest = h.finalize();
        let hash: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        let index = INDEX.replace("%BASE%", &format!("{PREFIX}{hash}"));
        Built {
            etag: format!("\"{hash}\""),
            hash,
            js,
            index,
        }
    })
}

/// The hashed prefix of the files, e.g. `/console/0123456789abcdef` (for tests and the README).
pub fn base() -> String {
    format!("{PREFIX}{}", built().hash)
}

/// The headers every console response carries.
fn secured(r: Response) -> Response {
    r.with_additional_header("Content-Security-Policy", CSP)
        .with_additional_header("X-Content-Type-Options", "nosniff")
        .with_additional_header("Referrer-Policy", "no-referrer")
        .with_additional_header("X-Frame-Options", "DENY")
        .with_additional_header("Cross-Origin-Opener-Policy", "same-origin")
}

/// True for the paths the console answers: `/` and everything under `/console/`.
pub fn owns(path: &str) -> bool {
    path == "/" || path.is_empty() || path.starts_with(PREFIX) || path == "/console"
}

/// The route template of a console path, for the metrics (never the hash or a file name).
pub fn template(path: &str) -> &'static str {
    if path == "/" || path.is_empty() {
        "/"
    } else {
        "/console/{hash}/{file}"
    }
}

/// Answers a console path (see `owns`), before any authentication. Its errors (404, 405) carry
/// the same security headers as its files.
pub fn serve(req: &Request, path: &str) -> Response {
    answer(req, path).unwrap_or_else(|e| secured(super::error_response(&e)))
}

fn answer(req: &Request, path: &str) -> Result<Response> {
    let method = req.method();
    if method != "GET" && method != "HEAD" {
        return Err(method_not_allowed("GET"));
    }
    let b = built();
    if path == "/" || path.is_empty() {
        let fresh = req
            .header("If-None-Match")
            .is_some_and(|v| v.split(',').any(|t| t.trim() == b.etag || t.trim() == "*"));
        let r = if fresh {
            Response::text("").with_status_code(304)
        } else {
            Response::from_data("text/html; charset=utf-8", b.index.as_bytes().to_vec())
        };
        return Ok(secured(
            r.with_additional_header("Cache-Control", "no-cache")
                .with_additional_header("ETag", b.etag.clone()),
        ));
    }
    let rest = path.strip_prefix(PREFIX).unwrap_or("");
    let file = match rest.split_once('/') {
        Some((hash, name)) if hash == b.hash => match name {
            "app.js" => Some(("text/javascript; charset=utf-8", b.js.as_bytes())),
            "app.css" => Some(("text/css; charset=utf-8", CSS)),
            _ => None,
        },
        _ => None,
    };
    match file {
        Some((ctype, body)) => Ok(secured(
            Response::from_data(ctype, body.to_vec())
                .with_additional_header("Cache-Control", "public, max-age=31536000, immutable"),
        )),
        None => Err(Error::not_found(format!(
            "No console file at {path}; the console is at / and its files are under {}/",
            base()
        ))),
    }
}

/// Total size in bytes of the embedded HTML, CSS and JavaScript.
pub fn total_bytes() -> usize {
    INDEX.len() + CSS.len() + built().js.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_names_every_file_by_its_hashed_url_and_nothing_else() {
        let b = built();
        assert!(!b.index.contains("%BASE%"));
        for needed in ["app.css", "app.js"] {
            assert!(
                b.index.contains(&format!("{}/{needed}", base())),
                "{needed}"
            );
        }
        assert_eq!(b.hash.len(), 16);
    }

    #[test]
    fn the_module_has_no_import_or_export_left() {
        let js = &built().js;
        assert!(!js
            .lines()
            .any(|l| l.starts_with("import ") || l.starts_with("export ")));
        for (name, _) in MODULES {
            assert!(js.contains(&format!("// --- {name}")), "{name}");
        }
    }

    #[test]
    fn the_console_is_small() {
        assert!(total_bytes() < 150 * 1024, "{} bytes", total_bytes());
    }
}
