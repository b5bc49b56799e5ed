//! The smol adapter for the tether WebSocket core (in progress).
