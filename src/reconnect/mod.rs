//! Reconnection: a pure backoff policy and a reconnecting client session.
//!
//! - [`ReconnectPolicy`] answers "should the client try again, and when?" from how a connection
//!   ended ([`Disconnect`]), the classification table in [`ReconnectConfig`] and the [`Backoff`]
//!   schedule. It reads no clock and owns no generator.
//! - [`Session`] is a reconnecting client on top of [`Connection`](crate::Connection): it asks
//!   its driver to open transports, runs a fresh connection on each, keeps an outbound queue
//!   across disconnections and asks the policy when to come back.

mod backoff;
mod classify;
mod disconnect;
mod fork;
mod policy;
mod queue;
mod retry_after;
mod session;
mod session_config;
mod session_event;

pub use backoff::{Backoff, Jitter};
pub use classify::{Action, ReconnectConfig, TRY_AGAIN_LATER_DELAY};
pub use disconnect::{Disconnect, GiveUpReason};
pub use policy::{Decision, ReconnectPolicy};
pub use queue::{Overflow, SessionSendError, SessionSendErrorKind};
pub use retry_after::parse_retry_after;
pub use session::Session;
pub use session_config::SessionConfig;
pub use session_event::{SessionAction, SessionEvent};
