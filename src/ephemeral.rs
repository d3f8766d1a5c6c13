//! `serve --ephemeral` (spec section 11): the database is a new file in a directory of its own
//! under the system's temporary directory, named by the process id and a random suffix, removed
//! when the server exits (also after SIGTERM or Ctrl-C, and on the grace-period exit). A server
//! that was killed leaves its directory behind; since every start makes a new one, nothing a later
//! start uses can collide with it, and each start removes the directories whose process is gone.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

const PREFIX: &str = "flowsnap-ephemeral-";

/// The directory to remove when the process exits without unwinding (`remove_now`).
static ACTIVE: Mutex<Option<PathBuf>> = Mutex::new(None);

pub struct Ephemeral {
    dir: PathBuf,
}

impl Ephemeral {
    /// Makes a new directory for the database (after removing stale ones).
    pub fn create() -> Result<Ephemeral, String> {
        let base = std::env::temp_dir();
        remove_stale(&base);
        let dir = base.join(format!(
            "{PREFIX}{}-{}",
            std::process::id(),
            &crate::util::new_id()[..12]
        ));
        std::fs::create_dir(&dir).map_err(|e| {
            format!(
                "cannot create the ephemeral database's directory {}: {e}",
                dir.display()
            )
        })?;
        if let Ok(mut a) = ACTIVE.lock() {
            *a = Some(dir.clone());
        }
        Ok(Ephemeral { dir })
    }

    pub fn db(&self) -> PathBuf {
        self.dir.join("flowsnap.db")
    }
}

impl Drop for Ephemeral {
    fn drop(&mut self) {
        remove_now();
    }
}

/// Removes the ephemeral database now (for an exit that skips destructors).
pub fn remove_now() {
    let dir = ACTIVE.lock().ok().and_then(|mut a| a.take());
    if let Some(dir) = dir {
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => log::info!("removed the ephemeral database {}", dir.display()),
            Err(e) => log::warn!(
                "could not remove the ephemeral database {}: {e}",
                dir.display()
            ),
        }
    }
}

/// Removes the directories of ephemeral servers whose process no longer runs.
fn remove_stale(base: &Path) {
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(PREFIX)) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<i32>().ok()) else {
            continue;
        };
        if pid > 0 && !alive(pid) {
            let _ = std::fs::remove_dir_all(e.path());
            log::info!(
                "removed the stale ephemeral database {}",
                e.path().display()
            );
        }
    }
}

fn alive(pid: i32) -> bool {
    // Signal 0 checks for the process without signalling it; EPERM means it exists.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}
