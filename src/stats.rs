//! Per-connection counters: what went each way, the heartbeat's Pings and Pongs, round trips.

use core::time::Duration;

/// Counters of one connection, read with [`Connection::stats`](crate::Connection::stats).
///
/// Plain integers kept by the core as it frames and parses, so reading them is free and they
/// cost a few dozen bytes per connection. Two kinds of byte counts:
///
/// - **payload bytes** (`bytes_sent`, `bytes_received`): the application's data, as given to
///   a send or handed to the reader (text and binary messages and fragments, before
///   compression and after decompression; control frames and headers excluded);
/// - **wire bytes** (`wire_bytes_sent`, `wire_bytes_received`): everything on the transport,
///   the HTTP opening handshake, frame headers, control frames and compressed payloads
///   included. `wire_bytes_sent` counts what the driver reported written, not what is queued.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Complete data messages queued for sending (a fragmented message counts once, at its
    /// last fragment).
    pub messages_sent: u64,
    /// Complete data messages received (a message read in chunks counts once, at its end).
    pub messages_received: u64,
    /// Payload bytes of data queued for sending (before compression).
    pub bytes_sent: u64,
    /// Payload bytes of data received (after decompression).
    pub bytes_received: u64,
    /// Bytes reported written to the transport.
    pub wire_bytes_sent: u64,
    /// Bytes read from the transport.
    pub wire_bytes_received: u64,
    /// Ping frames queued: the heartbeat's and the application's.
    pub pings_sent: u64,
    /// Pong frames received, matching a Ping or not (unsolicited ones included).
    pub pongs_received: u64,
    /// The round-trip time of the latest answered heartbeat Ping.
    pub rtt: Option<Duration>,
    /// The smoothed round-trip time (RFC 6298's 7/8 old + 1/8 new) over heartbeat samples.
    pub smoothed_rtt: Option<Duration>,
}

/// The counters the connection itself keeps; `written` and the round trips live elsewhere in
/// the connection already.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Counters {
    pub(crate) messages_sent: u64,
    pub(crate) messages_received: u64,
    pub(crate) bytes_sent: u64,
    pub(crate) bytes_received: u64,
    pub(crate) wire_bytes_received: u64,
    /// Pings and Pongs are few: 32 bits each keep the addition at 48 bytes.
    pub(crate) pings_sent: u32,
    pub(crate) pongs_received: u32,
}

impl Counters {
    pub(crate) fn sent(&mut self, bytes: usize, whole: bool) {
        self.bytes_sent += bytes as u64;
        self.messages_sent += u64::from(whole);
    }

    pub(crate) fn received(&mut self, bytes: usize, whole: bool) {
        self.bytes_received += bytes as u64;
        self.messages_received += u64::from(whole);
    }
}
