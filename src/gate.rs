//! A counting gate: at most `max_running` holders at once and at most `max_waiting` in line.
//! Used to bound work that would otherwise take every worker thread: argon2 verifications
//! (auth.rs), so that a flood of wrong keys leaves workers for everyone else.

use std::sync::{Condvar, Mutex};

pub struct Gate {
    /// (running, waiting)
    state: Mutex<(usize, usize)>,
    freed: Condvar,
    max_running: usize,
    max_waiting: usize,
}

/// Holding one of the gate's places; dropping it frees the place.
pub struct Permit<'a>(&'a Gate);

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if let Ok(mut s) = self.0.state.lock() {
            s.0 -= 1;
        }
        self.0.freed.notify_one();
    }
}

impl Gate {
    pub fn new(max_running: usize, max_waiting: usize) -> Gate {
        assert!(max_running >= 1, "a gate needs at least one place");
        Gate {
            state: Mutex::new((0, 0)),
            freed: Condvar::new(),
            max_running,
            max_waiting,
        }
    }

    /// A place (waiting for one if need be), or `None` when the line is full.
    pub fn enter(&self) -> Option<Permit<'_>> {
        let mut s = self.state.lock().ok()?;
        if s.0 >= self.max_running {
            if s.1 >= self.max_waiting {
                return None;
            }
            s.1 += 1;
            while s.0 >= self.max_running {
                s = self.freed.wait(s).ok()?;
            }
            s.1 -= 1;
        }
        s.0 += 1;
        Some(Permit(self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_running_and_waiting() {
        let g = Gate::new(1, 0);
        let p = g.enter().unwrap();
        assert!(g.enter().is_none(), "no place and no line");
        drop(p);
        assert!(g.enter().is_some());
    }
}
