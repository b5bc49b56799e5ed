//! Runs the core's [`Connection`] over a tokio byte stream, one event at a time, so the doctor
//! can time each stage and stop waiting at a deadline of its own.
//!
//! This is the crate documentation's driving loop (write what the core queued, obey the
//! transport action, hand out events, then wait for bytes or the next deadline), with reads
//! copied into the core through [`Connection::handle_data`] so that the doctor can keep what
//! the server said during the opening handshake.

use tether::{Connection, Data, Event, Instant, TransportAction};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant as TokioInstant;

/// The most handshake bytes kept for the report (a head is at most 16 KiB by default).
const CAPTURE_LIMIT: usize = 64 * 1024;

/// A byte stream: TCP, TLS over TCP, or either through a proxy tunnel.
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// The core's clock reading for now (tokio's clock, so paused-time tests would follow it).
pub fn now() -> Instant {
    Instant::from(TokioInstant::now().into_std())
}

/// What [`Driver::next_event`] returns.
// Returned once per event and matched at once: boxing the event would allocate for nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Next {
    /// The connection produced an event.
    Event(Event),
    /// The caller's deadline passed first.
    Deadline,
    /// The transport is finished: the core said to close it, after its terminal event.
    Finished,
}

/// A client [`Connection`] over a stream.
pub struct Driver {
    stream: Box<dyn Stream>,
    conn: Connection,
    shut_down: bool,
    eof: bool,
    write_failed: bool,
    finished: bool,
    /// The bytes received before the connection opened or ended (the response head), bounded.
    captured: Vec<u8>,
    capturing: bool,
    /// When the first byte of the answer arrived.
    first_byte: Option<TokioInstant>,
    /// Data messages received and not yet looked at by the caller.
    received: Vec<Data>,
    buf: Vec<u8>,
}

impl Driver {
    /// Drives `conn` over `stream`.
    pub fn new(stream: Box<dyn Stream>, conn: Connection) -> Self {
        Driver {
            stream,
            conn,
            shut_down: false,
            eof: false,
            write_failed: false,
            finished: false,
            captured: Vec::new(),
            capturing: true,
            first_byte: None,
            received: Vec::new(),
            buf: vec![0; 16 * 1024],
        }
    }

    /// The connection, for commands (`ping`, `close`) and queries.
    pub fn conn(&mut self) -> &mut Connection {
        &mut self.conn
    }

    /// The bytes received before the connection opened or ended.
    pub fn captured(&self) -> &[u8] {
        &self.captured
    }

    /// When the first byte from the peer arrived, if one did.
    pub fn first_byte(&self) -> Option<TokioInstant> {
        self.first_byte
    }

    /// Takes the data messages received so far.
    pub fn take_received(&mut self) -> Vec<Data> {
        std::mem::take(&mut self.received)
    }

    /// Runs the connection until it has an event, the transport is finished, or `deadline`
    /// passes (never, when `None`).
    pub async fn next_event(&mut self, deadline: Option<TokioInstant>) -> Next {
        loop {
            self.write_all().await;
            match self.conn.poll_transport() {
                Some(TransportAction::Shutdown) if !self.shut_down => {
                    self.shut_down = true;
                    let _ = self.stream.shutdown().await;
                }
                Some(TransportAction::Close) if !self.finished => {
                    // Events queued before the end still come first.
                    if let Some(event) = self.poll_event() {
                        return Next::Event(event);
                    }
                    self.finished = true;
                    let _ = self.stream.shutdown().await;
                }
                _ => {}
            }
            if let Some(event) = self.poll_event() {
                return Next::Event(event);
            }
            if self.finished {
                return Next::Finished;
            }
            let core_deadline = self
                .conn
                .poll_timeout()
                .map(|at| TokioInstant::now() + (at - now()));
            let wake = match (core_deadline, deadline) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let read = self.conn.wants_read() && !self.eof;
            tokio::select! {
                result = self.stream.read(&mut self.buf), if read => match result {
                    Ok(0) | Err(_) => {
                        self.eof = true;
                        self.capturing = false;
                        self.conn.handle_eof(now());
                    }
                    Ok(n) => {
                        self.first_byte.get_or_insert_with(TokioInstant::now);
                        if self.capturing && self.captured.len() < CAPTURE_LIMIT {
                            let room = CAPTURE_LIMIT - self.captured.len();
                            self.captured.extend_from_slice(&self.buf[..n.min(room)]);
                        }
                        self.conn.handle_data(now(), &self.buf[..n]);
                    }
                },
                () = sleep_until(wake) => {
                    self.conn.handle_timeout(now());
                    if deadline.is_some_and(|d| TokioInstant::now() >= d) {
                        return Next::Deadline;
                    }
                }
            }
        }
    }

    /// Hands out the next event, draining received data aside.
    fn poll_event(&mut self) -> Option<Event> {
        while let Some(data) = self.conn.read() {
            self.received.push(data);
        }
        let event = self.conn.poll_event()?;
        if matches!(event, Event::Connected { .. } | Event::Closed(_)) {
            self.capturing = false;
        }
        Some(event)
    }

    /// Writes everything the core queued; a failed write ends the transport.
    async fn write_all(&mut self) {
        while let Some(transmit) = self.conn.poll_transmit() {
            if self.finished || self.write_failed {
                return;
            }
            match self.stream.write(transmit.first()).await {
                Ok(0) | Err(_) => {
                    self.write_failed = true;
                    self.conn.handle_eof(now());
                    return;
                }
                Ok(n) => self.conn.advance(n),
            }
        }
        let _ = self.stream.flush().await;
    }
}

/// Sleeps until `deadline`, or forever when there is none.
async fn sleep_until(deadline: Option<TokioInstant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
