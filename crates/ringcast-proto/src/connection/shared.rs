//! The value types both halves of a connection use: the role, where the
//! closing handshake stands, the limits. They live below the receiver and
//! the sender so that neither imports the other's parent. (The kind of a
//! message lives with the opcodes in `frame`, where the extension seam
//! reads it too without importing the connection.)

/// Which end of the connection we are: servers receive masked frames and
/// send unmasked ones, clients the reverse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Accepted the connection.
    Server,
    /// Opened the connection.
    Client,
}

/// Where the closing handshake stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Messages flow both ways.
    Open,
    /// We sent a close frame and wait for the peer's; incoming data is
    /// discarded.
    CloseSent,
    /// Both closes were exchanged, or the connection failed. A server now
    /// closes the TCP connection once its pending output is written; a
    /// client waits for the server to do so.
    Closed,
}

/// Limits that keep one peer from consuming unbounded memory. A connection
/// keeps them in 32 bits each: values above 4 GiB act as 4 GiB - 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// Largest payload of a single frame; larger fails with 1009.
    /// Default 16 MiB.
    pub max_frame_size: usize,
    /// Largest message, all fragments together; larger fails with 1009.
    /// Default 16 MiB.
    pub max_message_size: usize,
    /// Capacity the assembly buffer keeps between messages. Larger buffers
    /// are shrunk back, so memory follows the traffic instead of the largest
    /// message ever seen. Default 4 KiB.
    pub retain_capacity: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config { max_frame_size: 16 << 20, max_message_size: 16 << 20, retain_capacity: 4 << 10 }
    }
}

impl Config {
    /// Sets [`Config::max_frame_size`].
    pub fn max_frame_size(mut self, bytes: usize) -> Self {
        self.max_frame_size = bytes;
        self
    }
    /// Sets [`Config::max_message_size`].
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes;
        self
    }
    /// Sets [`Config::retain_capacity`].
    pub fn retain_capacity(mut self, bytes: usize) -> Self {
        self.retain_capacity = bytes;
        self
    }
}
