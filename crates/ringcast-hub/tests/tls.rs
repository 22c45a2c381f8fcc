//! `--tls-cert`, `--tls-key`, `--tls-listen`: rooms, publish and pages
//! over TLS beside plain ones, and the certificate read again on request
//! (what SIGHUP does) without dropping connections.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use ringcast::tls::rustls::pki_types::{CertificateDer, ServerName};
use ringcast::tls::rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use tokio_tungstenite::tungstenite::{self, Message};

type Tls = StreamOwned<ClientConnection, TcpStream>;

/// Writes a self-signed certificate for `localhost` and its key; returns
/// the certificate's DER.
fn write_pair(cert: &Path, key: &Path) -> CertificateDer<'static> {
    let pair = rcgen::KeyPair::generate().unwrap();
    let made = rcgen::CertificateParams::new(vec!["localhost".into()]).unwrap().self_signed(&pair).unwrap();
    std::fs::write(cert, made.pem()).unwrap();
    std::fs::write(key, pair.serialize_pem()).unwrap();
    CertificateDer::from(made.der().to_vec())
}

fn connect(client: &Arc<ClientConfig>, addr: SocketAddr) -> Tls {
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let conn = ClientConnection::new(client.clone(), ServerName::try_from("localhost").unwrap()).unwrap();
    let mut tls = StreamOwned::new(conn, tcp);
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock).unwrap();
    }
    tls
}

/// The certificate a new connection is shown.
fn served_certificate(client: &Arc<ClientConfig>, addr: SocketAddr) -> CertificateDer<'static> {
    connect(client, addr).conn.peer_certificates().unwrap()[0].clone()
}

/// A room client over wss.
fn room(client: &Arc<ClientConfig>, addr: SocketAddr, name: &str) -> tungstenite::WebSocket<Tls> {
    let url = format!("wss://localhost:{}/topics/{name}", addr.port());
    tungstenite::client::client(url, connect(client, addr)).unwrap().0
}

/// An HTTP request over TLS: (status, body).
fn https(client: &Arc<ClientConfig>, addr: SocketAddr, request: &[u8]) -> (u16, String) {
    let mut tls = connect(client, addr);
    tls.write_all(request).unwrap();
    let mut answer = Vec::new();
    // The hub closes after answering (with close_notify, or without).
    let _ = tls.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}

struct Dir(PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn rooms_publish_and_pages_over_tls_and_the_certificate_is_read_again_on_request() {
    let dir = Dir(std::env::temp_dir().join(format!("ringcast-hub-tls-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0).unwrap();
    let (cert, key) = (dir.0.join("cert.pem"), dir.0.join("key.pem"));
    let first = write_pair(&cert, &key);
    let (next_cert, next_key) = (dir.0.join("next-cert.pem"), dir.0.join("next-key.pem"));
    let second = write_pair(&next_cert, &next_key);
    let mut roots = RootCertStore::empty();
    roots.add(first.clone()).unwrap();
    roots.add(second.clone()).unwrap();
    let mut client = ClientConfig::builder_with_provider(ringcast::tls::crypto_provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    // A resumed session is not shown a certificate: every handshake here
    // must be a full one.
    client.resumption = ringcast::tls::rustls::client::Resumption::disabled();
    let client = Arc::new(client);
    let hub = TestHub::start(2, |c| {
        c.tls_cert = Some(cert.clone());
        c.tls_key = Some(key.clone());
        c.tls_listen = Some("127.0.0.1:0".into());
    });
    let tls_addr = hub.handle.tls_addr().expect("TLS served");
    assert_ne!(tls_addr, hub.addr(), "--tls-listen: plain stays on --listen");

    // A room with a subscriber on each side.
    let mut secure = room(&client, tls_addr, "news");
    let (mut plain, _) = tungstenite::client::client(
        format!("ws://{}/topics/news", hub.addr()),
        TcpStream::connect(hub.addr()).unwrap(),
    )
    .unwrap();
    hub.wait_subscribers("r:news", 2);
    let body = "over https";
    let post = format!(
        "POST /publish/news HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let (status, answer) = https(&client, tls_addr, post.as_bytes());
    assert_eq!((status, answer.trim()), (200, "{\"receivers\":2}"));
    assert_eq!(secure.read().unwrap(), Message::text(body));
    assert_eq!(plain.read().unwrap(), Message::text(body));
    // The chat page comes over https too.
    let (status, page) = https(&client, tls_addr, b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n");
    assert_eq!(status, 200);
    assert!(page.contains("<html") || page.contains("<!doctype") || page.contains("<!DOCTYPE"), "{page:.100}");

    // New files, read again: new handshakes get the new certificate, the
    // open connection stays.
    assert_eq!(served_certificate(&client, tls_addr), first);
    std::fs::copy(&next_cert, &cert).unwrap();
    std::fs::copy(&next_key, &key).unwrap();
    hub.hub.reload_tls().unwrap();
    assert_eq!(served_certificate(&client, tls_addr), second);
    assert_eq!(publish(hub.addr(), "news", "text/plain", b"after the reload"), 2);
    assert_eq!(secure.read().unwrap(), Message::text("after the reload"));
    // A broken key file: the reload says why and the certificate stays.
    std::fs::write(&key, "not a key").unwrap();
    let error = hub.hub.reload_tls().unwrap_err().to_string();
    assert!(error.contains("key file") && error.contains("key.pem"), "{error}");
    assert_eq!(served_certificate(&client, tls_addr), second);
}

#[test]
fn bad_certificate_files_stop_the_hub_from_starting_with_a_clear_error() {
    let dir = Dir(std::env::temp_dir().join(format!("ringcast-hub-tls-bad-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0).unwrap();
    let (cert, key) = (dir.0.join("cert.pem"), dir.0.join("key.pem"));
    write_pair(&cert, &key);
    let mut config = ringcast_hub::HubConfig::default();
    config.listen = "127.0.0.1:0".into();
    config.tls_cert = Some(dir.0.join("missing.pem"));
    config.tls_key = Some(key);
    let error = ringcast_hub::start(config).err().expect("refused").to_string();
    assert!(error.starts_with("certificate file ") && error.contains("missing.pem"), "{error}");
}
