//! Topic names: what a client may call a topic, and the two internal topics
//! each name maps to.
//!
//! A name has two audiences: `/topics/{name}` connections want the payload
//! as it was sent, `/ws` connections want it wrapped in JSON. Each gets its
//! own server topic (a [`Form`]), so each publish frames each form at most
//! once.

use std::sync::Arc;

/// Why a topic name is refused (the client's fault: answered 400 or with
/// `{"error"}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TopicError {
    /// No name at all.
    Empty,
    /// Longer than [`MAX_NAME`] bytes.
    TooLong,
    /// A control character (newline, NUL…) in the name.
    ControlCharacter,
    /// A path segment whose `%XX` escapes are broken or not UTF-8.
    BadEscape,
}

impl std::fmt::Display for TopicError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TopicError::Empty => "empty topic name",
            TopicError::TooLong => "topic name longer than 200 bytes",
            TopicError::ControlCharacter => "control character in topic name",
            TopicError::BadEscape => "bad percent-encoding in topic name",
        })
    }
}

impl std::error::Error for TopicError {}

/// The form a connection takes a topic in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// As published (`/topics/{name}` rooms).
    Raw,
    /// Wrapped in JSON (`/ws`).
    Json,
}

impl Form {
    /// The server topic of `name` in this form.
    pub fn topic(self, name: &str) -> String {
        match self {
            Form::Raw => raw_topic(name),
            Form::Json => json_topic(name),
        }
    }
}

/// Longest topic name, in bytes.
pub const MAX_NAME: usize = 200;

/// A valid topic name and its two server topics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topic {
    /// The name clients use.
    pub name: Arc<str>,
    /// Server topic of the raw (`/topics/{name}`) subscribers.
    pub raw: Arc<str>,
    /// Server topic of the JSON (`/ws`) subscribers.
    pub json: Arc<str>,
}

impl Topic {
    /// Checks `name` (see [`validate`]).
    pub fn new(name: &str) -> Result<Topic, TopicError> {
        validate(name)?;
        Ok(Topic { name: Arc::from(name), raw: raw_topic(name).into(), json: json_topic(name).into() })
    }

    /// The topic named by a path segment (percent-encoded, as browsers
    /// send `encodeURIComponent(name)`).
    pub fn from_path(segment: &str) -> Result<Topic, TopicError> {
        Topic::new(&percent_decode(segment).ok_or(TopicError::BadEscape)?)
    }

    /// The server topic of this name in `form`.
    pub fn in_form(&self, form: Form) -> &Arc<str> {
        match form {
            Form::Raw => &self.raw,
            Form::Json => &self.json,
        }
    }

    /// Subscribers of both forms, as `count` reads a server topic's.
    pub fn subscribers(&self, count: impl Fn(&str) -> u64) -> u64 {
        count(&self.raw) + count(&self.json)
    }
}

/// A topic name is 1 to 200 bytes without control characters.
pub fn validate(name: &str) -> Result<(), TopicError> {
    if name.is_empty() {
        return Err(TopicError::Empty);
    }
    if name.len() > MAX_NAME {
        return Err(TopicError::TooLong);
    }
    if name.chars().any(char::is_control) {
        return Err(TopicError::ControlCharacter);
    }
    Ok(())
}

/// The server topic raw subscribers of `name` join.
pub fn raw_topic(name: &str) -> String {
    format!("r:{name}")
}

/// The longest server topic name: a topic name and its form's prefix
/// (the runtime's `max_topic_len` for the hub).
pub const MAX_SERVER_TOPIC: usize = MAX_NAME + 2;

/// A subscription the hub's own checks admitted (name length, topics per
/// connection). The runtime's limits are set from the same settings, so
/// a refusal here is a bug: it is logged, and the connection goes on
/// without that topic.
pub fn admitted(result: Result<bool, ringcast::SubscribeError>, topic: &str) {
    if let Err(refused) = result {
        tracing::error!(%refused, topic, "the runtime refused a subscription the hub admitted");
    }
}

/// The server topic JSON subscribers of `name` join.
pub fn json_topic(name: &str) -> String {
    format!("j:{name}")
}

/// The topic name of a server topic (`r:name` or `j:name`), and whether
/// it is the JSON form.
pub fn name_of(server_topic: &str) -> Option<(&str, bool)> {
    if let Some(name) = server_topic.strip_prefix("r:") {
        return Some((name, false));
    }
    server_topic.strip_prefix("j:").map(|name| (name, true))
}

/// Decodes `%XX` escapes; `None` for a broken escape or a result that is
/// not UTF-8.
pub fn percent_decode(text: &str) -> Option<String> {
    if !text.contains('%') {
        return Some(text.to_owned());
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_and_decoded() {
        let topic = Topic::from_path("caf%C3%A9%20room").unwrap();
        assert_eq!(&*topic.name, "café room");
        assert_eq!(&*topic.raw, "r:café room");
        assert_eq!(&*topic.json, "j:café room");
        assert!(Topic::from_path("").is_err());
        assert!(Topic::from_path("%zz").is_err());
        assert!(Topic::from_path("%4").is_err());
        assert!(Topic::from_path("%ff").is_err(), "not UTF-8");
        assert!(Topic::new("a\nb").is_err());
        assert!(Topic::new(&"x".repeat(MAX_NAME)).is_ok());
        assert!(Topic::new(&"x".repeat(MAX_NAME + 1)).is_err());
        assert_eq!(name_of(&topic.raw), Some(("café room", false)));
        assert_eq!(name_of(&topic.json), Some(("café room", true)));
        assert_eq!(name_of("x:café"), None);
    }
}
