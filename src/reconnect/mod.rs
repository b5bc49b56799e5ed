//! Reconnection: a pure backoff policy and a reconnecting client session.
