//! Header field helpers shared by both sides: token lists and extension
//! offers (RFC 7230 §7, RFC 6455 §9.1).

/// Decides when a growing HTTP head is worth parsing, for both sides.
///
/// The full parser runs on the first look and then only once a new line has
/// ended, so a peer trickling its head a byte at a time costs a scan of each
/// new byte, not a re-parse of the whole head per byte, while garbage is
/// still refused as soon as its first line is known to be wrong.
#[derive(Debug, Clone)]
pub(crate) struct HeadScanner {
    scanned: usize,
    max_head_bytes: usize,
}

impl HeadScanner {
    pub(crate) fn new(max_head_bytes: usize) -> Self {
        HeadScanner { scanned: 0, max_head_bytes }
    }

    pub(crate) fn set_max(&mut self, max_head_bytes: usize) {
        self.max_head_bytes = max_head_bytes;
    }

    /// Whether to run the parser on `buf` (everything received so far).
    pub(crate) fn should_parse(&mut self, buf: &[u8]) -> bool {
        let first = self.scanned == 0;
        let fresh = buf.get(self.scanned..).unwrap_or(buf);
        self.scanned = buf.len();
        first || fresh.contains(&b'\n')
    }

    /// Whether a head (or an unfinished one) of `len` bytes is allowed.
    pub(crate) fn within_limit(&self, len: usize) -> bool {
        len <= self.max_head_bytes
    }
}

/// The header fields of a parsed head (either side), borrowing the receive
/// buffer. Values are kept as sent and trimmed on lookup.
#[derive(Debug, Clone)]
pub(crate) struct Fields<'b>(Vec<(&'b str, &'b [u8])>);

/// What a header field says about a token it must carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenCheck {
    /// No field of that name.
    Missing,
    /// Fields of that name, none listing the token.
    Absent,
    /// Some field of that name lists the token.
    Present,
}

impl<'b> Fields<'b> {
    pub(crate) fn from_httparse(parsed: &[httparse::Header<'b>]) -> Self {
        Fields(parsed.iter().map(|h| (h.name, h.value)).collect())
    }

    /// Every field in order, as sent.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&'b str, &'b [u8])> + '_ {
        self.0.iter().copied()
    }

    /// The trimmed values of every field named `name` (case-insensitive).
    pub(crate) fn all<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'b [u8]> + 's {
        self.0.iter().filter(move |(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| trim(v))
    }

    /// The first trimmed value of the field `name`.
    pub(crate) fn first(&self, name: &str) -> Option<&'b [u8]> {
        self.all(name).next()
    }

    /// Whether any `name` field lists `token` (e.g. `Upgrade: websocket`),
    /// however many lines the field is split over.
    pub(crate) fn token(&self, name: &str, token: &str) -> TokenCheck {
        let mut values = self.all(name).peekable();
        if values.peek().is_none() {
            TokenCheck::Missing
        } else if values.any(|v| has_token(v, token)) {
            TokenCheck::Present
        } else {
            TokenCheck::Absent
        }
    }

    /// Every extension in every `Sec-WebSocket-Extensions` field.
    pub(crate) fn extensions(&self) -> Vec<ExtensionOffer<'b>> {
        let mut out = Vec::new();
        for value in self.all("Sec-WebSocket-Extensions") {
            parse_extensions(value, &mut out);
        }
        out
    }
}

/// Trims optional whitespace (space and tab) from both ends.
pub(crate) fn trim(v: &[u8]) -> &[u8] {
    let start = v.iter().position(|b| !matches!(b, b' ' | b'\t')).unwrap_or(v.len());
    let end = v.iter().rposition(|b| !matches!(b, b' ' | b'\t')).map_or(start, |i| i + 1);
    &v[start..end]
}

/// The non-empty, trimmed items of a comma-separated header value.
pub(crate) fn list_items(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value.split(|&b| b == b',').map(trim).filter(|item| !item.is_empty())
}

/// Whether a comma-separated value contains `token`, ignoring ASCII case.
pub(crate) fn has_token(value: &[u8], token: &str) -> bool {
    list_items(value).any(|item| item.eq_ignore_ascii_case(token.as_bytes()))
}

/// Whether a header name or value is safe to write into an HTTP head.
pub(crate) fn is_safe_field(bytes: &[u8]) -> bool {
    !bytes.iter().any(|&b| b == b'\r' || b == b'\n' || b == 0)
}

/// One extension from a `Sec-WebSocket-Extensions` header, e.g.
/// `permessage-deflate; client_max_window_bits`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtensionOffer<'b> {
    /// The extension token.
    pub name: &'b str,
    /// Its parameters, each a name and an optional value (quotes removed).
    pub params: Vec<(&'b str, Option<&'b str>)>,
}

/// The extensions of one `Sec-WebSocket-Extensions` value, in order.
pub fn parse_extension_header(value: &[u8]) -> Vec<ExtensionOffer<'_>> {
    let mut out = Vec::new();
    parse_extensions(value, &mut out);
    out
}

/// Parses every extension of a header value; items that are not text are
/// skipped (the server will not accept what it cannot name).
pub(crate) fn parse_extensions<'b>(value: &'b [u8], into: &mut Vec<ExtensionOffer<'b>>) {
    let Ok(value) = std::str::from_utf8(value) else { return };
    for item in value.split(',') {
        let mut parts = item.split(';').map(|p| p.trim_matches([' ', '\t']));
        let Some(name) = parts.next().filter(|n| !n.is_empty()) else { continue };
        let params = parts
            .filter(|p| !p.is_empty())
            .map(|p| match p.split_once('=') {
                Some((k, v)) => (k.trim_matches([' ', '\t']), Some(v.trim_matches([' ', '\t', '"']))),
                None => (p, None),
            })
            .collect();
        into.push(ExtensionOffer { name, params });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_case_insensitive_and_trimmed() {
        assert!(has_token(b"keep-alive, Upgrade", "upgrade"));
        assert!(has_token(b"  UPGRADE\t", "upgrade"));
        assert!(!has_token(b"upgrades", "upgrade"));
        assert!(!has_token(b"", "upgrade"));
    }

    #[test]
    fn extension_offers_parse() {
        let mut out = Vec::new();
        parse_extensions(b"permessage-deflate; client_max_window_bits, x-foo; a=\"1\" ;b", &mut out);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].name, "permessage-deflate");
        assert_eq!(out[0].params, vec![("client_max_window_bits", None)]);
        assert_eq!(out[1].params, vec![("a", Some("1")), ("b", None)]);
    }

    #[test]
    fn unsafe_fields_detected() {
        assert!(is_safe_field(b"chat"));
        assert!(!is_safe_field(b"a\r\nSet-Cookie: x"));
    }
}
