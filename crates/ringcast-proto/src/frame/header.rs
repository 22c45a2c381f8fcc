//! Frame header decoding and encoding (RFC 6455 §5.2).

use super::OpCode;
use crate::error::ProtocolError;
use crate::mask;

/// The longest header: 2 bytes, 8 bytes of length, 4 bytes of mask.
pub const MAX_HEADER_LEN: usize = 14;

/// A decoded frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// Last frame of its message.
    pub fin: bool,
    /// RSV1, RSV2, RSV3 as the bits 0b100, 0b010, 0b001.
    pub rsv: u8,
    /// What the payload is.
    pub opcode: OpCode,
    /// The masking key, present on every client-to-server frame.
    pub mask: Option<[u8; 4]>,
    /// Payload length in bytes.
    pub payload_len: u64,
}

impl FrameHeader {
    /// Decodes a header from the start of `buf`. Returns the header and its
    /// length, or `None` when `buf` holds only part of it.
    ///
    /// Refuses what is wrong whatever the context: reserved opcodes, a
    /// 64-bit length with the top bit set, and control frames that are
    /// fragmented or longer than 125 bytes. Lengths encoded in more bytes
    /// than needed are accepted: RFC 6455 asks senders for the minimal form,
    /// and refusing the longer form would only break lenient peers.
    #[inline]
    pub fn decode(buf: &[u8]) -> Result<Option<(FrameHeader, usize)>, ProtocolError> {
        let [b0, b1, ..] = *buf else { return Ok(None) };
        let opcode = OpCode::from_bits(b0 & 0x0F)?;
        let fin = b0 & 0x80 != 0;
        let masked = b1 & 0x80 != 0;
        let (payload_len, mut len) = match b1 & 0x7F {
            126 => match buf.get(2..4) {
                Some(b) => (u64::from(u16::from_be_bytes([b[0], b[1]])), 4),
                None => return Ok(None),
            },
            127 => match buf.get(2..10) {
                Some(b) => {
                    let mut be = [0u8; 8];
                    be.copy_from_slice(b);
                    let n = u64::from_be_bytes(be);
                    if n >> 63 != 0 {
                        return Err(ProtocolError::InvalidLength);
                    }
                    (n, 10)
                }
                None => return Ok(None),
            },
            n => (u64::from(n), 2),
        };
        if opcode.is_control() {
            if !fin {
                return Err(ProtocolError::FragmentedControl);
            }
            if payload_len > 125 {
                return Err(ProtocolError::ControlTooLong);
            }
        }
        let mask = if masked {
            let Some(k) = buf.get(len..len + 4) else { return Ok(None) };
            len += 4;
            Some([k[0], k[1], k[2], k[3]])
        } else {
            None
        };
        let header = FrameHeader { fin, rsv: (b0 >> 4) & 0x7, opcode, mask, payload_len };
        Ok(Some((header, len)))
    }

    /// Encodes the header into `out` using the shortest length form, and
    /// returns how many bytes it used.
    #[inline]
    pub fn encode(&self, out: &mut [u8; MAX_HEADER_LEN]) -> usize {
        out[0] = (u8::from(self.fin) << 7) | ((self.rsv & 0x7) << 4) | self.opcode.bits();
        let mask_bit = if self.mask.is_some() { 0x80 } else { 0 };
        let mut len = match self.payload_len {
            n @ 0..=125 => {
                out[1] = mask_bit | n as u8;
                2
            }
            n @ 126..=0xFFFF => {
                out[1] = mask_bit | 126;
                out[2..4].copy_from_slice(&(n as u16).to_be_bytes());
                4
            }
            n => {
                out[1] = mask_bit | 127;
                out[2..10].copy_from_slice(&n.to_be_bytes());
                10
            }
        };
        if let Some(key) = self.mask {
            out[len..len + 4].copy_from_slice(&key);
            len += 4;
        }
        len
    }

    /// The encoded length of this header.
    pub fn encoded_len(&self) -> usize {
        let base = match self.payload_len {
            0..=125 => 2,
            126..=0xFFFF => 4,
            _ => 10,
        };
        base + if self.mask.is_some() { 4 } else { 0 }
    }
}

/// Appends a whole frame (header, then the payload masked with `mask` if
/// given) to `out`. Server frames pass `None`, client frames a fresh key.
pub fn encode_frame(out: &mut Vec<u8>, fin: bool, opcode: OpCode, payload: &[u8], mask: Option<[u8; 4]>) {
    encode_frame_rsv(out, fin, 0, opcode, payload, mask);
}

/// [`encode_frame`] with RSV bits set (`rsv` as in [`FrameHeader::rsv`]),
/// for a payload a negotiated extension transformed.
pub fn encode_frame_rsv(out: &mut Vec<u8>, fin: bool, rsv: u8, opcode: OpCode, payload: &[u8], mask: Option<[u8; 4]>) {
    let header = FrameHeader { fin, rsv, opcode, mask, payload_len: payload.len() as u64 };
    let mut head = [0u8; MAX_HEADER_LEN];
    let head_len = header.encode(&mut head);
    out.reserve(head_len + payload.len());
    out.extend_from_slice(&head[..head_len]);
    let start = out.len();
    out.extend_from_slice(payload);
    if let Some(key) = mask {
        mask::apply_mask(&mut out[start..], key, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(bytes: &[u8]) -> (FrameHeader, usize) {
        FrameHeader::decode(bytes).unwrap().unwrap()
    }

    #[test]
    fn rfc_single_frame_unmasked_text() {
        let (h, n) = decode_all(&[0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
        assert_eq!((h.fin, h.opcode, h.mask, h.payload_len, n), (true, OpCode::Text, None, 5, 2));
    }

    #[test]
    fn rfc_masked_text_header() {
        let (h, n) = decode_all(&[0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f]);
        assert_eq!(h.mask, Some([0x37, 0xfa, 0x21, 0x3d]));
        assert_eq!((h.payload_len, n), (5, 6));
    }

    #[test]
    fn rfc_256_and_64k_binary_headers() {
        let (h, n) = decode_all(&[0x82, 0x7E, 0x01, 0x00]);
        assert_eq!((h.opcode, h.payload_len, n), (OpCode::Binary, 256, 4));
        let (h, n) = decode_all(&[0x82, 0x7F, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00]);
        assert_eq!((h.opcode, h.payload_len, n), (OpCode::Binary, 65536, 10));
    }

    #[test]
    fn every_prefix_of_a_header_is_incomplete() {
        let full = [0x82, 0xFF, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00, 1, 2, 3, 4];
        for cut in 0..full.len() {
            assert_eq!(FrameHeader::decode(&full[..cut]), Ok(None), "cut at {cut}");
        }
        assert_eq!(decode_all(&full).1, 14);
    }

    #[test]
    fn refuses_top_bit_length_and_bad_control() {
        let bad_len = [0x82, 0x7F, 0x80, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(FrameHeader::decode(&bad_len), Err(ProtocolError::InvalidLength));
        assert_eq!(FrameHeader::decode(&[0x09, 0x00]), Err(ProtocolError::FragmentedControl));
        assert_eq!(FrameHeader::decode(&[0x89, 0x7E, 0, 126]), Err(ProtocolError::ControlTooLong));
        assert_eq!(FrameHeader::decode(&[0x83, 0x00]), Err(ProtocolError::ReservedOpcode(3)));
    }

    #[test]
    fn encode_is_minimal_and_round_trips() {
        for (len, expect) in [(0u64, 2), (125, 2), (126, 4), (65535, 4), (65536, 10), (1 << 40, 10)] {
            for mask in [None, Some([9, 8, 7, 6])] {
                let h = FrameHeader { fin: true, rsv: 0, opcode: OpCode::Binary, mask, payload_len: len };
                let mut out = [0u8; MAX_HEADER_LEN];
                let n = h.encode(&mut out);
                let extra = if mask.is_some() { 4 } else { 0 };
                assert_eq!(n, expect + extra);
                assert_eq!(h.encoded_len(), n);
                assert_eq!(decode_all(&out[..n]), (h, n));
            }
        }
    }

    #[test]
    fn encode_frame_masks_payload() {
        let mut out = Vec::new();
        encode_frame(&mut out, true, OpCode::Text, b"Hello", Some([0x37, 0xfa, 0x21, 0x3d]));
        assert_eq!(out, [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]);
        out.clear();
        encode_frame(&mut out, true, OpCode::Ping, b"Hello", None);
        assert_eq!(out, [0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
    }
}
