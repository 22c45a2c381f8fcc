//! Publish and replay speed of a hub with history (`tools/bench/history.py`
//! runs it): publishes N messages on one `/ws` connection (pipelined, the
//! first and the last acknowledged), then a second connection subscribes
//! with `since` just before the first and reads all N back. The reader
//! only parses frame headers (and the answers), so the hub is what is
//! measured, not the reader.
//!
//! ```text
//! cargo run --release -p ringcast-hub --example history_bench -- 127.0.0.1:9001 bench 100000 100
//! ```
//!
//! Prints one JSON line: publishes/s, replayed messages/s and MB/s.

use std::io::{BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 5 {
        eprintln!("usage: history_bench HOST:PORT TOPIC MESSAGES SIZE");
        std::process::exit(2);
    }
    let (addr, topic) = (&args[1], &args[2]);
    let messages: u64 = args[3].parse().expect("MESSAGES: a number");
    let size: usize = args[4].parse().expect("SIZE: a number");
    let data = "x".repeat(size);

    let mut publisher = Conn::open(addr);
    let started = Instant::now();
    let mut batch = Vec::with_capacity(1 << 20);
    for i in 0..messages {
        let id = if i == 0 {
            r#","id":"first""#
        } else if i + 1 == messages {
            r#","id":"last""#
        } else {
            ""
        };
        let request = format!(r#"{{"op":"publish","topic":"{topic}","data":"{data}"{id}}}"#);
        push_masked(&mut batch, request.as_bytes());
        if batch.len() > (1 << 20) - 4096 || i + 1 == messages {
            publisher.stream.write_all(&batch).expect("publish");
            batch.clear();
        }
    }
    let first = publisher.answer("\"first\"");
    publisher.answer("\"last\"");
    let published = started.elapsed();
    let offset = number(&first, "\"offset\":");
    let epoch = string(&first, "\"epoch\":\"");

    let mut reader = Conn::open(addr);
    let started = Instant::now();
    let since = format!(r#"{{"offset":{},"epoch":"{epoch}"}}"#, offset - 1);
    let request = format!(r#"{{"op":"subscribe","topic":"{topic}","since":{since},"id":"r"}}"#);
    let mut frame = Vec::new();
    push_masked(&mut frame, request.as_bytes());
    reader.stream.write_all(&frame).expect("subscribe");
    let answer = reader.answer("\"r\"");
    assert!(answer.contains("\"recovered\":true"), "not recovered: {answer}");
    let mut bytes = 0u64;
    for _ in 0..messages {
        bytes += reader.skip_frame() as u64;
    }
    let replayed = started.elapsed();
    println!(
        "{{\"messages\":{messages},\"size\":{size},\"publish_per_sec\":{:.0},\"replay_per_sec\":{:.0},\"replay_mb_per_sec\":{:.1}}}",
        messages as f64 / published.as_secs_f64(),
        messages as f64 / replayed.as_secs_f64(),
        bytes as f64 / replayed.as_secs_f64() / 1e6
    );
}

struct Conn {
    stream: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Conn {
    fn open(addr: &str) -> Conn {
        let mut stream = TcpStream::connect(addr).expect("connect");
        stream.set_nodelay(true).unwrap();
        let request = format!(
            "GET /ws HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).unwrap();
        let mut reader = BufReader::with_capacity(1 << 20, stream.try_clone().unwrap());
        let mut head = Vec::new();
        let mut byte = [0u8];
        while !head.ends_with(b"\r\n\r\n") {
            reader.read_exact(&mut byte).expect("the handshake's answer");
            head.push(byte[0]);
        }
        assert!(head.starts_with(b"HTTP/1.1 101"), "{}", String::from_utf8_lossy(&head));
        Conn { stream, reader }
    }

    /// Reads one frame's header and returns its payload length, the
    /// payload read into `into` if given, else skipped.
    fn frame(&mut self, into: Option<&mut Vec<u8>>) -> usize {
        let mut head = [0u8; 2];
        self.reader.read_exact(&mut head).expect("a frame");
        let len = match head[1] & 0x7f {
            126 => {
                let mut n = [0u8; 2];
                self.reader.read_exact(&mut n).unwrap();
                usize::from(u16::from_be_bytes(n))
            }
            127 => {
                let mut n = [0u8; 8];
                self.reader.read_exact(&mut n).unwrap();
                u64::from_be_bytes(n) as usize
            }
            n => usize::from(n),
        };
        match into {
            Some(buffer) => {
                buffer.resize(len, 0);
                self.reader.read_exact(buffer).unwrap();
            }
            None => {
                std::io::copy(&mut (&mut self.reader).take(len as u64), &mut std::io::sink()).unwrap();
            }
        }
        len
    }

    fn skip_frame(&mut self) -> usize {
        self.frame(None)
    }

    /// The next text frame containing `marker` (others skipped).
    fn answer(&mut self, marker: &str) -> String {
        let mut payload = Vec::new();
        loop {
            self.frame(Some(&mut payload));
            let text = String::from_utf8_lossy(&payload);
            if text.contains(marker) {
                return text.into_owned();
            }
        }
    }
}

/// A final text frame, masked with a zero key (the bytes stay as they are).
fn push_masked(out: &mut Vec<u8>, payload: &[u8]) {
    out.push(0x81);
    match payload.len() {
        n if n < 126 => out.push(0x80 | n as u8),
        n if n <= 0xffff => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(payload);
}

fn number(text: &str, key: &str) -> u64 {
    let at = text.find(key).unwrap_or_else(|| panic!("no {key} in {text}")) + key.len();
    text[at..].chars().take_while(char::is_ascii_digit).collect::<String>().parse().unwrap()
}

fn string(text: &str, key: &str) -> String {
    let at = text.find(key).unwrap_or_else(|| panic!("no {key} in {text}")) + key.len();
    text[at..].chars().take_while(|&c| c != '"').collect()
}
