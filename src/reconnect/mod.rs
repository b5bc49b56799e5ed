//! Reconnection: a pure backoff policy and a reconnecting client session.

mod policy;

pub use policy::{
    Action, Backoff, Decision, Disconnect, GiveUpReason, Initiator, Jitter, ReconnectConfig,
    ReconnectPolicy, TRY_AGAIN_LATER_DELAY, parse_retry_after,
};
