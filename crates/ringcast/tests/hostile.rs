//! Input meant to hurt the server: it must answer and keep serving everyone
//! else. (Memory under a ping flood is measured in `ping_flood.rs`, alone in
//! its process.)

mod common;

use common::*;

#[test]
fn a_handler_panic_closes_that_connection_with_1011_and_nothing_else() {
    let server = TestServer::one_shard();
    let mut bystander = RawClient::open(server.addr());
    let mut culprit = RawClient::open(server.addr());
    culprit.send_raw(&masked(0x1, b"panic"));
    culprit.expect_close(1011);
    let closes = server.wait_closes(1);
    assert_eq!(closes[0].0, 1011);
    // The shard is alive: the other connection and new ones still echo.
    bystander.send_raw(&masked(0x1, b"still there?"));
    assert_eq!(bystander.read_frame().unwrap().payload, b"still there?");
    let mut newcomer = RawClient::open(server.addr());
    newcomer.send_raw(&masked(0x2, b"hi"));
    assert_eq!(newcomer.read_frame().unwrap().payload, b"hi");
}
