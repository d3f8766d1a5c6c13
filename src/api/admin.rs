//! `POST /_flowsnap/reset` (spec section 11): puts the database back to exactly what it held
//! right after the fixture was loaded, for test suites (json-server's reset, WireMock's
//! `/__admin/reset`). Exists only on a server started with `--fixture` or `--demo` (else 404);
//! tenant-admins only (403).
//!
//! Why a page copy: the store keeps the whole database as it was right after the load, in
//! memory, and the reset writes it back with SQLite's online backup API on the writer thread
//! (`Store::restore`), between two write groups. The result is the loaded database page for
//! page, whatever happened since (deleted, created, changed, started), with no per-table code to
//! keep in step with the schema; the writes queued behind it see the restored state, and WAL
//! readers see either the old state or the new one, never a mix.
//!
//! The credential cache is kept on purpose: every remembered verification is confirmed against
//! the user's stored hash on each request, so one for a key that the reset undid (rotated or
//! created after the load) fails on its next use, while the fixture's own keys stay remembered
//! and the requests right after a reset pay no argon2 verification.
//!
//! The versions and the audit log are restored with everything else (as they were after the
//! load), and the reset itself is recorded as one `fixture.reset` event.

use super::{no_content, Ctx};
use crate::db::audit::{self, NewEvent, Target};
use crate::error::{Error, Result};
use rouille::Response;

pub fn reset(ctx: &Ctx) -> Result<Response> {
    let Some(baseline) = ctx.app.baseline.clone() else {
        return Err(Error::not_found(
            "POST /_flowsnap/reset exists only on a server started with --fixture or --demo",
        ));
    };
    if !ctx.who.tenant_admin {
        return Err(Error::forbidden(
            "Only a tenant-admin may reset the server to its fixture",
        ));
    }
    let started = std::time::Instant::now();
    let who = ctx.who.id.clone();
    ctx.app.store.restore(baseline, move |c| {
        audit::record(
            c,
            &NewEvent {
                action: "fixture.reset",
                user_id: Some(&who),
                workspace_id: None,
                target: Target::Fixture,
                version_id: None,
            },
        )
        .map(|_| ())
    })?;
    log::info!(
        "reset to the fixture in {}us",
        started.elapsed().as_micros()
    );
    Ok(no_content())
}
