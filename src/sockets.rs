//! Process-level settings that rouille does not expose: sockets, descriptors, the allocator.
//!
//! TCP_NODELAY for every connection. Why: tiny_http (under rouille) writes a response's head and its body in two writes. With
//! Nagle's algorithm on, a body of more than about 1 KB waits for the client to acknowledge the
//! head, and clients delay that acknowledgement by up to 40 ms: every larger response then takes
//! 40 ms. rouille gives no access to its sockets, but Linux copies TCP_NODELAY from a listening
//! socket to each connection it accepts, so setting it once on rouille's listener (found among
//! this process's file descriptors by its address) covers every connection.

//!
//! Connection timeouts (`idle_timeout_secs`): every accepted connection gets `SO_RCVTIMEO` and
//! `SO_SNDTIMEO`. A read that waits longer (an idle keep-alive connection, a client stalled inside
//! its request head or body) then fails with `EAGAIN`, which tiny_http takes as the end of the
//! connection (and a body read by a handler as an unreadable body); a write that waits longer (a
//! client that does not read its response) fails and the response is abandoned. Either way the
//! connection's thread is freed. Why not on the listener, like TCP_NODELAY: Linux does copy both
//! options to accepted sockets, but on a listener `SO_RCVTIMEO` also bounds `accept()` itself, and
//! tiny_http's accept loop stops for good on the first error, so the server would stop accepting
//! after one quiet period. Instead this module defines `accept4`, the one call through which Rust's
//! `TcpListener::accept` (tiny_http's accept loop, the only caller in the process) reaches the
//! kernel: it makes the system call itself and sets the timeouts on the new socket before anyone
//! reads from it. Elsewhere than Linux with glibc nothing is set.
//!
//! The open-files limit. tiny_http gives every connection a thread and a descriptor, and its accept
//! loop stops for good on the first accept error (such as EMFILE), so the soft limit is raised to
//! the hard one at start.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Makes glibc's malloc serve allocations of 128 KiB and more with their own mappings, which go
/// back to the system when freed. Why: each argon2 verification allocates its 19 MiB working
/// memory, and with glibc's adaptive threshold that memory stays in the heap afterwards; with
/// this, an idle server's peak RSS under load halves (about 52 MB to 27 MB in the benchmark's
/// GET scenario) at no measurable cost in speed. No effect with other C libraries.
pub fn return_large_allocations() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator tuning; called once at start.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
        // One heap per thread (glibc's default is up to 8 per core) keeps freed memory in many
        // places; 4 heaps cut peak RSS under load by about a quarter at no measured cost.
        libc::mallopt(libc::M_ARENA_MAX, 4);
    }
}

/// Raises this process's soft limit on open files to its hard limit; returns the new soft limit.
pub fn raise_open_files_limit() -> Option<u64> {
    // SAFETY: rlimit is plain data; getrlimit/setrlimit only read and write the struct given.
    unsafe {
        let mut lim: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return None;
        }
        if lim.rlim_cur < lim.rlim_max {
            let wanted = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &wanted) == 0 {
                return Some(wanted.rlim_cur as u64);
            }
        }
        Some(lim.rlim_cur as u64)
    }
}

/// Sets TCP_NODELAY on this process's listening socket bound to `addr`, for the connections it
/// accepts to inherit. Returns whether one was found; elsewhere than Linux nothing is done.
pub fn set_on_listener(addr: SocketAddr) -> bool {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return false;
    };
    let mut done = false;
    for entry in dir.flatten() {
        let Ok(fd) = entry.file_name().to_string_lossy().parse::<libc::c_int>() else {
            continue;
        };
        if is_listener_on(fd, addr) && set_nodelay(fd) {
            done = true;
        }
    }
    done
}

/// Stops reading from this process's connection from `peer` (`shutdown(SHUT_RD)`), found among
/// the open descriptors by its peer address; the response can still be written. Used when a
/// request body stops arriving: tiny_http would otherwise drain the rest of the body and wait for
/// a next request on the connection, each for another timeout, before it closes it. Returns
/// whether the connection was found.
pub fn stop_reading(peer: SocketAddr) -> bool {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return false;
    };
    for entry in dir.flatten() {
        let Ok(fd) = entry.file_name().to_string_lossy().parse::<libc::c_int>() else {
            continue;
        };
        if address_is(fd, peer, libc::getpeername) {
            // SAFETY: shutdown on a descriptor only changes that socket's state.
            return unsafe { libc::shutdown(fd, libc::SHUT_RD) } == 0;
        }
    }
    false
}

fn int_option(fd: libc::c_int, level: libc::c_int, name: libc::c_int) -> Option<libc::c_int> {
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `value` and `len` are valid for writes of the sizes given; a bad fd is an error.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            level,
            name,
            (&mut value as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    (rc == 0).then_some(value)
}

fn is_listener_on(fd: libc::c_int, addr: SocketAddr) -> bool {
    if int_option(fd, libc::SOL_SOCKET, libc::SO_ACCEPTCONN) != Some(1) {
        return false;
    }
    address_is(fd, addr, libc::getsockname)
}

type NameFn =
    unsafe extern "C" fn(libc::c_int, *mut libc::sockaddr, *mut libc::socklen_t) -> libc::c_int;

/// Whether the socket's own (`getsockname`) or peer's (`getpeername`) address is `addr`.
fn address_is(fd: libc::c_int, addr: SocketAddr, name: NameFn) -> bool {
    // SAFETY: sockaddr_storage is plain data, valid when zeroed.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: `storage` is large enough for any socket address and `len` says so.
    let rc = unsafe {
        name(
            fd,
            (&mut storage as *mut libc::sockaddr_storage).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return false;
    }
    match (storage.ss_family as libc::c_int, addr) {
        (libc::AF_INET, SocketAddr::V4(a)) => {
            // SAFETY: the family says the storage holds a sockaddr_in.
            let sin = unsafe {
                &*(&storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>()
            };
            u16::from_be(sin.sin_port) == a.port()
                && u32::from_be(sin.sin_addr.s_addr) == u32::from(*a.ip())
        }
        (libc::AF_INET6, SocketAddr::V6(a)) => {
            // SAFETY: the family says the storage holds a sockaddr_in6.
            let sin6 = unsafe {
                &*(&storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>()
            };
            u16::from_be(sin6.sin6_port) == a.port() && sin6.sin6_addr.s6_addr == a.ip().octets()
        }
        _ => false,
    }
}

fn set_nodelay(fd: libc::c_int) -> bool {
    let one: libc::c_int = 1;
    // SAFETY: `one` is a valid c_int for the duration of the call.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_NODELAY,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    rc == 0
}

/// The read and write timeout given to every connection accepted from now on, in microseconds
/// (0: none).
static CONNECTION_TIMEOUT_US: AtomicU64 = AtomicU64::new(0);

/// Every connection accepted from now on gets read and write timeouts of `t` (see the module
/// documentation). Returns false where this cannot be done (not Linux with glibc).
pub fn set_connection_timeouts(t: Duration) -> bool {
    CONNECTION_TIMEOUT_US.store(
        t.as_micros().min(u64::MAX as u128) as u64,
        Ordering::Relaxed,
    );
    cfg!(all(target_os = "linux", target_env = "gnu"))
}

/// `accept4(2)` as the C library would do it, plus the connection timeouts on the new socket.
/// Rust's `TcpListener::accept` calls `accept4` through the C library's symbol, which this
/// definition in the executable takes the place of.
///
/// # Safety
/// The contract of `accept4(2)`: `addr` and `len` are null or valid for the kernel to write.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[no_mangle]
pub unsafe extern "C" fn accept4(
    fd: libc::c_int,
    addr: *mut libc::sockaddr,
    len: *mut libc::socklen_t,
    flags: libc::c_int,
) -> libc::c_int {
    // SAFETY: the caller's arguments are passed to the kernel unchanged; `syscall` sets errno and
    // returns -1 on failure, as accept4 does.
    let rc = unsafe { libc::syscall(libc::SYS_accept4, fd, addr, len, flags) } as libc::c_int;
    if rc >= 0 {
        let us = CONNECTION_TIMEOUT_US.load(Ordering::Relaxed);
        if us > 0 {
            let t = Duration::from_micros(us);
            // A socket that refuses an option keeps working, only without that timeout.
            set_timeout(rc, libc::SO_RCVTIMEO, t);
            set_timeout(rc, libc::SO_SNDTIMEO, t);
            set_user_timeout(rc, t);
        }
    }
    rc
}

/// TCP_USER_TIMEOUT: the connection is dropped when sent data stays unacknowledged, or the
/// peer's receive window stays closed (a client that does not read), for longer than `t`. Why
/// beside SO_SNDTIMEO: a client that does not read still lets a few bytes through now and then,
/// so a blocked write keeps returning a partial count and never times out.
fn set_user_timeout(fd: libc::c_int, t: Duration) -> bool {
    let ms = t.as_millis().min(libc::c_uint::MAX as u128) as libc::c_uint;
    // SAFETY: `ms` is a valid c_uint for the duration of the call.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_USER_TIMEOUT,
            (&ms as *const libc::c_uint).cast(),
            std::mem::size_of::<libc::c_uint>() as libc::socklen_t,
        )
    };
    rc == 0
}

fn set_timeout(fd: libc::c_int, name: libc::c_int, t: Duration) -> bool {
    let tv = libc::timeval {
        tv_sec: t.as_secs().min(i32::MAX as u64) as libc::time_t,
        tv_usec: t.subsec_micros() as libc::suseconds_t,
    };
    // SAFETY: `tv` is a valid timeval for the duration of the call.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            name,
            (&tv as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    rc == 0
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    #[test]
    fn accepted_connections_get_nodelay_and_timeouts_and_accept_waits() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        assert!(super::set_on_listener(addr));
        assert!(super::set_connection_timeouts(Duration::from_secs(1)));
        // The listener has no timeout: an accept waits past it for a late client.
        let late = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(1500));
            std::net::TcpStream::connect(addr).unwrap()
        });
        let (accepted, _) = listener.accept().unwrap();
        let _client = late.join().unwrap();
        assert!(accepted.nodelay().unwrap());
        assert_eq!(
            accepted.read_timeout().unwrap(),
            Some(Duration::from_secs(1))
        );
        assert_eq!(
            accepted.write_timeout().unwrap(),
            Some(Duration::from_secs(1))
        );
    }
}
