//! A blocking driver for `ringcast-proto`: one connection over any
//! `Read + Write`, echoing every message with its type. It shows the whole
//! sans-IO cycle (handshake, read in place, answer through the sender,
//! flush pending frames, close) in the plainest possible I/O.

use std::io::{self, Read, Write};

use ringcast_proto::handshake::{write_response, RequestLimits, RequestReader};
use ringcast_proto::{Config, Connection, Event, State};

/// How one connection ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Answered over plain HTTP (or refused) without upgrading.
    Http(u16),
    /// Upgraded, then ended: by a close handshake, a protocol error, or EOF.
    WebSocket { messages: u64, clean: bool },
}

/// Serves one connection until it ends. `on_upgrade` runs once the 101 is
/// sent (the example uses it to trade the handshake timeout for the idle
/// timeout).
pub fn serve<S: Read + Write>(
    stream: &mut S,
    config: Config,
    on_upgrade: impl FnOnce(&mut S) -> io::Result<()>,
) -> io::Result<Outcome> {
    let mut buf = vec![0u8; 64 << 10];
    let mut head = Vec::new();
    let mut reader = RequestReader::new(RequestLimits::default());
    let leftover = loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Ok(Outcome::Http(0));
        }
        head.extend_from_slice(&buf[..n]);
        let request = match reader.poll(&head) {
            Ok(None) => continue,
            Ok(Some(request)) => request,
            Err(e) => return refuse(stream, e.status(), &e.to_string()),
        };
        if !request.is_upgrade() {
            return match request.path() {
                "/healthz" => answer(stream, 200, "ok\n"),
                _ => refuse(stream, 426, "this endpoint speaks WebSocket only"),
            };
        }
        let upgrade = match request.validate() {
            Ok(upgrade) => upgrade,
            Err(e) => return refuse(stream, e.status(), &e.to_string()),
        };
        let mut out = Vec::new();
        upgrade.write_response(None, &[], &mut out).map_err(io::Error::other)?;
        stream.write_all(&out)?;
        break head[request.head_len()..].to_vec();
    };
    on_upgrade(stream)?;

    let mut conn = Connection::server(config);
    let mut out = Vec::new();
    let mut messages = 0;
    let mut pending_input = leftover;
    loop {
        // The bytes of the handshake's last read first, then fresh reads.
        let (input, n): (&mut [u8], usize) = if pending_input.is_empty() {
            let n = stream.read(&mut buf)?;
            if n == 0 {
                return Ok(Outcome::WebSocket { messages, clean: false });
            }
            (&mut buf[..], n)
        } else {
            let n = pending_input.len();
            (&mut pending_input[..], n)
        };
        let (rx, tx) = conn.split();
        let mut pos = 0;
        let failed = loop {
            match rx.read(tx, &mut input[pos..n]) {
                Ok(read) => {
                    pos += read.consumed;
                    // Sending fails only once we are closing: nothing to echo then.
                    let _ = match read.event {
                        Some(Event::Text(text)) => tx.send_text(text, &mut out),
                        Some(Event::Binary(data)) => tx.send_binary(data, &mut out),
                        Some(_) => Ok(()),
                        None => break false,
                    };
                    messages += 1;
                }
                Err(_) => break true,
            }
        };
        pending_input.clear();
        tx.take_pending(&mut out);
        if !out.is_empty() {
            stream.write_all(&out)?;
            out.clear();
        }
        if failed || tx.state() == State::Closed {
            // The server closes TCP first (RFC 6455 §7.1.1).
            return Ok(Outcome::WebSocket { messages, clean: !failed });
        }
    }
}

fn refuse<S: Write>(stream: &mut S, status: u16, why: &str) -> io::Result<Outcome> {
    let mut out = Vec::new();
    write_response(status, &[], format!("{why}\n").as_bytes(), &mut out).map_err(io::Error::other)?;
    stream.write_all(&out)?;
    Ok(Outcome::Http(status))
}

fn answer<S: Write>(stream: &mut S, status: u16, body: &str) -> io::Result<Outcome> {
    refuse(stream, status, body.trim_end())
}
