//! The examples a newcomer starts from, run as programs with a real client
//! each (tungstenite, blocking, over plain TCP or rustls): the ticker's
//! feed, subscriptions and echo; the chat's rooms; the TLS echo. Each is
//! then stopped with SIGINT and must close its clients with 1001 and exit
//! with success.
//!
//! Plain `cargo test` builds the examples' binaries before it runs the
//! tests; with `--all-targets` or `--test examples` it does not (examples
//! are then built as test harnesses, or not at all), and
//! `cargo build -p ringcast --examples` must come first, as in
//! `tools/test.sh`.

use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use ringcast::tls::rustls::pki_types::ServerName;
use ringcast::tls::rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use tungstenite::protocol::frame::coding::CloseCode as WsCloseCode;
use tungstenite::protocol::Message as WsMessage;
use tungstenite::WebSocket;

/// How long any one awaited event may take before the test fails: long
/// enough for a loaded CI machine, and the tests move on as soon as it
/// comes.
const PATIENCE: Duration = Duration::from_secs(10);

/// An example running as a child process; killed if the test fails first.
struct Example {
    child: Child,
    addr: SocketAddr,
    name: &'static str,
    /// The lines it printed after the first, as they come.
    output: mpsc::Receiver<String>,
}

impl Drop for Example {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The built example `name` (`target/<profile>/examples/<name>`, beside
/// the directory of this test's binary).
fn example_path(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile = exe.parent().and_then(Path::parent).expect("target/<profile>/deps/<test>");
    let path = profile.join("examples").join(name);
    assert!(path.exists(), "{} is not built: run `cargo build -p ringcast --examples` first", path.display());
    path
}

impl Example {
    /// Starts example `name` with `args` and waits for its
    /// `<name>: listening on <scheme>://<addr>/...` line.
    fn start(name: &'static str, args: &[&str]) -> Example {
        let mut child = Command::new(example_path(name))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("{name} does not start: {e}"));
        let mut lines = BufReader::new(child.stdout.take().expect("piped"));
        let mut line = String::new();
        lines.read_line(&mut line).expect("the example's first line");
        let prefix = format!("{name}: listening on ");
        let url = line.trim().strip_prefix(&prefix).unwrap_or_else(|| panic!("{name} printed {line:?}"));
        let authority = url.split("://").nth(1).and_then(|rest| rest.split('/').next()).expect("a URL");
        let addr = authority.parse().unwrap_or_else(|e| panic!("{name}: {authority}: {e}"));
        // The rest of its output is read as it comes, so it never blocks on
        // a full pipe.
        let (tx, output) = mpsc::channel();
        std::thread::spawn(move || {
            for line in lines.lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Example { child, addr, name, output }
    }

    /// Sends SIGINT (Ctrl-C).
    fn interrupt(&self) {
        let sent = Command::new("kill").args(["-INT", &self.child.id().to_string()]).status().expect("kill(1)");
        assert!(sent.success(), "SIGINT to {}", self.name);
    }

    /// Waits for the process to end after [`interrupt`](Self::interrupt);
    /// returns its status and its last line of output.
    fn exited(&mut self) -> (ExitStatus, String) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                let last = self.output.recv_timeout(PATIENCE).ok();
                let last = std::iter::successors(last, |_| self.output.recv_timeout(PATIENCE).ok()).last();
                return (status, last.unwrap_or_default());
            }
            assert!(Instant::now() < deadline, "{} still runs {PATIENCE:?} after SIGINT", self.name);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Ctrl-C with `ws` open: the client gets close 1001 and answers it
    /// (tungstenite does as it reads the close; see [`close_code`]), then
    /// the example exits with success, `last` its last line.
    fn interrupt_closing<S: std::io::Read + std::io::Write>(&mut self, ws: WebSocket<S>, last: &str) {
        self.interrupt();
        assert_eq!(close_code(ws), WsCloseCode::Away);
        let (status, printed) = self.exited();
        assert!(status.success(), "{} exited with {status}", self.name);
        assert_eq!(printed, last);
    }
}

/// A blocking WebSocket client of `url` (`ws://` over `stream`).
fn client<S: std::io::Read + std::io::Write>(url: &str, stream: S) -> WebSocket<S> {
    match tungstenite::client::client(url, stream) {
        Ok((ws, response)) => {
            assert_eq!(response.status(), 101);
            ws
        }
        Err(e) => panic!("{url}: {e}"),
    }
}

fn tcp(addr: SocketAddr) -> TcpStream {
    let tcp = TcpStream::connect(addr).expect("connect");
    tcp.set_read_timeout(Some(PATIENCE)).unwrap();
    tcp
}

/// The next text message; fails on anything else, including a timeout.
fn next_text<S: std::io::Read + std::io::Write>(ws: &mut WebSocket<S>) -> String {
    match ws.read() {
        Ok(WsMessage::Text(text)) => text.to_string(),
        other => panic!("expected a text message, got {other:?}"),
    }
}

/// Reads text messages until one satisfies `wanted`; returns it.
fn until<S: std::io::Read + std::io::Write>(ws: &mut WebSocket<S>, wanted: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let text = next_text(ws);
        if wanted(&text) {
            return text;
        }
        assert!(Instant::now() < deadline, "nothing wanted came; last {text:?}");
    }
}

/// Reads until the server's close frame, answers it, reads until the
/// server ends the TCP connection and hangs up, as a browser does;
/// returns the close code.
fn close_code<S: std::io::Read + std::io::Write>(mut ws: WebSocket<S>) -> WsCloseCode {
    let code = loop {
        match ws.read() {
            Ok(WsMessage::Close(frame)) => break frame.expect("a close code").code,
            Ok(_) => continue,
            Err(e) => panic!("the connection ended without a close frame: {e}"),
        }
    };
    // The answer goes out with the next read, which then waits for the
    // server's end of stream.
    loop {
        match ws.read() {
            Ok(_) => continue,
            Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => return code,
            Err(e) => panic!("after the close: {e}"),
        }
    }
}

/// The status line of a plain HTTP answer to an upgrade request for
/// `target`.
fn upgrade_status(addr: SocketAddr, target: &str) -> String {
    let mut stream = tcp(addr);
    let request = format!(
        "GET {target} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    std::io::Write::write_all(&mut stream, request.as_bytes()).unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.lines().next().unwrap_or_default().to_owned()
}

/// The `seq` of a tick (`{"seq":N,"ms":…}`).
fn tick_seq(text: &str) -> Option<u64> {
    text.strip_prefix(r#"{"seq":"#)?.split(',').next()?.parse().ok()
}

#[test]
fn ticker_feeds_subscribes_echoes_and_stops_on_sigint() {
    let mut ticker = Example::start("ticker", &["127.0.0.1:0"]);
    let url = format!("ws://{}/ticker", ticker.addr);
    let mut ws = client(&url, tcp(ticker.addr));

    // The feed: ticks in order, from the application's thread.
    let first = tick_seq(&until(&mut ws, |t| tick_seq(t).is_some())).unwrap();
    let second = tick_seq(&until(&mut ws, |t| tick_seq(t).is_some())).unwrap();
    assert!(second > first, "ticks out of order: {first} then {second}");

    // Anything else comes back.
    ws.send(WsMessage::text("hello ticker")).unwrap();
    until(&mut ws, |t| t == "hello ticker");
    ws.send(WsMessage::binary(vec![0u8, 1, 2, 255])).unwrap();
    let deadline = Instant::now() + PATIENCE;
    loop {
        match ws.read().unwrap() {
            WsMessage::Binary(bytes) => {
                assert_eq!(&bytes[..], &[0u8, 1, 2, 255]);
                break;
            }
            _ => assert!(Instant::now() < deadline, "no binary echo"),
        }
    }

    // sub:<topic> subscribes to another topic, once.
    ws.send(WsMessage::text("sub:seconds")).unwrap();
    until(&mut ws, |t| t == "subscribed:seconds");
    until(&mut ws, |t| t.starts_with(r#"{"second":"#));
    ws.send(WsMessage::text("sub:seconds")).unwrap();
    until(&mut ws, |t| t == "already:seconds");
    // Past the library's default topic name limit (256 bytes): refused
    // with the reason, the connection stays.
    ws.send(WsMessage::text(format!("sub:{}", "x".repeat(300)))).unwrap();
    until(&mut ws, |t| t == "refused:topic name longer than 256 bytes");
    until(&mut ws, |t| tick_seq(t).is_some());

    // Another path is not served.
    assert!(upgrade_status(ticker.addr, "/elsewhere").contains(" 404 "));

    // Ctrl-C: close 1001 to the client, then a clean exit with nobody cut.
    ticker.interrupt_closing(ws, "ticker: stopped (0 connection(s) cut at the deadline)");
}

#[test]
fn chat_rooms_carry_messages_joins_and_departures() {
    let mut chat = Example::start("chat", &["127.0.0.1:0"]);
    let join = |room: &str, name: &str| client(&format!("ws://{}/chat/{room}?name={name}", chat.addr), tcp(chat.addr));
    let mut alice = join("lobby", "alice");
    assert_eq!(next_text(&mut alice), "* alice joined (1 here)");
    let mut bob = join("lobby", "bob");
    assert_eq!(next_text(&mut bob), "* bob joined (2 here)");
    assert_eq!(next_text(&mut alice), "* bob joined (2 here)");
    let mut carol = join("kitchen", "carol");
    assert_eq!(next_text(&mut carol), "* carol joined (1 here)");

    // A message reaches the whole room, the sender included, and no other
    // room.
    alice.send(WsMessage::text("hi all")).unwrap();
    assert_eq!(next_text(&mut alice), "alice: hi all");
    assert_eq!(next_text(&mut bob), "alice: hi all");
    carol.send(WsMessage::text("anyone?")).unwrap();
    assert_eq!(next_text(&mut carol), "carol: anyone?");

    // A departure is announced from the close callback.
    bob.close(None).unwrap();
    // Until the server's answer and its end of stream; then bob hangs up.
    while bob.read().is_ok() {}
    drop(bob);
    assert_eq!(next_text(&mut alice), "* bob left");

    // The server's limits: a message over 4 KiB closes with 1009; binary
    // is refused with 1003.
    carol.send(WsMessage::text("x".repeat(5000))).unwrap();
    assert_eq!(close_code(carol), WsCloseCode::Size);
    let mut dave = join("kitchen", "dave");
    assert_eq!(next_text(&mut dave), "* dave joined (1 here)");
    dave.send(WsMessage::binary(vec![1u8, 2, 3])).unwrap();
    assert_eq!(close_code(dave), WsCloseCode::Unsupported);

    // Bad names get 400, other paths 404, before any WebSocket.
    assert!(upgrade_status(chat.addr, "/chat/lobby").contains(" 400 "));
    assert!(upgrade_status(chat.addr, "/chat/a%20b?name=eve").contains(" 400 "));
    assert!(upgrade_status(chat.addr, "/").contains(" 404 "));

    chat.interrupt_closing(alice, "chat: stopped (0 connection(s) cut at the deadline)");
}

/// A certificate for `localhost` in PEM files, and a client configuration
/// that trusts it.
fn localhost_pem(dir: &Path) -> (PathBuf, PathBuf, Arc<ClientConfig>) {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".into()]).unwrap().self_signed(&key).unwrap();
    std::fs::create_dir_all(dir).unwrap();
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    let mut roots = RootCertStore::empty();
    roots.add(cert.der().clone()).unwrap();
    let config = ClientConfig::builder_with_provider(ringcast::tls::crypto_provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    (cert_path, key_path, Arc::new(config))
}

#[test]
fn tls_echo_serves_wss_from_pem_files() {
    let dir = std::env::temp_dir().join(format!("ringcast-example-tls-{}", std::process::id()));
    let (cert, key, client_config) = localhost_pem(&dir);
    let mut server = Example::start("tls_echo", &[cert.to_str().unwrap(), key.to_str().unwrap(), "127.0.0.1:0"]);
    let name = ServerName::try_from("localhost").unwrap();
    let tls = ClientConnection::new(client_config, name).unwrap();
    let stream = StreamOwned::new(tls, tcp(server.addr));
    let mut ws = client(&format!("wss://localhost:{}/", server.addr.port()), stream);
    ws.send(WsMessage::text("over TLS")).unwrap();
    assert_eq!(next_text(&mut ws), "over TLS");

    // A client that does not speak TLS gets no WebSocket.
    assert!(!upgrade_status(server.addr, "/").contains(" 101 "));

    server.interrupt_closing(ws, "tls_echo: stopped");

    // A key that is not the certificate's: the example says which files
    // and exits with failure, without listening.
    let other = dir.join("other.pem");
    std::fs::write(&other, rcgen::KeyPair::generate().unwrap().serialize_pem()).unwrap();
    let output = Command::new(example_path("tls_echo"))
        .args([cert.to_str().unwrap(), other.to_str().unwrap(), "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("certificate and key do not go together"));
    std::fs::remove_dir_all(&dir).unwrap_or_default();
}
