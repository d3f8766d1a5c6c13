//! A counting gate: at most `max_running` holders at once, at most `max_waiting` in line, and a
//! longest wait. Used to bound work that would otherwise take every worker thread: argon2
//! verifications (auth.rs) and reads of request bodies that a slow client may trickle in (api).

use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

pub struct Gate {
    /// (running, waiting)
    state: Mutex<(usize, usize)>,
    freed: Condvar,
    max_running: usize,
    max_waiting: usize,
    max_wait: Option<Duration>,
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
    pub fn new(max_running: usize, max_waiting: usize, max_wait: Option<Duration>) -> Gate {
        assert!(max_running >= 1, "a gate needs at least one place");
        Gate {
            state: Mutex::new((0, 0)),
            freed: Condvar::new(),
            max_running,
            max_waiting,
            max_wait,
        }
    }

    /// A place, or `None` when the line is full or the wait ran out.
    pub fn enter(&self) -> Option<Permit<'_>> {
        let mut s = self.state.lock().ok()?;
        if s.0 >= self.max_running {
            if s.1 >= self.max_waiting {
                return None;
            }
            s.1 += 1;
            let deadline = self.max_wait.map(|d| Instant::now() + d);
            while s.0 >= self.max_running {
                s = match deadline {
                    None => self.freed.wait(s).ok()?,
                    Some(d) => {
                        let left = d.saturating_duration_since(Instant::now());
                        if left.is_zero() {
                            s.1 -= 1;
                            return None;
                        }
                        self.freed.wait_timeout(s, left).ok()?.0
                    }
                };
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
        let g = Gate::new(1, 0, None);
        let p = g.enter().unwrap();
        assert!(g.enter().is_none(), "no place and no line");
        drop(p);
        assert!(g.enter().is_some());
    }

    #[test]
    fn a_wait_runs_out() {
        let g = Gate::new(1, 10, Some(Duration::from_millis(20)));
        let _p = g.enter().unwrap();
        let t = Instant::now();
        assert!(g.enter().is_none());
        assert!(t.elapsed() >= Duration::from_millis(20));
    }
}
