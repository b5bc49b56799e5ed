//! Reconnection: a pure backoff policy, and a supervisor that keeps a client connected.
//!
//! - [`ReconnectPolicy`] answers "should the client try again, and when?" from how a connection
//!   ended ([`Disconnect`]), the classification table in [`ReconnectConfig`] and the [`Backoff`]
//!   schedule. It reads no clock and owns no generator.
//! - [`Supervisor`] stands beside the current [`Connection`](crate::Connection), not around it:
//!   it tells its driver when to open a transport, hands out a fresh connection with the queued
//!   messages already sent into it, learns how that connection ended, puts back the messages
//!   whose frames were not entirely written, and answers with the next delay. The connection's
//!   bytes, events and data never pass through it.

mod backoff;
mod classify;
mod disconnect;
mod policy;
mod queue;
mod retry_after;
mod session_config;
mod supervisor;
mod supervisor_event;

pub use backoff::{Backoff, Jitter};
pub use classify::{Action, ReconnectConfig, TRY_AGAIN_LATER_DELAY};
pub use disconnect::{Disconnect, GiveUpReason};
pub use policy::{Decision, ReconnectPolicy};
pub use queue::{Overflow, SessionSendError, SessionSendErrorKind};
pub use retry_after::parse_retry_after;
pub use session_config::SessionConfig;
pub use supervisor::Supervisor;
pub use supervisor_event::{ReconnectEvent, SupervisorAction, SupervisorEvent};
