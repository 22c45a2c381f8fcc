//! Regression: a message a connection published to a topic it subscribes to
//! (`Ws::publish_including_self`) was queued for it only after the whole read was
//! processed, so when the same read carried a protocol violation the close
//! frame went out first and the message was lost (Autobahn 3.2, 4.1.3,
//! 5.15 … against the hub's `?echo=1` rooms).

mod common;

use common::*;
use ringcast::{Decision, Handler, Message, Peer, Request, ServerBuilder, ServerHandler, Ws};

struct EchoRoom;

impl ServerHandler for EchoRoom {
    fn upgrade(&mut self, _request: &Request<'_>, _peer: &Peer<'_>) -> Decision<()> {
        Decision::accept(())
    }
}

impl Handler for EchoRoom {
    type Data = ();

    fn open(&mut self, ws: &mut Ws<'_, ()>) {
        ws.subscribe("room").expect("within the limits");
    }

    fn message(&mut self, ws: &mut Ws<'_, ()>, message: Message<'_>) {
        assert_eq!(ws.publish_including_self("room", message), 1);
    }
}

#[test]
fn a_message_published_to_oneself_leaves_before_a_later_close() {
    let server = ServerBuilder::new().shards(1).pin_threads(false).start("127.0.0.1:0", |_| EchoRoom).unwrap();
    let mut client = RawClient::open(server.local_addr());
    // One write: a good text frame, then a frame with RSV2 set (1002).
    let mut bytes = masked(0x1, b"first");
    let mut bad = masked(0x1, b"second");
    bad[0] |= 0x20;
    bytes.extend_from_slice(&bad);
    client.send_raw(&bytes);
    let frame = client.read_frame().expect("the echo of the first message");
    assert_eq!((frame.opcode, frame.payload.as_slice()), (0x1, &b"first"[..]));
    client.expect_close(1002);
    server.shutdown(std::time::Duration::from_millis(100));
}
