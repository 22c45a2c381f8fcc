//! Negotiating permessage-deflate (RFC 7692 §5, §7.1): the server picks the
//! first offer it can honour and writes its answer; the client writes its
//! offer and checks the answer.
//!
//! What this implementation can honour, and why:
//! - The server never keeps compression context between its messages
//!   unless configured to ([`DeflateConfig::server_context_takeover`]):
//!   a message compressed on its own can be compressed once and sent to
//!   every subscriber. It says `server_no_context_takeover` in every answer,
//!   which RFC 7692 §7.1.1.1 allows whether or not the client asked.
//! - It asks the client not to keep context either
//!   (`client_no_context_takeover`, §7.1.1.2) unless configured otherwise,
//!   so that inflating needs no state between messages.
//! - An offer that limits the server's window (`server_max_window_bits`)
//!   is accepted with that limit, echoed in the answer: such a connection
//!   gets its messages compressed with that window (and none at all for
//!   8, which zlib cannot do; an uncompressed message is always allowed),
//!   not the shared frame made with the server's window. A server
//!   configured with a smaller window
//!   ([`DeflateConfig::server_max_window_bits`]) says so in every answer.
//! - It inflates with a 32 KiB window, which reads whatever window the
//!   client uses, so it never limits the client's (`client_max_window_bits`
//!   is not answered).
//!
//! An offer with an unknown parameter, a repeated one or an invalid value is
//! declined (§7); a server answer of that kind fails the client's handshake.

use crate::handshake::ExtensionOffer;

/// The extension's name.
pub const NAME: &str = "permessage-deflate";

/// What one end is willing to do. The default keeps no context either way
/// and lets the server use a 32 KiB window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeflateConfig {
    /// Keep the compressor's window between the server's messages (better
    /// ratio, a compressor per connection, and no compress-once for
    /// publishes). Default false.
    pub server_context_takeover: bool,
    /// Let the client keep its window between its messages (a decompressor
    /// per connection on the server). Default false: the server answers
    /// `client_no_context_takeover`.
    pub client_context_takeover: bool,
    /// The largest window (bits, 9 to 15) the server compresses with;
    /// below 15 every answer says `server_max_window_bits` (RFC 7692
    /// §7.1.2.1 allows it unasked). Default 15.
    pub server_max_window_bits: u8,
}

impl Default for DeflateConfig {
    fn default() -> Self {
        DeflateConfig { server_context_takeover: false, client_context_takeover: false, server_max_window_bits: 15 }
    }
}

/// What both ends agreed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Negotiated {
    /// The server resets its compressor after each message.
    pub server_no_context_takeover: bool,
    /// The client resets its compressor after each message.
    pub client_no_context_takeover: bool,
    /// The largest window (bits) the server's messages use.
    pub server_max_window_bits: u8,
    /// The largest window (bits) the client's messages use.
    pub client_max_window_bits: u8,
}

impl Negotiated {
    /// Whether the messages `role` sends are compressed without context
    /// (each on its own).
    pub fn sends_without_context(&self, server: bool) -> bool {
        if server {
            self.server_no_context_takeover
        } else {
            self.client_no_context_takeover
        }
    }
}

/// A parameter's window bits: `8` to `15`, digits only, no leading zero.
fn window_bits(value: &str) -> Option<u8> {
    let valid = matches!(value.len(), 1 | 2) && value.bytes().all(|b| b.is_ascii_digit()) && !value.starts_with('0');
    value.parse().ok().filter(|bits| valid && (8..=15).contains(bits))
}

/// The parameters of one offer or answer, checked for the RFC's syntax:
/// known names only, each at most once, values where (and only where) the
/// parameter takes one. `client_max_window_bits` without a value is
/// `Some(None)`.
#[derive(Debug, Default, PartialEq, Eq)]
struct Params {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_max_window_bits: Option<u8>,
    client_max_window_bits: Option<Option<u8>>,
}

/// Where the parameters come from: an answer must give
/// `client_max_window_bits` a value, an offer need not.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Offer,
    Answer,
}

fn parse(offer: &ExtensionOffer<'_>, side: Side) -> Option<Params> {
    let mut params = Params::default();
    let mut seen = [false; 4];
    for &(name, value) in &offer.params {
        let index = [
            "server_no_context_takeover",
            "client_no_context_takeover",
            "server_max_window_bits",
            "client_max_window_bits",
        ]
        .iter()
        .position(|known| known.eq_ignore_ascii_case(name))?;
        if std::mem::replace(&mut seen[index], true) {
            return None; // repeated
        }
        match (index, value) {
            (0, None) => params.server_no_context_takeover = true,
            (1, None) => params.client_no_context_takeover = true,
            (2, Some(v)) => params.server_max_window_bits = Some(window_bits(v)?),
            (3, None) if side == Side::Offer => params.client_max_window_bits = Some(None),
            (3, Some(v)) => params.client_max_window_bits = Some(Some(window_bits(v)?)),
            _ => return None, // a value where none belongs, or none where one must be
        }
    }
    Some(params)
}

/// Server side: the first permessage-deflate offer among `offers` this
/// server can honour, with the `Sec-WebSocket-Extensions` value to answer;
/// `None` when there is none (the connection runs uncompressed).
pub fn server_accept(offers: &[ExtensionOffer<'_>], config: &DeflateConfig) -> Option<(Negotiated, String)> {
    for offer in offers.iter().filter(|o| o.name.eq_ignore_ascii_case(NAME)) {
        let Some(params) = parse(offer, Side::Offer) else { continue };
        let server_no_context_takeover = params.server_no_context_takeover || !config.server_context_takeover;
        let client_no_context_takeover = params.client_no_context_takeover || !config.client_context_takeover;
        let mut answer = String::from(NAME);
        if server_no_context_takeover {
            answer.push_str("; server_no_context_takeover");
        }
        if client_no_context_takeover {
            answer.push_str("; client_no_context_takeover");
        }
        // The client's limit or ours, whichever is smaller (8 stays 8: sent
        // uncompressed, see the module's notes).
        let ours = config.server_max_window_bits.clamp(9, 15);
        let window = params.server_max_window_bits.map_or(ours, |theirs| theirs.min(ours));
        // An offer's limit is accepted by answering it (§7.1.2.1).
        if params.server_max_window_bits.is_some() || window < 15 {
            answer.push_str(&format!("; server_max_window_bits={window}"));
        }
        let negotiated = Negotiated {
            server_no_context_takeover,
            client_no_context_takeover,
            server_max_window_bits: window,
            client_max_window_bits: params.client_max_window_bits.flatten().unwrap_or(15),
        };
        return Some((negotiated, answer));
    }
    None
}

/// Client side: the offer to send (`Sec-WebSocket-Extensions` value).
pub fn client_offer(config: &DeflateConfig) -> String {
    let mut offer = format!("{NAME}; client_max_window_bits");
    if !config.server_context_takeover {
        offer.push_str("; server_no_context_takeover");
    }
    if !config.client_context_takeover {
        offer.push_str("; client_no_context_takeover");
    }
    offer
}

/// Why a server's answer cannot be accepted (the client fails the
/// connection, RFC 7692 §7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AnswerError {
    /// More than one permessage-deflate in the answer.
    Repeated,
    /// An unknown or repeated parameter, or an invalid value.
    InvalidParameter,
}

impl std::fmt::Display for AnswerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AnswerError::Repeated => f.write_str("permessage-deflate accepted twice"),
            AnswerError::InvalidParameter => f.write_str("invalid permessage-deflate parameters in the answer"),
        }
    }
}

/// Client side: what the server's answer agreed to, given the client's
/// `config` (whose [`client_offer`] was sent). `Ok(None)`: the server did not
/// accept the extension.
pub fn client_accept(
    answers: &[ExtensionOffer<'_>],
    config: &DeflateConfig,
) -> Result<Option<Negotiated>, AnswerError> {
    let mut ours = answers.iter().filter(|a| a.name.eq_ignore_ascii_case(NAME));
    let Some(answer) = ours.next() else { return Ok(None) };
    if ours.next().is_some() {
        return Err(AnswerError::Repeated);
    }
    let params = parse(answer, Side::Answer).ok_or(AnswerError::InvalidParameter)?;
    Ok(Some(Negotiated {
        server_no_context_takeover: params.server_no_context_takeover,
        // Offered when we do not keep context; the server may also ask.
        client_no_context_takeover: params.client_no_context_takeover || !config.client_context_takeover,
        server_max_window_bits: params.server_max_window_bits.unwrap_or(15),
        client_max_window_bits: params.client_max_window_bits.flatten().unwrap_or(15),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handshake::parse_extension_header;

    fn offers(header: &str) -> Vec<ExtensionOffer<'_>> {
        parse_extension_header(header.as_bytes())
    }

    fn accept(header: &str) -> Option<(Negotiated, String)> {
        server_accept(&offers(header), &DeflateConfig::default())
    }

    #[test]
    fn browser_offers_are_accepted_without_context_both_ways() {
        // What Chromium and Firefox send.
        let (negotiated, answer) = accept("permessage-deflate; client_max_window_bits").unwrap();
        assert_eq!(answer, "permessage-deflate; server_no_context_takeover; client_no_context_takeover");
        assert!(negotiated.server_no_context_takeover && negotiated.client_no_context_takeover);
        assert_eq!((negotiated.server_max_window_bits, negotiated.client_max_window_bits), (15, 15));
        // Node ws's default offer.
        assert!(accept("permessage-deflate; client_max_window_bits=15").is_some());
        assert!(accept("PerMessage-Deflate").is_some(), "names are case-insensitive");
    }

    #[test]
    fn invalid_offers_are_declined_and_the_next_one_is_taken() {
        for bad in [
            "permessage-deflate; x=1",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; server_max_window_bits=7",
            "permessage-deflate; server_max_window_bits=010",
            "permessage-deflate; server_max_window_bits=1a",
            "permessage-deflate; client_max_window_bits=0",
            "permessage-deflate; server_no_context_takeover=1",
        ] {
            assert_eq!(accept(bad), None, "{bad}");
        }
        let (negotiated, _) = accept("permessage-deflate; x=1, permessage-deflate; client_max_window_bits=12").unwrap();
        assert_eq!(negotiated.client_max_window_bits, 12, "the second offer");
        let (negotiated, answer) = accept("permessage-deflate; server_max_window_bits=9").unwrap();
        assert_eq!(negotiated.server_max_window_bits, 9);
        assert!(answer.ends_with("; server_max_window_bits=9"), "{answer}");
        assert!(accept("x-webkit-deflate-frame, permessage-deflate").is_some());
        assert_eq!(accept("x-webkit-deflate-frame"), None);
        assert!(accept("permessage-deflate; server_max_window_bits=\"15\"").is_some(), "quoted values");
    }

    #[test]
    fn a_configured_window_is_announced_and_an_offer_may_lower_it() {
        let config = DeflateConfig { server_max_window_bits: 10, ..DeflateConfig::default() };
        let (negotiated, answer) = server_accept(&offers("permessage-deflate"), &config).unwrap();
        assert!(answer.ends_with("; server_max_window_bits=10"), "{answer}");
        assert_eq!(negotiated.server_max_window_bits, 10);
        let (negotiated, answer) =
            server_accept(&offers("permessage-deflate; server_max_window_bits=9"), &config).unwrap();
        assert!(answer.ends_with("; server_max_window_bits=9"), "{answer}");
        assert_eq!(negotiated.server_max_window_bits, 9);
        let (negotiated, answer) =
            server_accept(&offers("permessage-deflate; server_max_window_bits=12"), &config).unwrap();
        assert!(answer.ends_with("; server_max_window_bits=10"), "ours is smaller: {answer}");
        assert_eq!(negotiated.server_max_window_bits, 10);
        // The default window: an offer's limit of 15 is still answered.
        let (_, answer) = accept("permessage-deflate; server_max_window_bits=15").unwrap();
        assert!(answer.ends_with("; server_max_window_bits=15"), "{answer}");
        let (_, answer) = accept("permessage-deflate").unwrap();
        assert!(!answer.contains("server_max_window_bits"), "{answer}");
    }

    #[test]
    fn context_takeover_is_granted_only_when_configured() {
        let config =
            DeflateConfig { server_context_takeover: true, client_context_takeover: true, ..DeflateConfig::default() };
        let (negotiated, answer) = server_accept(&offers("permessage-deflate"), &config).unwrap();
        assert_eq!(answer, "permessage-deflate");
        assert!(!negotiated.server_no_context_takeover && !negotiated.client_no_context_takeover);
        let (negotiated, answer) =
            server_accept(&offers("permessage-deflate; server_no_context_takeover"), &config).unwrap();
        assert_eq!(answer, "permessage-deflate; server_no_context_takeover", "the client may ask for it");
        assert!(negotiated.server_no_context_takeover);
    }

    #[test]
    fn clients_offer_and_check_answers() {
        let config = DeflateConfig::default();
        let offer = client_offer(&config);
        assert_eq!(
            offer,
            "permessage-deflate; client_max_window_bits; server_no_context_takeover; client_no_context_takeover"
        );
        // Our own server's answer to our own offer.
        let (server_side, answer) = server_accept(&offers(&offer), &config).unwrap();
        let client_side = client_accept(&offers(&answer), &config).unwrap().unwrap();
        assert_eq!(server_side, client_side);
        assert_eq!(client_accept(&offers("x-other"), &config), Ok(None));
        let ok =
            client_accept(&offers("permessage-deflate; server_max_window_bits=10; client_max_window_bits=9"), &config);
        let ok = ok.unwrap().unwrap();
        assert_eq!((ok.server_max_window_bits, ok.client_max_window_bits), (10, 9));
        for bad in [
            "permessage-deflate; client_max_window_bits",
            "permessage-deflate; bogus",
            "permessage-deflate; server_max_window_bits=20",
            "permessage-deflate; client_no_context_takeover; client_no_context_takeover",
        ] {
            assert_eq!(client_accept(&offers(bad), &config), Err(AnswerError::InvalidParameter), "{bad}");
        }
        assert_eq!(
            client_accept(&offers("permessage-deflate, permessage-deflate"), &config),
            Err(AnswerError::Repeated)
        );
    }
}
