//! Regression: a lingering connection's `shutdown(SHUT_WR)` went through
//! io_uring, which always runs shutdown later in a worker thread that looks
//! the descriptor number up only then. When the peer hung up at once, our
//! `close` of that number ran first, a new connection got the number, and
//! the late shutdown sent a FIN on the new connection: it ended with 1006
//! ("end of stream") instead of its own close. Found by the client tests
//! (client and server runtimes in one process churn descriptors fast).
//!
//! Churns thousands of short connections (the server closes each one with
//! 4001, both sides linger) and checks that every one ends with its own
//! close, never with an unexpected end of stream.

mod common;

use std::sync::mpsc;
use std::time::Duration;

use common::recorder::{Ev, Plan, Recorder};
use common::TestServer;
use ringcast::{ClientBuilder, Connect, ServerBuilder};

#[test]
fn no_connection_is_cut_by_another_ones_shutdown() {
    let server = TestServer::start(ServerBuilder::new().shards(2));
    let (tx, events) = mpsc::channel();
    let client = ClientBuilder::new().shards(2).start(move |_| Recorder { events: tx.clone() }).unwrap();
    let target = Connect::new(&server.url("/")).unwrap();
    let plan = |tag| Plan { send: vec![(true, b"close-me".to_vec())], ..Plan::tagged(tag) };
    let (total, parallel) = (3000u32, 64u32);
    for tag in 0..parallel {
        client.connect(&target, plan(tag)).unwrap();
    }
    let (mut next, mut ended, mut wrong) = (parallel, 0u32, Vec::new());
    while ended < total {
        match events.recv_timeout(Duration::from_secs(20)).expect("the churn stalled") {
            Ev::Closed { tag, code, reason, by_peer } => {
                ended += 1;
                if (code, by_peer) != (4001, true) {
                    wrong.push((tag, code, reason));
                }
            }
            Ev::Failed { tag, failure } => {
                ended += 1;
                wrong.push((tag, 0, format!("{failure:?}")));
            }
            _ => continue,
        }
        if next < total {
            client.connect(&target, plan(next)).unwrap();
            next += 1;
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {total} connections ended wrongly, e.g. {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(5)]
    );
    client.shutdown(Duration::from_secs(1));
}
