//! The RFC 6455 frame format (§5.2): opcodes, the header codec, and whole
//! frame encoding. Stateless: the rules that depend on what came before
//! (fragmentation, close state, limits) live in [`crate::connection`].

mod coding;
mod header;

pub use coding::{MessageKind, OpCode};
pub use header::{encode_frame, encode_frame_rsv, FrameHeader, MAX_HEADER_LEN};
