//! A client handler that follows a per-connection plan and reports every
//! callback on a channel, for tests of the client API.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use ringcast::proto::ResponseError;
use ringcast::{ClientHandler, CloseCode, CloseInfo, ConnectError, Handler, Message, Ws};

/// What a connection does by itself.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub tag: u32,
    /// Messages sent as soon as the connection opens: (is text, payload).
    pub send: Vec<(bool, Vec<u8>)>,
    /// Close with 1000 after this many messages came back.
    pub close_after: Option<usize>,
    /// Subscribe to this topic on open.
    pub subscribe: Option<String>,
    pub received: usize,
}

impl Plan {
    pub fn tagged(tag: u32) -> Plan {
        Plan { tag, ..Plan::default() }
    }
}

/// Why a connect failed, in a form tests can compare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    Status(u16),
    Refused,
    Timeout,
    Closed,
    AcceptMismatch,
    UnofferedProtocol,
    Other(String),
}

impl From<&ConnectError> for Failure {
    fn from(e: &ConnectError) -> Self {
        match e {
            ConnectError::Handshake(ResponseError::Status(s)) => Failure::Status(*s),
            ConnectError::Handshake(ResponseError::AcceptMismatch) => Failure::AcceptMismatch,
            ConnectError::Handshake(ResponseError::UnofferedProtocol) => Failure::UnofferedProtocol,
            ConnectError::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => Failure::Refused,
            ConnectError::Timeout => Failure::Timeout,
            ConnectError::Closed => Failure::Closed,
            other => Failure::Other(other.to_string()),
        }
    }
}

/// One callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ev {
    Connected { tag: u32, protocol: Option<String> },
    Message { tag: u32, text: bool, data: Vec<u8> },
    Closed { tag: u32, code: u16, reason: String, by_peer: bool },
    Failed { tag: u32, failure: Failure },
}

impl Ev {
    pub fn tag(&self) -> u32 {
        match self {
            Ev::Connected { tag, .. } | Ev::Message { tag, .. } | Ev::Closed { tag, .. } | Ev::Failed { tag, .. } => {
                *tag
            }
        }
    }
}

/// The handler: one per client shard, all reporting to one channel.
pub struct Recorder {
    pub events: mpsc::Sender<Ev>,
}

impl ClientHandler for Recorder {
    fn connected(&mut self, ws: &mut Ws<'_, Plan>, protocol: Option<&str>) {
        let plan = ws.data().clone();
        if let Some(topic) = &plan.subscribe {
            ws.subscribe(topic).expect("within the limits");
        }
        let _ = self.events.send(Ev::Connected { tag: plan.tag, protocol: protocol.map(str::to_owned) });
        for (text, payload) in &plan.send {
            let message = if *text {
                Message::Text(std::str::from_utf8(payload).expect("text plans are UTF-8"))
            } else {
                Message::Binary(payload)
            };
            ws.send(message).expect("send on open");
        }
    }

    fn connect_failed(&mut self, plan: Plan, error: &ConnectError) {
        let _ = self.events.send(Ev::Failed { tag: plan.tag, failure: error.into() });
    }
}

impl Handler for Recorder {
    type Data = Plan;

    fn message(&mut self, ws: &mut Ws<'_, Plan>, message: Message<'_>) {
        let plan = ws.data_mut();
        plan.received += 1;
        let (tag, done) = (plan.tag, plan.close_after == Some(plan.received));
        let _ = self.events.send(Ev::Message { tag, text: message.is_text(), data: message.as_bytes().to_vec() });
        if done {
            ws.close(CloseCode::NORMAL, "done").expect("close");
        }
    }

    fn close(&mut self, plan: Plan, info: CloseInfo<'_>) {
        let _ = self.events.send(Ev::Closed {
            tag: plan.tag,
            code: info.code.0,
            reason: info.reason.to_owned(),
            by_peer: info.by_peer,
        });
    }
}

/// Receives events until `done` says the collection is complete (or panics
/// after 20 s, showing what came).
pub fn collect(events: &mpsc::Receiver<Ev>, mut done: impl FnMut(&[Ev]) -> bool) -> Vec<Ev> {
    let until = Instant::now() + Duration::from_secs(20);
    let mut seen = Vec::new();
    while !done(&seen) {
        let left = until.saturating_duration_since(Instant::now());
        match events.recv_timeout(left) {
            Ok(ev) => seen.push(ev),
            Err(_) => panic!("timed out; events so far: {seen:?}"),
        }
    }
    seen
}

/// Counts events matching `f`.
pub fn count(events: &[Ev], f: impl Fn(&Ev) -> bool) -> usize {
    events.iter().filter(|e| f(e)).count()
}
