//! The opening handshake (RFC 6455 §4), sans-IO.
//!
//! A WebSocket connection starts as an HTTP/1.1 request that asks to upgrade (RFC 6455 §4.1)
//! and a `101 Switching Protocols` response that agrees (§4.2.2). This module holds both sides
//! and the rules they share:
//!
//! - **Client**: a [`ClientRequest`] (built from a [`WsUrl`]) says what to ask for; the
//!   connection writes it and checks the server's answer, ending in a [`Response`] or a
//!   [`HandshakeError`] with one variant per failure.
//! - **Server**: the connection reads the client's head into a [`Request`]; the application
//!   (or a [`ServerPolicy`]) answers with an [`Accept`] or a [`Reject`], written by
//!   [`write_accept`] and [`write_reject`].
//! - **Rules as functions** ([`validate_request`], [`validate_response`], [`accept_key`], and
//!   the HTTP/2 extended CONNECT forms of RFC 8441) for integrations whose HTTP happens
//!   elsewhere (hyper, axum, an HTTP/2 server). The built-in handshakes use the same functions.
//!
//! Reading is incremental and linear: the head may arrive one byte at a time, each byte is
//! examined once, and [`HandshakeLimits`] bound the head. Bytes that follow the head (frames
//! sent right away) stay in the input buffer.

mod accept;
mod body;
mod client;
mod client_request;
mod error;
mod head;
mod headers;
#[cfg(feature = "http")]
pub mod http;
mod limits;
mod origin;
mod policy;
pub mod proxy;
mod reject;
mod request;
mod response;
mod server;
mod status;
pub(crate) mod tokens;
mod url;
mod validate;

pub use accept::{Accept, write_accept};
#[doc(hidden)]
pub use client::ClientHandshake;
pub use client_request::ClientRequest;
pub use error::{AcceptError, HandshakeError, HeaderError};
pub use headers::Headers;
pub use limits::HandshakeLimits;
pub use origin::InvalidOrigin;
pub use policy::ServerPolicy;
pub use reject::{Reject, write_reject};
pub use request::Request;
pub use response::Response;
#[doc(hidden)]
pub use server::ServerHandshake;
pub use url::{UrlError, WsUrl};
pub use validate::{
    HttpVersion, Negotiated, RequestInfo, WEBSOCKET_GUID, WEBSOCKET_VERSION, accept_key,
    client_key, validate_extended_connect, validate_extended_connect_response, validate_request,
    validate_response,
};
