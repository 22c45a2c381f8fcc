//! Close codes and close-frame payloads (RFC 6455 §5.5.1, §7.4).

pub(crate) mod code;

pub use code::CloseCode;

use crate::error::{ProtocolError, UsageError};
use crate::utf8;

/// The longest close reason that fits a control frame (125 − 2 code bytes).
pub const MAX_REASON_LEN: usize = 123;

/// Checks a received close payload and returns its code. When a code is
/// present the (validated) reason is `payload[2..]`; the caller borrows it
/// from wherever the payload lives.
pub(crate) fn parse_payload(payload: &[u8]) -> Result<Option<CloseCode>, ProtocolError> {
    match payload.len() {
        0 => Ok(None),
        1 => Err(ProtocolError::InvalidClosePayload),
        _ => {
            let code = CloseCode(u16::from_be_bytes([payload[0], payload[1]]));
            if !code.is_valid_on_wire() {
                return Err(ProtocolError::InvalidCloseCode(code.0));
            }
            if !utf8::is_valid(&payload[2..]) {
                return Err(ProtocolError::InvalidUtf8);
            }
            Ok(Some(code))
        }
    }
}

/// Checks that a close we are asked to send is legal, and returns its
/// payload length.
pub(crate) fn check_outgoing(code: Option<CloseCode>, reason: &str) -> Result<usize, UsageError> {
    match code {
        None if reason.is_empty() => Ok(0),
        // A reason without a code cannot be encoded.
        None => Err(UsageError::InvalidCloseCode(CloseCode::NO_STATUS.0)),
        Some(c) if !c.is_valid_on_wire() => Err(UsageError::InvalidCloseCode(c.0)),
        Some(_) if reason.len() > MAX_REASON_LEN => Err(UsageError::CloseReasonTooLong),
        Some(_) => Ok(2 + reason.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_validity_matches_rfc_ranges() {
        let valid = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014];
        let invalid = [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535];
        for c in valid.into_iter().chain([3000, 3999, 4000, 4999]) {
            assert!(CloseCode(c).is_valid_on_wire(), "{c} should be valid");
        }
        for c in invalid {
            assert!(!CloseCode(c).is_valid_on_wire(), "{c} should be invalid");
        }
    }

    #[test]
    fn payload_rules() {
        assert_eq!(parse_payload(&[]), Ok(None));
        assert_eq!(parse_payload(&[0x03]), Err(ProtocolError::InvalidClosePayload));
        assert_eq!(parse_payload(&[0x03, 0xe8]), Ok(Some(CloseCode::NORMAL)));
        assert_eq!(parse_payload(&[0x03, 0xed]), Err(ProtocolError::InvalidCloseCode(1005)));
        assert_eq!(parse_payload(&[0x03, 0xe8, b'o', b'k']), Ok(Some(CloseCode::NORMAL)));
        assert_eq!(parse_payload(&[0x03, 0xe8, 0xff]), Err(ProtocolError::InvalidUtf8));
    }

    #[test]
    fn outgoing_rules() {
        assert_eq!(check_outgoing(None, ""), Ok(0));
        assert!(check_outgoing(None, "why").is_err());
        assert_eq!(check_outgoing(Some(CloseCode::ABNORMAL), ""), Err(UsageError::InvalidCloseCode(1006)));
        assert_eq!(check_outgoing(Some(CloseCode::NORMAL), "bye"), Ok(5));
        let long = "x".repeat(124);
        assert_eq!(check_outgoing(Some(CloseCode::NORMAL), &long), Err(UsageError::CloseReasonTooLong));
    }
}
