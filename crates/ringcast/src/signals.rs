//! Graceful shutdown on SIGINT and SIGTERM, for
//! [`ServerHandle::shutdown_on_signals`](crate::ServerHandle::shutdown_on_signals):
//! a thread waits for the signals (signal-hook's self-pipe, so it works
//! whatever the signal masks of the shard threads) and asks the shards to
//! stop; the thread ends when the runtime has stopped.

use std::time::Duration;

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::runtime::Runtime;

/// Stops `runtime` with `grace` on the first SIGINT or SIGTERM; a second
/// one during the grace ends the process the way the signal's default
/// action does (an impatient Ctrl-C still works).
pub(crate) fn watch(runtime: &Runtime, grace: Duration) -> std::io::Result<()> {
    let mut signals = Signals::new([SIGINT, SIGTERM])?;
    let closer = signals.handle();
    let stopping = runtime.clone();
    std::thread::Builder::new().name("ringcast-signals".into()).spawn(move || {
        let mut asked = false;
        for signal in signals.forever() {
            if asked {
                tracing::warn!(signal, "second signal: exiting without waiting for the closes");
                let _ = signal_hook::low_level::emulate_default_handler(signal);
                continue;
            }
            asked = true;
            tracing::info!(signal, ?grace, "signal: closing every connection with 1001");
            stopping.request_stop(grace);
        }
    })?;
    runtime.when_stopped(Box::new(move || closer.close()));
    Ok(())
}
