//! Topic names as NATS subjects.
//!
//! A topic is one subject token after the hub's prefix:
//! `{prefix}.{token}`. Letters, digits, `-` and `_` stand for themselves;
//! every other byte of the name's UTF-8 (`.`, `*`, `>`, spaces, `~`,
//! non-ASCII) becomes `~` and two uppercase hex digits. So `prices` is
//! `ringcast.topic.prices`, `eu.prices` is `ringcast.topic.eu~2Eprices`,
//! and `café` is `ringcast.topic.caf~C3~A9`: the token is never empty,
//! never a wildcard, never contains a separator or whitespace, and two
//! names never share a subject (the escape character escapes itself).
//! A program that is not a hub can publish to a topic by this subject.
//!
//! Two headers label a hub's messages: [`ORIGIN`] (the hub's random id, so
//! a hub skips its own) and [`KIND`] (what the payload is; a program that
//! is not a hub may leave it out).

use std::fmt::Write;

use crate::error::ConfigError;

/// Header naming the hub a message was published on.
pub const ORIGIN: &str = "Rc-Origin";
/// Header naming the payload's kind (`text`, `binary`, `json`; the
/// JetStream log adds `marker`).
pub const KIND: &str = "Rc-Kind";

/// Characters kept as they are.
fn plain(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_'
}

/// The subject of topic `name` under `prefix`.
pub fn encode(prefix: &str, name: &str) -> String {
    let mut subject = String::with_capacity(prefix.len() + 1 + name.len() * 3);
    subject.push_str(prefix);
    subject.push('.');
    for &byte in name.as_bytes() {
        if plain(byte) {
            subject.push(char::from(byte));
        } else {
            let _ = write!(subject, "~{byte:02X}");
        }
    }
    subject
}

/// The topic name of `subject` under `prefix`; `None` if the subject is
/// not one [`encode`] makes. (The hub never reads a topic from a subject:
/// this proves that two names never share one.)
#[cfg(test)]
pub fn decode(prefix: &str, subject: &str) -> Option<String> {
    let token = subject.strip_prefix(prefix)?.strip_prefix('.')?;
    let bytes = token.as_bytes();
    let mut name = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'~' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                let byte = u8::from_str_radix(hex, 16).ok()?;
                if plain(byte) || hex.bytes().any(|h| h.is_ascii_lowercase()) {
                    return None; // not how encode writes it
                }
                name.push(byte);
                i += 3;
            }
            byte if plain(byte) => {
                name.push(byte);
                i += 1;
            }
            _ => return None,
        }
    }
    String::from_utf8(name).ok().filter(|n| !n.is_empty())
}

/// Checks a subject prefix: dot-separated tokens of visible ASCII, none
/// empty, no wildcards.
pub fn check_prefix(prefix: &str) -> Result<(), ConfigError> {
    let bad = prefix.is_empty()
        || prefix.split('.').any(|token| {
            token.is_empty() || token == "*" || token == ">" || !token.bytes().all(|b| b.is_ascii_graphic())
        });
    if bad {
        Err(ConfigError::NatsPrefix(prefix.to_owned()))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PREFIX: &str = "ringcast.topic";

    #[test]
    fn names_become_one_safe_token_and_come_back() {
        assert_eq!(encode(PREFIX, "prices"), "ringcast.topic.prices");
        assert_eq!(encode(PREFIX, "eu.prices"), "ringcast.topic.eu~2Eprices");
        assert_eq!(encode(PREFIX, "café"), "ringcast.topic.caf~C3~A9");
        assert_eq!(encode(PREFIX, "~"), "ringcast.topic.~7E");
        let names = ["prices", "a.b", "*", ">", "a b\tc", "~7E", "x~y", "日本", "room-1_2", "%41", "\"q\""];
        let mut subjects = std::collections::HashSet::new();
        for name in names {
            let subject = encode(PREFIX, name);
            let token = subject.strip_prefix("ringcast.topic.").unwrap();
            assert!(!token.is_empty() && token.bytes().all(|b| b.is_ascii_graphic() && !b".*>".contains(&b)));
            assert_eq!(decode(PREFIX, &subject).as_deref(), Some(name));
            assert!(subjects.insert(subject), "two names, one subject: {name}");
        }
    }

    #[test]
    fn foreign_subjects_are_refused() {
        assert_eq!(decode(PREFIX, "other.topic.a"), None);
        assert_eq!(decode(PREFIX, "ringcast.topic."), None);
        assert_eq!(decode(PREFIX, "ringcast.topic.a.b"), None, "two tokens");
        assert_eq!(decode(PREFIX, "ringcast.topic.~4"), None);
        assert_eq!(decode(PREFIX, "ringcast.topic.~41"), None, "'A' is never escaped");
        assert_eq!(decode(PREFIX, "ringcast.topic.~c3~a9"), None, "lowercase hex");
        assert_eq!(decode(PREFIX, "ringcast.topic.~FF"), None, "not UTF-8");
        assert_eq!(decode(PREFIX, "ringcast.topicx.a"), None);
    }

    #[test]
    fn prefixes_are_checked() {
        assert!(check_prefix("ringcast.topic").is_ok());
        assert!(check_prefix("hubs-eu").is_ok());
        for bad in ["", ".a", "a.", "a..b", "a.*", "a.>", "a b"] {
            assert!(check_prefix(bad).is_err(), "{bad:?}");
        }
    }
}
