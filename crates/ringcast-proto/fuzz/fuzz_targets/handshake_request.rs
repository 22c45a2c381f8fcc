//! The server's request parser on arbitrary bytes, delivered in two reads.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringcast_proto::handshake::{write_response, RequestLimits, RequestReader};

fuzz_target!(|data: &[u8]| {
    let Some((&cut, data)) = data.split_first() else { return };
    let limits = RequestLimits::default().max_head_bytes(4096);
    let mut reader = RequestReader::new(limits);
    let cut = usize::from(cut).min(data.len());
    let first = reader.poll(&data[..cut]).map(|r| r.map(|r| r.head_len()));
    let result = match first {
        Ok(Some(_)) | Err(_) => return,
        Ok(None) => reader.poll(data),
    };
    let request = match result {
        Ok(Some(request)) => request,
        Ok(None) => {
            assert!(data.len() <= 4096, "an unfinished head past the limit must be refused");
            return;
        }
        Err(e) => {
            assert!(matches!(e.status(), 400 | 426 | 431));
            let mut out = Vec::new();
            write_response(e.status(), &[], e.to_string().as_bytes(), &mut out).unwrap();
            return;
        }
    };
    assert!(request.head_len() <= data.len() && request.head_len() <= 4096);
    let _ = (request.path(), request.query(), request.origin(), request.extensions());
    let offered: Vec<&str> = request.protocols().collect();
    if let Ok(upgrade) = request.validate() {
        let mut out = Vec::new();
        let choice = offered.first().copied().filter(|p| !p.contains(['\r', '\n', '\0']));
        upgrade.write_response(choice, &[], &mut out).unwrap();
        assert!(out.starts_with(b"HTTP/1.1 101 "));
    }
});
