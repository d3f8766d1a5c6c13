//! `flowsnap healthcheck`: asks a running server for `GET /healthz` and says whether it answered
//! `200 {"status": "ok"}`. For container HEALTHCHECKs and service monitors, so that the runtime
//! image needs no curl: one HTTP/1.1 request over a plain TCP socket, every step bounded by a
//! timeout.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

/// Most bytes read from the answer (a /healthz answer is about 150).
const MAX_ANSWER: u64 = 64 * 1024;

/// The address to probe for a server configured to listen on `listen`: a wildcard address
/// (0.0.0.0, ::) is reached on the loopback address of its family.
pub fn target(listen: &str) -> Result<SocketAddr, String> {
    let mut addr: SocketAddr = listen
        .to_socket_addrs()
        .map_err(|e| format!("{listen:?} is not an address: {e}"))?
        .next()
        .ok_or_else(|| format!("{listen:?} resolves to no address"))?;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    Ok(addr)
}

/// `Ok` when the server at `addr` answered `GET /healthz` with 200 and `{"status": "ok"}`.
pub fn probe(addr: SocketAddr, timeout: Duration) -> Result<(), String> {
    let mut s = TcpStream::connect_timeout(&addr, timeout)
        .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    s.set_read_timeout(Some(timeout))
        .and_then(|()| s.set_write_timeout(Some(timeout)))
        .map_err(|e| format!("cannot set timeouts: {e}"))?;
    s.write_all(
        format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .map_err(|e| format!("cannot send to {addr}: {e}"))?;
    let mut answer = Vec::new();
    s.take(MAX_ANSWER)
        .read_to_end(&mut answer)
        .map_err(|e| format!("no answer from {addr}: {e}"))?;
    let text = String::from_utf8_lossy(&answer);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("{addr} did not answer HTTP"))?;
    let status = head.split_whitespace().nth(1).unwrap_or("");
    if status != "200" {
        return Err(format!("{addr} answered /healthz with status {status:?}"));
    }
    let v: serde_json::Value = serde_json::from_str(body.trim())
        .map_err(|e| format!("{addr} answered /healthz with a body that is not JSON: {e}"))?;
    if v["status"] != "ok" {
        return Err(format!("{addr} answered /healthz with {v}"));
    }
    Ok(())
}
