//! The frame layer a client needs, written here on purpose rather than taken
//! from the server's codec (so a bug there cannot cancel out): where to
//! connect, masked client frames, and the header of a server frame.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::Path;
use std::sync::Arc;

use ringcast_proto::handshake::WsUri;
use ringcast_proto::mask::apply_mask;

/// Continuation frame.
pub const OP_CONTINUATION: u8 = 0x0;
/// Text frame.
pub const OP_TEXT: u8 = 0x1;
/// Binary frame.
pub const OP_BINARY: u8 = 0x2;
/// Close frame.
pub const OP_CLOSE: u8 = 0x8;
/// Ping frame.
pub const OP_PING: u8 = 0x9;
/// Pong frame.
pub const OP_PONG: u8 = 0xA;

/// Largest server frame accepted (a guard against a garbage length).
pub const MAX_FRAME: usize = 64 << 20;

/// A WebSocket server to connect to.
#[derive(Debug, Clone)]
pub struct Target {
    /// The URL as given.
    pub url: String,
    /// Parsed: host, port, resource.
    pub uri: WsUri,
    /// The address connected to.
    pub addr: SocketAddr,
    /// For `wss://`: the TLS configuration (trusting `--tls-ca`).
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

impl Target {
    /// Parses and resolves `ws://host[:port]/path?query` (tests).
    #[cfg(test)]
    pub fn parse(url: &str) -> Result<Target, String> {
        Target::with_ca(url, None)
    }

    /// Parses and resolves `ws://` or `wss://host[:port]/path?query`;
    /// `wss://` needs `ca`, the PEM file the server's certificate verifies
    /// against.
    pub fn with_ca(url: &str, ca: Option<&Path>) -> Result<Target, String> {
        let uri = WsUri::parse(url).map_err(|e| format!("{url}: {e}"))?;
        let tls = match (uri.is_secure(), ca) {
            (false, _) => None,
            (true, Some(ca)) => Some(crate::tls::client_config(ca)?),
            (true, None) => {
                return Err(format!("{url}: wss:// needs --tls-ca FILE (the server's certificate or CA, PEM)"))
            }
        };
        let addr = resolve(uri.host(), uri.port())?;
        Ok(Target { url: url.to_string(), uri, addr, tls })
    }
}

/// The first address of `host:port`.
pub fn resolve(host: &str, port: u16) -> Result<SocketAddr, String> {
    (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .next()
        .ok_or_else(|| format!("no address for {host}"))
}

/// Bytes a client frame with a `len`-byte payload takes.
pub fn client_frame_len(len: usize) -> usize {
    header_len(len) + 4 + len
}

fn header_len(len: usize) -> usize {
    match len {
        n if n < 126 => 2,
        n if n <= 0xffff => 4,
        _ => 10,
    }
}

/// Appends a masked, final client frame of `len` payload bytes to `out`:
/// `fill` appends exactly the payload, which is then masked in place with
/// `key` (one pass, SIMD for longer payloads).
#[inline]
pub fn push_frame(out: &mut Vec<u8>, opcode: u8, len: usize, key: [u8; 4], fill: impl FnOnce(&mut Vec<u8>)) {
    out.reserve(client_frame_len(len));
    out.push(0x80 | opcode);
    match len {
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
    out.extend_from_slice(&key);
    let start = out.len();
    fill(out);
    debug_assert_eq!(out.len() - start, len, "fill must append exactly the payload");
    apply_mask(&mut out[start..], key, 0);
}

/// Appends a masked frame carrying `payload` (control frames, pings).
pub fn push_bytes(out: &mut Vec<u8>, opcode: u8, payload: &[u8], key: [u8; 4]) {
    push_frame(out, opcode, payload.len(), key, |o| o.extend_from_slice(payload));
}

/// The header of one server frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    /// Last frame of its message.
    pub fin: bool,
    /// Opcode (low four bits of the first byte).
    pub opcode: u8,
    /// Header bytes before the payload.
    pub header_len: usize,
    /// Payload bytes.
    pub payload_len: usize,
    /// RSV1: a compressed message (permessage-deflate, when negotiated).
    pub rsv1: bool,
}

impl Head {
    /// Header plus payload.
    pub fn frame_len(&self) -> usize {
        self.header_len + self.payload_len
    }
}

/// Parses the server frame header at the front of `buf`: `Ok(None)` when
/// more bytes are needed, an error for what a server must not send (mask,
/// reserved bits, bad control frames, unknown opcodes, absurd lengths).
/// RSV1 is allowed on data frames when `deflate` (permessage-deflate was
/// negotiated).
pub fn parse_head(buf: &[u8], deflate: bool) -> Result<Option<Head>, String> {
    let [b0, b1, ..] = *buf else { return Ok(None) };
    let rsv1 = b0 & 0x40 != 0;
    if b0 & 0x30 != 0 || (rsv1 && (!deflate || !matches!(b0 & 0x0f, OP_TEXT | OP_BINARY))) {
        return Err(format!("reserved bits set in a server frame (byte 0x{b0:02x}; not negotiated)"));
    }
    if b1 & 0x80 != 0 {
        return Err("a masked server frame (RFC 6455 §5.1: servers must not mask)".into());
    }
    let (fin, opcode) = (b0 & 0x80 != 0, b0 & 0x0f);
    let (payload_len, header_len) = match b1 & 0x7f {
        126 => match buf.get(2..4) {
            Some(b) => (usize::from(u16::from_be_bytes([b[0], b[1]])), 4),
            None => return Ok(None),
        },
        127 => match buf.get(2..10) {
            Some(b) => {
                let n = u64::from_be_bytes(b.try_into().map_err(|_| "length bytes")?);
                (usize::try_from(n).unwrap_or(usize::MAX), 10)
            }
            None => return Ok(None),
        },
        n => (usize::from(n), 2),
    };
    match opcode {
        OP_CONTINUATION | OP_TEXT | OP_BINARY => {}
        OP_CLOSE | OP_PING | OP_PONG if !fin || payload_len > 125 => {
            return Err(format!("control frame 0x{opcode:x} fragmented or over 125 bytes"));
        }
        OP_CLOSE | OP_PING | OP_PONG => {}
        other => return Err(format!("unknown opcode 0x{other:x}")),
    }
    if payload_len > MAX_FRAME {
        return Err(format!("a server frame of {payload_len} bytes (limit {MAX_FRAME})"));
    }
    Ok(Some(Head { fin, opcode, header_len, payload_len, rsv1 }))
}

/// A server frame as a server would write it (tests).
#[cfg(test)]
pub fn server_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![if fin { 0x80 } else { 0 } | opcode];
    match payload.len() {
        n if n < 126 => out.push(n as u8),
        n if n <= 0xffff => {
            out.push(126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(payload);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_frames_are_masked_and_sized() {
        for len in [0usize, 5, 125, 126, 65535, 65536] {
            let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let mut out = vec![9u8];
            push_bytes(&mut out, OP_BINARY, &payload, [1, 2, 3, 4]);
            assert_eq!(out.len() - 1, client_frame_len(len));
            assert_eq!(out[1], 0x82);
            assert_ne!(out[2] & 0x80, 0, "mask bit");
            let body = &mut out[1 + client_frame_len(len) - len..];
            apply_mask(body, [1, 2, 3, 4], 0);
            assert_eq!(body, &payload[..]);
        }
    }

    #[test]
    fn heads_parse_and_refuse() {
        let frame = server_frame(true, OP_TEXT, &[b'x'; 300]);
        assert_eq!(parse_head(&frame[..3], false), Ok(None));
        assert_eq!(
            parse_head(&frame, false),
            Ok(Some(Head { fin: true, opcode: OP_TEXT, header_len: 4, payload_len: 300, rsv1: false }))
        );
        assert!(parse_head(&[0x82, 0x81, 0, 0, 0, 0, 0], false).is_err(), "masked");
        assert!(parse_head(&[0xc2, 0x00], false).is_err(), "rsv1");
        assert!(parse_head(&[0xc2, 0x00], true).unwrap().unwrap().rsv1, "rsv1 with deflate");
        assert!(parse_head(&[0xc9, 0x00], true).is_err(), "rsv1 on a ping");
        assert!(parse_head(&[0xa2, 0x00], true).is_err(), "rsv2");
        assert!(parse_head(&[0x09, 0x00], false).is_err(), "fragmented ping");
        assert!(parse_head(&[0x83, 0x00], false).is_err(), "opcode 3");
        assert!(parse_head(&[0x82, 127, 0xff, 0, 0, 0, 0, 0, 0, 0], false).is_err(), "huge");
    }
}
