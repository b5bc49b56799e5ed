//! An adapter end that sends as fast as it is let, and the measure of how much it was let
//! send before it had to wait.

use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use tether::{Closed, Message};
use tether_io::Error;

use crate::harness::Conn;
use crate::setup::{LIMIT, Pending, spawn};

/// A thread sending `message` over and over on `conn` until a send fails.
pub struct Flood {
    accepted: Receiver<usize>,
    sender: Pending<(Error, Option<Closed>)>,
}

impl Flood {
    /// Starts sending.
    pub fn start(mut conn: Box<dyn Conn>, message: Message) -> Flood {
        let (progress, accepted) = mpsc::channel();
        let sender = spawn("flood", move || {
            loop {
                if let Err(e) = conn.send(message.clone()) {
                    return (e, conn.closed());
                }
                // The test stopped counting: nothing more to measure.
                if progress.send(message.len()).is_err() {
                    return (Error::Timeout, conn.closed());
                }
            }
        });
        Flood { accepted, sender }
    }

    /// The bytes `send` accepted until it waited for `stall` in a row, or until `cap`: a
    /// sender that is never made to wait runs to the cap. Panics if a send failed.
    pub fn until_stalled(&self, stall: Duration, cap: usize) -> usize {
        let deadline = Instant::now() + LIMIT;
        let mut total = 0;
        while total < cap && Instant::now() < deadline {
            match self.accepted.recv_timeout(stall) {
                Ok(n) => total += n,
                Err(RecvTimeoutError::Timeout) => return total,
                Err(RecvTimeoutError::Disconnected) => {
                    panic!("a send failed after {total} bytes while the peer was there")
                }
            }
        }
        total
    }

    /// Waits until the sender stopped: its send's error (`Error::Timeout` if the send
    /// succeeded after counting stopped) and how the connection ended; `None` if it is still
    /// blocked after `timeout`.
    pub fn ended(self, timeout: Duration) -> Option<(Error, Option<Closed>)> {
        drop(self.accepted);
        self.sender.try_wait(timeout)
    }
}
