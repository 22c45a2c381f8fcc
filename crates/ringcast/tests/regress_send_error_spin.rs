//! Regression: a send that failed (peer reset) on a connection whose
//! exchange was over was retried at once, failing again forever: the shard
//! spun at full CPU until the stop deadline. Found with headless Chromium
//! exiting in the middle of a close. Now a failed send ends the connection.

mod common;

use std::time::{Duration, Instant};

use common::*;
use ringcast::ServerBuilder;
use socket2::Socket;

#[test]
fn a_reset_after_the_close_ends_the_connection_without_spinning() {
    let server = TestServer::start(ServerBuilder::new().shards(1));
    for _ in 0..5 {
        let mut client = RawClient::open(server.addr());
        let socket = Socket::from(client.stream.try_clone().unwrap());
        socket.set_recv_buffer_size(4096).unwrap();
        // A message whose echo cannot all be sent while we do not read,
        // then our close: the server's exchange is over (it owes the echo
        // and the close reply), its send is stuck on our full window.
        client.send_raw(&masked(0x2, &vec![7u8; 4 << 20]));
        client.send_raw(&masked(0x8, &close_payload(1000, "")));
        std::thread::sleep(Duration::from_millis(100));
        // Reset instead of reading: the pending send fails.
        socket.set_linger(Some(Duration::ZERO)).unwrap();
        drop(socket);
        drop(client);
    }
    let until = Instant::now() + Duration::from_secs(5);
    while server.handle.stats().connections > 0 {
        assert!(Instant::now() < until, "reset connections were not closed");
        std::thread::sleep(Duration::from_millis(10));
    }
    let turns = server.handle.stats().turns;
    std::thread::sleep(Duration::from_millis(300));
    let idle_turns = server.handle.stats().turns - turns;
    assert!(idle_turns < 50, "the shard keeps turning with nothing to do: {idle_turns} turns in 300 ms");
    assert_eq!(server.wait_closes(5).len(), 5);
}
