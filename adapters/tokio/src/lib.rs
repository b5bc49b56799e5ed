//! The tokio adapter for the tether WebSocket core (in progress).
