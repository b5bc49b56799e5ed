//! The std adapter for the tether WebSocket core (in progress).
