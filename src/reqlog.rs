//! The request id in every log line of a request.
//!
//! `api::handle` numbers each request and marks the handling thread with it for the request's
//! duration; a write job carries the id to the writer thread. The log format (set up in cli.rs)
//! prints the mark, so a line logged anywhere below (store, auth) names its request without every
//! function passing the id along.

use std::cell::Cell;

thread_local! {
    static CURRENT: Cell<Option<u64>> = const { Cell::new(None) };
}

/// The id of the request this thread is working for, if any.
pub fn current() -> Option<u64> {
    CURRENT.with(Cell::get)
}

/// The id as it appears in logs and in the `X-Request-Id` header.
pub fn format(id: u64) -> String {
    format!("{id:016x}")
}

/// Marks this thread as working for request `id` until the guard is dropped.
pub fn enter(id: Option<u64>) -> Guard {
    Guard(CURRENT.with(|c| c.replace(id)))
}

pub struct Guard(Option<u64>);

impl Drop for Guard {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.0));
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn guards_nest_and_restore() {
        assert_eq!(super::current(), None);
        {
            let _a = super::enter(Some(1));
            {
                let _b = super::enter(Some(2));
                assert_eq!(super::current(), Some(2));
            }
            assert_eq!(super::current(), Some(1));
        }
        assert_eq!(super::current(), None);
        assert_eq!(super::format(255), "00000000000000ff");
    }
}
