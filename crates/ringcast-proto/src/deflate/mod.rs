//! permessage-deflate (RFC 7692): [`negotiate`] (offers and answers, both
//! roles) and [`codec`] (the [`Extension`](crate::Extension) that inflates
//! and deflates).
//!
//! Compression is flate2 on zlib-rs at level 2 by default, ending each
//! message with a sync flush (never a final block: Chromium fails the
//! connection on one); the choice and its figures are in
//! `docs/benchmarks.md` ("Which deflate for permessage-deflate").

pub mod codec;
pub mod negotiate;

pub use codec::{PerMessageDeflate, Tuning};
pub use negotiate::{client_accept, client_offer, server_accept, AnswerError, DeflateConfig, Negotiated};
