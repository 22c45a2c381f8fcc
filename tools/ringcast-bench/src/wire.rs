//! The few bytes of the protocol a load generator needs: the upgrade
//! request, masked client frames, and the length of the server's reply.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

/// Where to connect and what to ask for.
#[derive(Debug, Clone)]
pub struct Target {
    pub addr: SocketAddr,
    pub host: String,
    pub path: String,
}

impl Target {
    /// Parses `ws://host:port/path`.
    pub fn parse(url: &str) -> Result<Target, String> {
        let rest = url.strip_prefix("ws://").ok_or_else(|| format!("not a ws:// URL: {url}"))?;
        let (authority, path) = rest.split_once('/').map_or((rest, "/".to_string()), |(a, p)| (a, format!("/{p}")));
        let with_port = if authority.contains(':') { authority.to_string() } else { format!("{authority}:80") };
        let addr = with_port
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve {authority}: {e}"))?
            .next()
            .ok_or_else(|| format!("no address for {authority}"))?;
        Ok(Target { addr, host: authority.to_string(), path })
    }
}

/// Connects and completes the opening handshake (blocking), returning the
/// socket ready for frames.
pub fn open(target: &Target) -> io::Result<TcpStream> {
    open_with(target, None)
}

/// Like [`open`], with the socket's receive buffer set before connecting
/// (a small one makes a subscriber that never reads fill the server's
/// queue soon, instead of the kernel's buffers).
pub fn open_with(target: &Target, recv_buffer: Option<usize>) -> io::Result<TcpStream> {
    let socket = socket2::Socket::new(socket2::Domain::for_address(target.addr), socket2::Type::STREAM, None)?;
    if let Some(bytes) = recv_buffer {
        socket.set_recv_buffer_size(bytes)?;
    }
    socket.connect(&target.addr.into())?;
    let mut stream: TcpStream = socket.into();
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        target.path, target.host
    );
    stream.write_all(request.as_bytes())?;
    // Read the head byte by byte so no frame byte is swallowed (there are
    // none yet, but a server may send one right after the 101).
    let mut head = Vec::with_capacity(256);
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte)? == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "closed during the handshake"));
        }
        head.push(byte[0]);
        if head.len() > 16 << 10 {
            return Err(io::Error::other("response head over 16 KiB"));
        }
    }
    if !head.starts_with(b"HTTP/1.1 101") {
        let line = String::from_utf8_lossy(&head).lines().next().unwrap_or_default().to_string();
        return Err(io::Error::other(format!("upgrade refused: {line}")));
    }
    stream.set_read_timeout(None)?;
    Ok(stream)
}

/// A masked binary frame carrying `payload`.
pub fn client_frame(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 14);
    out.push(0x82);
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
    let key = [0x12, 0x34, 0x56, 0x78];
    out.extend_from_slice(&key);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    out
}

/// Bytes of the server's unmasked frame for a payload of `len` bytes.
pub fn server_frame_len(len: usize) -> usize {
    let header = match len {
        n if n < 126 => 2,
        n if n <= 0xffff => 4,
        _ => 10,
    };
    header + len
}
