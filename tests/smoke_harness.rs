mod common;
use common::*;

#[test]
fn harness_starts_a_server() {
    let s = Server::start();
    s.get("/v2/users/me", &s.admin).expect(200);
}
