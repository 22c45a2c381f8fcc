//! A live feed: clients connect to `/ticker` and get a JSON tick every
//! 100 ms, published by a thread of the application to the topic `ticks`
//! (and one a second to `seconds`). A client that sends `sub:<topic>`
//! subscribes to another topic as well; anything else it sends comes back.
//! Ctrl-C (or SIGTERM) closes every connection with 1001 and exits.
//!
//! ```text
//! cargo run --release -p ringcast --example ticker            # 127.0.0.1:9001
//! cargo run --release -p ringcast --example ticker -- 0.0.0.0:9001
//! websocat ws://127.0.0.1:9001/ticker                         # then type sub:seconds
//! ```
//!
//! `docs/guide.md` builds this server step by step.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ringcast::{Decision, Handler, Message, Peer, Request, ServerBuilder, ServerHandler, Ws};

/// Every shard runs one; it keeps nothing per connection.
struct Ticker;

impl ServerHandler for Ticker {
    fn upgrade(&mut self, request: &Request<'_>, _peer: &Peer<'_>) -> Decision<()> {
        match request.path() {
            "/ticker" => Decision::accept(()),
            _ => Decision::reject(404),
        }
    }
}

impl Handler for Ticker {
    type Data = ();

    fn open(&mut self, ws: &mut Ws<'_, ()>) {
        // "ticks" is short and the connection has no other topic yet:
        // within the default limits.
        let _ = ws.subscribe("ticks");
    }

    fn message(&mut self, ws: &mut Ws<'_, ()>, message: Message<'_>) {
        match message {
            Message::Text(text) if text.starts_with("sub:") => {
                let topic = &text["sub:".len()..];
                let answer = match ws.subscribe(topic) {
                    Ok(true) => format!("subscribed:{topic}"),
                    Ok(false) => format!("already:{topic}"),
                    // Past the server's limits (topic name length, topics
                    // per connection): say why, keep the connection.
                    Err(refused) => format!("refused:{refused}"),
                };
                let _ = ws.send_text(&answer);
            }
            other => {
                // Fails only for a peer past its send budget, which is
                // then being closed with 1008.
                let _ = ws.send(other);
            }
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let listen = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:9001".into());
    // Two unpinned threads: plenty for a feed, polite on a shared machine.
    let server = ServerBuilder::new().shards(2).pin_threads(false).start(listen.as_str(), |_shard| Ticker)?;
    server.shutdown_on_signals(Duration::from_secs(5))?;
    println!("ticker: listening on ws://{}/ticker", server.local_addr());

    // The feed: a plain thread, publishing through a clone of the handle.
    let feed = server.clone();
    std::thread::spawn(move || {
        for seq in 1u64.. {
            let ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
            feed.publish("ticks", Message::Text(&format!(r#"{{"seq":{seq},"ms":{ms}}}"#)));
            if seq % 10 == 0 {
                feed.publish("seconds", Message::Text(&format!(r#"{{"second":{}}}"#, seq / 10)));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    });

    // Until Ctrl-C has closed every connection.
    let report = server.wait();
    println!("ticker: stopped ({} connection(s) cut at the deadline)", report.forced);
    Ok(())
}
