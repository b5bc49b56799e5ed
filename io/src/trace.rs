//! The span of a connection, with the `tracing` feature: `websocket` with the peer's address,
//! the role and, once negotiated, the subprotocol. The core's events (state changes,
//! heartbeats, the close) happen inside it: the handshake runs in it, and every later call into
//! the core is made under [`Shared::lock`](crate::shared::Shared::lock), which enters it.

use std::fmt::Display;

use tether::Role;

/// The name every connection span has.
pub(crate) const SPAN_NAME: &str = "websocket";

/// A new connection span.
pub(crate) fn connection_span(role: Role, peer: Option<&dyn Display>) -> tracing::Span {
    let span = tracing::info_span!(
        "websocket",
        role = ?role,
        peer = tracing::field::Empty,
        subprotocol = tracing::field::Empty,
    );
    if let Some(peer) = peer {
        span.record("peer", tracing::field::display(peer));
    }
    span
}

/// The span a new connection's state lives in: the current one when the code that opens the
/// connection made it (it knows the peer), else a new one without the peer.
pub(crate) fn adopt_or_new(role: Role) -> tracing::Span {
    let current = tracing::Span::current();
    if current.metadata().is_some_and(|m| m.name() == SPAN_NAME) {
        current
    } else {
        connection_span(role, None)
    }
}
