//! Echo over `wss://`: the certificate chain and key come from PEM files
//! (e.g. Let's Encrypt's `fullchain.pem` and `privkey.pem`); every message
//! comes back. Ctrl-C (or SIGTERM) closes everyone with 1001.
//!
//! ```text
//! cargo run --release -p ringcast --example tls_echo -- cert.pem key.pem [127.0.0.1:9443]
//! ```
//!
//! For a try on one machine, make a certificate for `localhost` with
//! `openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes
//! -days 30 -subj /CN=localhost -addext subjectAltName=DNS:localhost
//! -keyout key.pem -out cert.pem` and tell the client to trust `cert.pem`.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use ringcast::{Decision, Handler, Message, Peer, Request, ServerBuilder, ServerHandler, Ws};

struct Echo;

impl ServerHandler for Echo {
    fn upgrade(&mut self, _request: &Request<'_>, _peer: &Peer<'_>) -> Decision<()> {
        // `_peer.server_name()` is the name the client asked for (SNI),
        // for a server that answers to several.
        Decision::accept(())
    }
}

impl Handler for Echo {
    type Data = ();

    fn message(&mut self, ws: &mut Ws<'_, ()>, message: Message<'_>) {
        let _ = ws.send(message);
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (cert, key, listen) = match args.as_slice() {
        [cert, key] => (cert, key, "127.0.0.1:9443"),
        [cert, key, listen] => (cert, key, listen.as_str()),
        _ => {
            eprintln!("usage: tls_echo CERT.pem KEY.pem [ADDR:PORT]");
            return ExitCode::from(2);
        }
    };
    // A missing file, an empty one, a key that is not the certificate's:
    // each error names the file and what is wrong with it.
    let config = match ringcast::tls::server_config_from_pem(Path::new(cert), Path::new(key)) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("tls_echo: {e}");
            return ExitCode::FAILURE;
        }
    };
    let started = ServerBuilder::new().shards(1).pin_threads(false).tls(config).start(listen, |_shard| Echo);
    let server = match started {
        Ok(server) => server,
        Err(e) => {
            eprintln!("tls_echo: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = server.shutdown_on_signals(Duration::from_secs(5)) {
        eprintln!("tls_echo: cannot handle signals: {e}");
        server.shutdown(Duration::ZERO);
        return ExitCode::FAILURE;
    }
    println!("tls_echo: listening on wss://{}/", server.local_addr());
    server.wait();
    println!("tls_echo: stopped");
    ExitCode::SUCCESS
}
