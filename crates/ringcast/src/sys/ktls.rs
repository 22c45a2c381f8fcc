//! Kernel TLS (the `tls` upper-layer protocol of TCP): after a handshake
//! done in user space, the connection's record keys are given to the
//! socket, and from then on the kernel encrypts what is sent and decrypts
//! what is received, so the ring moves plaintext.
//!
//! Three system calls make that up, each here with its C structures:
//! attaching the protocol ([`attach`]), installing one direction's keys
//! ([`install`]) and sending an alert record ([`send_alert`]), since a
//! socket in kernel TLS sends only application data unless told the
//! record type.
//!
//! Built only with the `ktls` feature. The kernels this was written on
//! (without `CONFIG_TLS`) refuse [`attach`], which is how a shard finds
//! out at run time that it must stay in user space.

#![allow(unsafe_code)]

use std::io;
use std::os::fd::RawFd;

/// Which way the keys protect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Send,
    Receive,
}

/// The AEAD a connection agreed on, with its key and the 12-byte IV
/// (for AES-GCM: a 4-byte salt, then the 8 bytes the kernel calls IV).
#[derive(Debug, Clone, Copy)]
pub enum Cipher<'a> {
    Aes128Gcm { key: &'a [u8], iv: &'a [u8] },
    Aes256Gcm { key: &'a [u8], iv: &'a [u8] },
    Chacha20Poly1305 { key: &'a [u8], iv: &'a [u8] },
}

/// The TLS version of the keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    Tls12,
    Tls13,
}

/// Attaches the `tls` protocol to a connected TCP socket. Until keys are
/// installed, bytes pass through unchanged. Fails with `ENOENT` where the
/// kernel has no TLS module.
pub fn attach(fd: RawFd) -> io::Result<()> {
    let name = b"tls";
    // SAFETY: `name` outlives the call and its length is passed with it;
    // the kernel copies the bytes and keeps no pointer.
    let rc = unsafe {
        libc::setsockopt(fd, libc::SOL_TCP, libc::TCP_ULP, name.as_ptr().cast(), name.len() as libc::socklen_t)
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Copies `from` into a fixed array, or says the secret has the wrong size.
fn array<const N: usize>(from: &[u8]) -> io::Result<[u8; N]> {
    from.try_into().map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "secret of the wrong size"))
}

/// The keys of one direction as the kernel takes them: one of its
/// `tls12_crypto_info_*` structures (each begins with a `tls_crypto_info`
/// saying which it is).
#[derive(Clone, Copy)]
pub enum CryptoInfo {
    Aes128Gcm(libc::tls12_crypto_info_aes_gcm_128),
    Aes256Gcm(libc::tls12_crypto_info_aes_gcm_256),
    Chacha20Poly1305(libc::tls12_crypto_info_chacha20_poly1305),
}

impl CryptoInfo {
    /// The keys of `cipher` in TLS `version`, whose next record has
    /// sequence number `seq`.
    pub fn new(version: Version, cipher: Cipher<'_>, seq: u64) -> io::Result<CryptoInfo> {
        let version = match version {
            Version::Tls12 => libc::TLS_1_2_VERSION,
            Version::Tls13 => libc::TLS_1_3_VERSION,
        };
        let rec_seq = seq.to_be_bytes();
        Ok(match cipher {
            Cipher::Aes128Gcm { key, iv } => {
                let iv: [u8; 12] = array(iv)?;
                CryptoInfo::Aes128Gcm(libc::tls12_crypto_info_aes_gcm_128 {
                    info: libc::tls_crypto_info { version, cipher_type: libc::TLS_CIPHER_AES_GCM_128 },
                    iv: array(&iv[4..])?,
                    key: array(key)?,
                    salt: array(&iv[..4])?,
                    rec_seq,
                })
            }
            Cipher::Aes256Gcm { key, iv } => {
                let iv: [u8; 12] = array(iv)?;
                CryptoInfo::Aes256Gcm(libc::tls12_crypto_info_aes_gcm_256 {
                    info: libc::tls_crypto_info { version, cipher_type: libc::TLS_CIPHER_AES_GCM_256 },
                    iv: array(&iv[4..])?,
                    key: array(key)?,
                    salt: array(&iv[..4])?,
                    rec_seq,
                })
            }
            Cipher::Chacha20Poly1305 { key, iv } => {
                CryptoInfo::Chacha20Poly1305(libc::tls12_crypto_info_chacha20_poly1305 {
                    info: libc::tls_crypto_info { version, cipher_type: libc::TLS_CIPHER_CHACHA20_POLY1305 },
                    iv: array(iv)?,
                    key: array(key)?,
                    salt: [],
                    rec_seq,
                })
            }
        })
    }
}

/// Installs the keys of one direction.
pub fn install(fd: RawFd, direction: Direction, info: &CryptoInfo) -> io::Result<()> {
    let option = match direction {
        Direction::Send => libc::TLS_TX,
        Direction::Receive => libc::TLS_RX,
    };
    match info {
        CryptoInfo::Aes128Gcm(info) => set_keys(fd, option, info),
        CryptoInfo::Aes256Gcm(info) => set_keys(fd, option, info),
        CryptoInfo::Chacha20Poly1305(info) => set_keys(fd, option, info),
    }
}

/// `info` is one of the kernel's crypto-info structures.
fn set_keys<T: Copy>(fd: RawFd, option: libc::c_int, info: &T) -> io::Result<()> {
    // SAFETY: `info` is one of the kernel's crypto-info structures (the
    // only callers are the arms of `install`), fully initialised, and
    // lives through the call; its size is passed with it. The kernel
    // copies it.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_TLS,
            option,
            (info as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The record type of an alert.
const ALERT: u8 = 21;

/// Sends one alert record (`level`, `description`) on a socket whose
/// sending keys are in the kernel, without waiting: it is a farewell, and
/// a full socket buffer loses it as a full one would lose a FIN's data.
pub fn send_alert(fd: RawFd, level: u8, description: u8) -> io::Result<()> {
    let mut body = [level, description];
    // Room for one control message carrying one byte, aligned as the
    // kernel reads it.
    let mut control = [0u64; 4];
    let mut iov = libc::iovec { iov_base: body.as_mut_ptr().cast(), iov_len: body.len() };
    // SAFETY: `msghdr` is a plain C struct for which all-zero bytes are a
    // valid value.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    // SAFETY: CMSG_SPACE only computes a size.
    let space = unsafe { libc::CMSG_SPACE(1) } as usize;
    debug_assert!(space <= std::mem::size_of_val(&control));
    msg.msg_controllen = space as _;
    // SAFETY: `msg_control` points at `control`, which is zeroed, aligned
    // for `cmsghdr` (u64s) and at least CMSG_SPACE(1) bytes long, so the
    // first header and its one data byte lie inside it.
    unsafe {
        let header = libc::CMSG_FIRSTHDR(&msg);
        (*header).cmsg_level = libc::SOL_TLS;
        (*header).cmsg_type = libc::TLS_SET_RECORD_TYPE;
        (*header).cmsg_len = libc::CMSG_LEN(1) as _;
        *libc::CMSG_DATA(header) = ALERT;
    }
    // SAFETY: `msg` points at `iov`, `body` and `control`, all alive
    // through the call; the kernel only reads them.
    let rc = unsafe { libc::sendmsg(fd, &msg, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL) };
    if rc >= 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::AsRawFd;

    #[test]
    fn secrets_of_the_wrong_size_are_refused_and_the_right_ones_laid_out_as_the_kernel_reads_them() {
        let cipher = Cipher::Aes128Gcm { key: &[0; 15], iv: &[0; 12] };
        let e = CryptoInfo::new(Version::Tls13, cipher, 0).err().unwrap();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        let cipher = Cipher::Chacha20Poly1305 { key: &[0; 32], iv: &[0; 8] };
        let e = CryptoInfo::new(Version::Tls13, cipher, 0).err().unwrap();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        // Right sizes: laid out as the kernel reads them.
        let iv: Vec<u8> = (1..=12).collect();
        let cipher = Cipher::Aes128Gcm { key: &[7; 16], iv: &iv };
        let Ok(CryptoInfo::Aes128Gcm(info)) = CryptoInfo::new(Version::Tls12, cipher, 0x0102) else { panic!() };
        assert_eq!((info.info.version, info.info.cipher_type), (0x0303, 51));
        assert_eq!((info.salt, info.iv), ([1, 2, 3, 4], [5, 6, 7, 8, 9, 10, 11, 12]));
        assert_eq!(info.rec_seq, [0, 0, 0, 0, 0, 0, 1, 2]);
        assert_eq!(std::mem::size_of_val(&info), 4 + 8 + 16 + 4 + 8, "no padding: the kernel checks the size");
    }

    #[test]
    fn attaching_answers_either_way_and_a_refusal_leaves_the_socket_plain() {
        use std::io::{Read, Write};
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut server, _) = listener.accept().unwrap();
        match attach(server.as_raw_fd()) {
            // A kernel with TLS: until keys are installed, bytes pass.
            Ok(()) => {}
            // A kernel without it (this project's CI): the module is
            // missing, and the socket is untouched.
            Err(e) => {
                assert!(matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENOPROTOOPT | libc::EOPNOTSUPP)), "{e}")
            }
        }
        client.write_all(b"plain").unwrap();
        let mut got = [0; 5];
        server.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"plain");
        server.write_all(b"back").unwrap();
        let mut got = [0; 4];
        client.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"back");
    }
}
