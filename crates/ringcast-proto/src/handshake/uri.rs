//! WebSocket URIs (RFC 6455 §3): `ws://host[:port]/path?query` and `wss://…`.

use std::fmt;

use crate::error::UsageError;

/// A parsed WebSocket URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsUri {
    secure: bool,
    /// Host without IPv6 brackets.
    host: String,
    port: u16,
    /// Path and query, at least `/`.
    resource: String,
}

impl WsUri {
    /// Parses a URI. The scheme is case-insensitive; ports default to 80
    /// (`ws`) and 443 (`wss`); a fragment is refused, as RFC 6455 says it is
    /// meaningless here; so are user info and bytes that cannot travel in a
    /// request line.
    pub fn parse(uri: &str) -> Result<WsUri, UsageError> {
        let (secure, rest) = if let Some(rest) = strip_prefix_ignore_case(uri, "ws://") {
            (false, rest)
        } else if let Some(rest) = strip_prefix_ignore_case(uri, "wss://") {
            (true, rest)
        } else {
            return Err(UsageError::InvalidUri("scheme must be ws:// or wss://"));
        };
        if uri.contains('#') {
            return Err(UsageError::InvalidUri("fragments are not allowed"));
        }
        if !uri.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(UsageError::InvalidUri("spaces, control or non-ASCII characters"));
        }
        let split = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, resource) = rest.split_at(split);
        if authority.contains('@') {
            return Err(UsageError::InvalidUri("user info is not allowed"));
        }
        let (host, port) = split_host_port(authority)?;
        let port = match port {
            Some(p) => p,
            None if secure => 443,
            None => 80,
        };
        let resource = match resource {
            "" => "/".to_owned(),
            r if r.starts_with('?') => format!("/{r}"),
            r => r.to_owned(),
        };
        Ok(WsUri { secure, host: host.to_owned(), port, resource })
    }

    /// `wss://`: the connection must be wrapped in TLS.
    pub fn is_secure(&self) -> bool {
        self.secure
    }

    /// The host to connect to (IPv6 without brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port, explicit or default.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Path and query, as sent in the request line.
    pub fn resource(&self) -> &str {
        &self.resource
    }

    /// The `Host` header value: the host, with the port when it is not the
    /// scheme's default.
    pub fn host_header(&self) -> String {
        let host = if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
        let default = if self.secure { 443 } else { 80 };
        if self.port == default {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

impl fmt::Display for WsUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.secure { "wss" } else { "ws" };
        let host = if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
        write!(f, "{scheme}://{host}:{}{}", self.port, self.resource)
    }
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| &s[prefix.len()..])
}

fn split_host_port(authority: &str) -> Result<(&str, Option<u16>), UsageError> {
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or(UsageError::InvalidUri("unclosed IPv6 bracket"))?;
        match after {
            "" => (host, None),
            p => (host, Some(p.strip_prefix(':').ok_or(UsageError::InvalidUri("junk after IPv6 address"))?)),
        }
    } else {
        match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err(UsageError::InvalidUri("empty host"));
    }
    let port = match port {
        None => None,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n != 0 && p.bytes().all(|b| b.is_ascii_digit()) => Some(n),
            _ => return Err(UsageError::InvalidUri("port must be 1-65535")),
        },
    };
    Ok((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_parts() {
        let u = WsUri::parse("ws://example.com").unwrap();
        assert_eq!((u.is_secure(), u.host(), u.port(), u.resource()), (false, "example.com", 80, "/"));
        assert_eq!(u.host_header(), "example.com");
        let u = WsUri::parse("WSS://example.com/chat?room=1").unwrap();
        assert_eq!((u.is_secure(), u.port(), u.resource()), (true, 443, "/chat?room=1"));
        let u = WsUri::parse("ws://127.0.0.1:9001?x").unwrap();
        assert_eq!((u.port(), u.resource(), u.host_header()), (9001, "/?x", "127.0.0.1:9001".to_owned()));
        let u = WsUri::parse("ws://[::1]:8080/a").unwrap();
        assert_eq!((u.host(), u.port(), u.host_header()), ("::1", 8080, "[::1]:8080".to_owned()));
    }

    #[test]
    fn refusals() {
        for bad in [
            "http://x/",
            "ws://x/#frag",
            "ws://x/a b",
            "ws://:80/",
            "ws://x:0/",
            "ws://x:99999/",
            "ws://x:+80/",
            "ws://u@x/",
            "ws://[::1/",
            "ws://",
        ] {
            assert!(WsUri::parse(bad).is_err(), "{bad} should be refused");
        }
    }
}
