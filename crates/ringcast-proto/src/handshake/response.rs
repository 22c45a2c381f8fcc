//! Writing HTTP responses: the 101, rejections, and plain answers.

use std::io::Write;

use super::headers::is_safe_field;
use crate::error::UsageError;

/// The standard reason phrase of `status` (RFC 9110 and the IANA HTTP
/// status code registry). A code without one gets its class's name
/// ("Client Error" for an unregistered 4xx), never an empty phrase.
pub fn reason_phrase(status: u16) -> &'static str {
    registered(status).unwrap_or(match status {
        100..=199 => "Informational",
        200..=299 => "Success",
        300..=399 => "Redirection",
        400..=499 => "Client Error",
        _ => "Server Error",
    })
}

/// The phrase of a registered status.
fn registered(status: u16) -> Option<&'static str> {
    Some(match status {
        100 => "Continue",
        101 => "Switching Protocols",
        102 => "Processing",
        103 => "Early Hints",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        203 => "Non-Authoritative Information",
        204 => "No Content",
        205 => "Reset Content",
        206 => "Partial Content",
        207 => "Multi-Status",
        208 => "Already Reported",
        226 => "IM Used",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        305 => "Use Proxy",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        421 => "Misdirected Request",
        422 => "Unprocessable Content",
        423 => "Locked",
        424 => "Failed Dependency",
        425 => "Too Early",
        426 => "Upgrade Required",
        428 => "Precondition Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        451 => "Unavailable For Legal Reasons",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        506 => "Variant Also Negotiates",
        507 => "Insufficient Storage",
        508 => "Loop Detected",
        511 => "Network Authentication Required",
        _ => return None,
    })
}

/// Writes the status line and header fields, without the blank line.
pub(crate) fn write_head(status: u16, fields: &[(&str, &str)], out: &mut Vec<u8>) -> Result<(), UsageError> {
    if !fields.iter().all(|(n, v)| is_safe_field(n.as_bytes()) && is_safe_field(v.as_bytes()) && !n.is_empty()) {
        return Err(UsageError::InvalidHeader);
    }
    // Writing into a Vec cannot fail.
    let _ = write!(out, "HTTP/1.1 {status} {}\r\n", reason_phrase(status));
    for (name, value) in fields {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    Ok(())
}

/// Writes a complete non-101 response that ends the connection: a
/// rejection (400, 403, 404, 426, 431, 503…) or a plain HTTP answer such as
/// `/healthz`. Adds `Content-Length` and `Connection: close`, a text
/// `Content-Type` when the body is non-empty and none is given, and the
/// `Sec-WebSocket-Version: 13` field RFC 6455 §4.4 requires with 426.
/// `extra` may not carry `Content-Length`, `Connection` or
/// `Transfer-Encoding`: this function owns the response's framing.
pub fn write_response(status: u16, extra: &[(&str, &str)], body: &[u8], out: &mut Vec<u8>) -> Result<(), UsageError> {
    if status == 101 || !(200..=599).contains(&status) {
        return Err(UsageError::InvalidHeader);
    }
    // These frame the response; a second copy from the caller could make a
    // proxy read the body differently (request smuggling).
    let framing = ["Content-Length", "Connection", "Transfer-Encoding"];
    if extra.iter().any(|(n, _)| framing.iter().any(|f| n.eq_ignore_ascii_case(f))) {
        return Err(UsageError::InvalidHeader);
    }
    let has = |name: &str| extra.iter().any(|(n, _)| n.eq_ignore_ascii_case(name));
    let length = body.len().to_string();
    let mut fields: Vec<(&str, &str)> = Vec::with_capacity(extra.len() + 4);
    if status == 426 && !has("Sec-WebSocket-Version") {
        fields.push(("Sec-WebSocket-Version", "13"));
    }
    if !body.is_empty() && !has("Content-Type") {
        fields.push(("Content-Type", "text/plain; charset=utf-8"));
    }
    fields.push(("Content-Length", &length));
    fields.push(("Connection", "close"));
    fields.extend_from_slice(extra);
    write_head(status, &fields, out)?;
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upgrade_required_names_version_13() {
        let mut out = Vec::new();
        write_response(426, &[], b"", &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 426 Upgrade Required\r\n"));
        assert!(text.contains("\r\nSec-WebSocket-Version: 13\r\n"));
        assert!(text.ends_with("Content-Length: 0\r\nConnection: close\r\n\r\n"));
    }

    #[test]
    fn every_status_has_its_standard_phrase() {
        let mut out = Vec::new();
        write_response(501, &[], b"", &mut out).unwrap();
        assert!(String::from_utf8(out).unwrap().starts_with("HTTP/1.1 501 Not Implemented\r\n"));
        let named = [(302, "Found"), (409, "Conflict"), (415, "Unsupported Media Type"), (502, "Bad Gateway")];
        for (status, phrase) in named {
            assert_eq!(reason_phrase(status), phrase);
        }
        assert_eq!(reason_phrase(499), "Client Error", "unregistered: its class");
        assert_eq!(reason_phrase(599), "Server Error");
        assert!((100..=599).all(|status| reason_phrase(status) != "Unknown"));
    }

    #[test]
    fn refuses_header_injection_and_bad_status() {
        let mut out = Vec::new();
        assert_eq!(write_response(200, &[("X", "a\r\nB: c")], b"", &mut out), Err(UsageError::InvalidHeader));
        assert_eq!(write_response(101, &[], b"", &mut out), Err(UsageError::InvalidHeader));
        assert_eq!(write_response(200, &[("content-length", "5")], b"", &mut out), Err(UsageError::InvalidHeader));
        assert!(out.is_empty());
    }

    #[test]
    fn body_gets_length_and_type() {
        let mut out = Vec::new();
        write_response(200, &[], b"ok", &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("Content-Type: text/plain; charset=utf-8\r\n"));
        assert!(text.contains("Content-Length: 2\r\n"));
        assert!(text.ends_with("\r\n\r\nok"));
    }
}
