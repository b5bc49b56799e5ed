//! tether: a sans-IO WebSocket (RFC 6455) protocol core.
#![no_std]
#![cfg_attr(docsrs, feature(doc_cfg))]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod close;
pub mod error;
pub mod handshake;
pub mod reconnect;
mod time;

pub use close::{CloseCode, CloseFrame};
pub use error::{CloseError, ProtocolError, SendError, SendErrorKind};
pub use time::Instant;
