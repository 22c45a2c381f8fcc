//! Chat rooms on the framework alone (no hub): a client joins a room with
//! `ws://HOST/chat/<room>?name=<name>`; every text it sends reaches
//! everybody in the room, itself included, as `<name>: <text>`; joins and
//! departures are announced as `* <name> joined (<n> here)` and
//! `* <name> left`. Ctrl-C (or SIGTERM) closes everyone with 1001.
//!
//! ```text
//! cargo run --release -p ringcast --example chat              # 127.0.0.1:9002
//! websocat 'ws://127.0.0.1:9002/chat/lobby?name=alice'
//! ```
//!
//! What it shows: per-connection data chosen at the upgrade, a request
//! refused with the right status, a topic per room, publishing from a
//! callback (`publish_including_self`) and from outside one (the
//! departure, from `close`, through the server handle), and a limit of
//! the server's (`max_message_size`: a longer message closes with 1009).

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use ringcast::{
    CloseCode, CloseInfo, Decision, Handler, Message, Peer, Request, Response, ServerBuilder, ServerHandle,
    ServerHandler, Ws,
};

/// Who a connection is: chosen at the upgrade, kept by the runtime beside
/// the connection, handed back at the close.
struct Member {
    /// The room's topic (`room:<room>`).
    topic: String,
    name: String,
}

/// One per shard. The server handle is set once the server has started
/// (the handlers are made before it exists).
struct Chat {
    server: Arc<OnceLock<ServerHandle>>,
}

/// Room and member names: 1 to 32 letters, digits, `-` or `_`.
fn valid_name(name: &str) -> bool {
    (1..=32).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl ServerHandler for Chat {
    fn upgrade(&mut self, request: &Request<'_>, _peer: &Peer<'_>) -> Decision<Member> {
        let Some(room) = request.path().strip_prefix("/chat/") else {
            return Decision::reject(404);
        };
        let name = request.query().into_iter().flat_map(|q| q.split('&')).find_map(|kv| kv.strip_prefix("name="));
        match name {
            Some(name) if valid_name(room) && valid_name(name) => {
                Decision::accept(Member { topic: format!("room:{room}"), name: name.to_owned() })
            }
            _ => Decision::Reject(
                Response::new(400)
                    .body("rooms and names are 1 to 32 letters, digits, - or _: /chat/<room>?name=<name>\n"),
            ),
        }
    }
}

impl Handler for Chat {
    type Data = Member;

    fn open(&mut self, ws: &mut Ws<'_, Member>) {
        let topic = ws.data().topic.clone();
        if let Err(refused) = ws.subscribe(&topic) {
            // Not with these names and the default limits; said anyway.
            let _ = ws.close(CloseCode::TRY_AGAIN_LATER, &refused.to_string());
            return;
        }
        let here = ws.subscribers(&topic);
        let joined = format!("* {} joined ({here} here)", ws.data().name);
        ws.publish_including_self(&topic, Message::Text(&joined));
    }

    fn message(&mut self, ws: &mut Ws<'_, Member>, message: Message<'_>) {
        let Message::Text(text) = message else {
            let _ = ws.close(CloseCode::UNSUPPORTED_DATA, "text only");
            return;
        };
        let line = format!("{}: {text}", ws.data().name);
        let topic = ws.data().topic.clone();
        ws.publish_including_self(&topic, Message::Text(&line));
    }

    fn close(&mut self, member: Member, _info: CloseInfo<'_>) {
        // No connection to publish from any more: the handle publishes to
        // the room from here like any other thread would.
        if let Some(server) = self.server.get() {
            server.publish(&member.topic, Message::Text(&format!("* {} left", member.name)));
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let listen = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:9002".into());
    let handle = Arc::new(OnceLock::new());
    let shared = handle.clone();
    let server = ServerBuilder::new()
        .shards(2)
        .pin_threads(false)
        .max_message_size(4 << 10)
        .start(listen.as_str(), move |_shard| Chat { server: shared.clone() })?;
    let _ = handle.set(server.clone());
    server.shutdown_on_signals(Duration::from_secs(5))?;
    println!("chat: listening on ws://{}/chat/<room>?name=<name>", server.local_addr());
    let report = server.wait();
    println!("chat: stopped ({} connection(s) cut at the deadline)", report.forced);
    Ok(())
}
