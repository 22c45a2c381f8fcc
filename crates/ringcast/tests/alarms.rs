//! Handler alarms (`Ws::set_alarm`, `Handler::alarm`) and the client's
//! address at the upgrade (`ServerHandler::upgrade`).

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::*;
use ringcast::{CloseCode, Decision, Handler, Message, Peer, Request, ServerBuilder, ServerHandle, ServerHandler, Ws};

/// Each connection carries the client's address and an alarm that closes
/// it with 1008 "late" unless moved or cleared: `later` moves it 300 ms
/// ahead, `clear` unsets it, `again` re-arms it after it rang once.
struct Alarmed;

impl ServerHandler for Alarmed {
    fn upgrade(&mut self, request: &Request<'_>, peer: &Peer<'_>) -> Decision<Self::Data> {
        match (request.path(), peer.addr()) {
            ("/", Some(addr)) => Decision::accept((addr, 0)),
            _ => Decision::reject(403),
        }
    }
}

impl Handler for Alarmed {
    type Data = (SocketAddr, u32);

    fn open(&mut self, ws: &mut Ws<'_, Self::Data>) {
        let port = ws.data().0.port();
        let _ = ws.send_text(&format!("you are port {port}"));
        ws.set_alarm(Duration::from_millis(200));
    }

    fn message(&mut self, ws: &mut Ws<'_, Self::Data>, message: Message<'_>) {
        match message {
            Message::Text("later") => ws.set_alarm(Duration::from_millis(300)),
            Message::Text("clear") => assert!(ws.clear_alarm()),
            Message::Text("again") => ws.set_alarm(Duration::from_millis(50)),
            _ => {}
        }
        let _ = ws.send(message);
    }

    fn alarm(&mut self, ws: &mut Ws<'_, Self::Data>) {
        ws.data_mut().1 += 1;
        let rang = ws.data().1;
        if rang == 1 {
            let _ = ws.send_text("rang");
        } else {
            let _ = ws.close(CloseCode::POLICY, "late");
        }
    }
}

fn start() -> ServerHandle {
    ServerBuilder::new().shards(1).pin_threads(false).start("127.0.0.1:0", |_| Alarmed).expect("server starts")
}

fn text(client: &mut RawClient) -> String {
    String::from_utf8(client.read_frame().expect("a frame").payload).unwrap()
}

#[test]
fn upgrade_from_sees_the_clients_address() {
    let server = start();
    let mut client = RawClient::open(server.local_addr());
    let port = client.stream.local_addr().unwrap().port();
    assert_eq!(text(&mut client), format!("you are port {port}"));
    server.shutdown(Duration::from_secs(1));
}

#[test]
fn an_alarm_rings_once_moves_and_clears() {
    let server = start();
    // Rings after 200 ms, not before.
    let opened = Instant::now();
    let mut ringing = RawClient::open(server.local_addr());
    text(&mut ringing);
    assert_eq!(text(&mut ringing), "rang");
    assert!(opened.elapsed() >= Duration::from_millis(190), "{:?}", opened.elapsed());
    // Re-armed from a message after ringing: the second ring closes.
    ringing.send_raw(&masked(1, b"again"));
    assert_eq!(text(&mut ringing), "again");
    let close = ringing.read_frame().expect("a close frame");
    assert_eq!((close.close_code(), &close.payload[2..]), (Some(1008), &b"late"[..]));

    // Moved later twice: rings only once the last move's time has come.
    let mut moved = RawClient::open(server.local_addr());
    text(&mut moved);
    moved.send_raw(&masked(1, b"later"));
    assert_eq!(text(&mut moved), "later");
    let last_move = Instant::now();
    moved.send_raw(&masked(1, b"later"));
    assert_eq!(text(&mut moved), "later");
    assert_eq!(text(&mut moved), "rang");
    assert!(last_move.elapsed() >= Duration::from_millis(280), "{:?}", last_move.elapsed());

    // Cleared: never rings.
    let mut cleared = RawClient::open(server.local_addr());
    text(&mut cleared);
    cleared.send_raw(&masked(1, b"clear"));
    assert_eq!(text(&mut cleared), "clear");
    assert!(cleared.try_read_frame(Duration::from_millis(600)).is_none(), "a cleared alarm rang");
    server.shutdown(Duration::from_secs(1));
}
