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

#[test]
fn a_frame_header_declaring_1_gib_is_refused_with_1009_before_any_payload() {
    // Default limits (16 MiB): only the 10-byte header and mask are sent.
    let server = TestServer::one_shard();
    let mut client = RawClient::open(server.addr());
    let mut header = vec![0x82, 0xff];
    header.extend_from_slice(&(1u64 << 30).to_be_bytes());
    header.extend_from_slice(&[1, 2, 3, 4]);
    client.send_raw(&header);
    client.expect_close(1009);
}

#[test]
fn ten_thousand_unfinished_handshakes_do_not_stop_a_normal_client() {
    let server = TestServer::start(
        ringcast::ServerBuilder::new().shards(2).handshake_timeout(std::time::Duration::from_secs(3)),
    );
    // The 10 000 sockets live in a child process (this process's open-file
    // limit would not hold both ends).
    let script = r#"
import socket, sys, time
addr = (sys.argv[1], int(sys.argv[2]))
held = []
for i in range(10000):
    s = socket.create_connection(addr)
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nUpgr")
    held.append(s)
print("held", len(held), flush=True)
time.sleep(30)
"#;
    let addr = server.addr();
    let mut child = std::process::Command::new("python3")
        .args(["-c", script, &addr.ip().to_string(), &addr.port().to_string()])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut line).unwrap();
    assert_eq!(line.trim(), "held 10000");
    // Connected is not yet accepted: wait for the shards to take them all.
    let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while server.handle.stats().accepted < 10_000 {
        assert!(std::time::Instant::now() < until, "accepted only {}", server.handle.stats().accepted);
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let held_at = std::time::Instant::now();
    // Meanwhile a normal client upgrades and echoes.
    let mut client = RawClient::open(server.addr());
    client.send_raw(&masked(0x1, b"served anyway"));
    assert_eq!(client.read_frame().unwrap().payload, b"served anyway");
    // The handshake timeout lets them all go.
    let until = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while server.handle.stats().connections > 1 {
        assert!(std::time::Instant::now() < until, "{} connections left", server.handle.stats().connections);
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let waited = held_at.elapsed();
    assert!(waited >= std::time::Duration::from_secs(2), "dropped before their timeout: {waited:?}");
    let _ = child.kill();
    let _ = child.wait();
    client.send_raw(&masked(0x1, b"still"));
    assert_eq!(client.read_frame().unwrap().payload, b"still");
}

#[test]
fn a_half_closed_socket_is_closed_promptly_and_reported_as_1006() {
    let server = TestServer::one_shard();
    let mut client = RawClient::open(server.addr());
    client.send_raw(&masked(0x1, b"then silence"));
    client.stream.shutdown(std::net::Shutdown::Write).unwrap();
    // Whatever was echoed before the end of stream was seen, the server
    // then ends the connection: no close handshake is possible any more.
    while let Some(frame) = client.read_frame() {
        assert_eq!(frame.payload, b"then silence");
    }
    assert_eq!(server.wait_closes(1)[0], (1006, "end of stream".to_string(), true));
    let mut other = RawClient::open(server.addr());
    other.send_raw(&masked(0x1, b"fine"));
    assert_eq!(other.read_frame().unwrap().payload, b"fine");
}

#[test]
fn garbage_after_the_handshake_is_closed_with_1002() {
    let server = TestServer::one_shard();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut printable = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        b' ' + (seed % 95) as u8
    };
    let random_text: Vec<u8> = (0..4096).map(|_| printable()).collect();
    let garbage: [(&str, Vec<u8>); 3] = [
        ("a second HTTP request", upgrade_request("/", "").into_bytes()),
        ("a TLS ClientHello", vec![0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]),
        ("random printable text", random_text),
    ];
    let mut bystander = RawClient::open(server.addr());
    for (name, bytes) in garbage {
        let mut client = RawClient::open(server.addr());
        client.send_raw(&bytes);
        let frame = client.read_frame().unwrap_or_else(|| panic!("{name}: no close frame"));
        assert_eq!(frame.close_code(), Some(1002), "{name}");
        client.expect_eof();
        bystander.send_raw(&masked(0x1, name.as_bytes()));
        assert_eq!(bystander.read_frame().unwrap().payload, name.as_bytes());
    }
}

#[test]
fn a_connection_flood_past_the_limit_is_refused_and_the_admitted_keep_working() {
    let server = TestServer::start(ringcast::ServerBuilder::new().shards(1).max_connections(50));
    let mut admitted: Vec<RawClient> = (0..50).map(|_| RawClient::open(server.addr())).collect();
    let mut refused = 0;
    for _ in 0..500 {
        let mut extra = RawClient::connect(server.addr());
        let head = extra.read_head();
        assert!(head.starts_with("HTTP/1.1 503 "), "{head}");
        refused += 1;
    }
    assert_eq!(refused, 500);
    for (i, client) in admitted.iter_mut().enumerate() {
        let text = format!("still admitted {i}");
        client.send_raw(&masked(0x1, text.as_bytes()));
        assert_eq!(client.read_frame().unwrap().payload, text.as_bytes());
    }
}
