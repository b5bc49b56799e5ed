//! The public functions of an adapter crate, written once: an adapter invokes
//! [`adapter_api!`](crate::adapter_api) with its runtime, the wrapper that makes its streams
//! a [`Transport`](crate::Transport), and the bounds of those streams.

/// The re-exports every adapter makes, so that it is the one dependency an application
/// needs: the core's message and close types, the engine's configs and error (and, with the
/// adapter's `rustls` feature, rustls and the engine's TLS). The blocking adapter, whose
/// handle types are its own, uses this alone.
#[macro_export]
macro_rules! adapter_reexports {
    () => {
        pub use $crate::tether::reconnect::{self, ReconnectEvent};
        pub use $crate::tether::{self, handshake};
        pub use $crate::tether::{
            Bytes, CloseCode, CloseError, Closed, Config, DataKind, Message, PreparedMessage,
            SendError, SendErrorKind, State, Stats, Utf8Bytes,
        };
        pub use $crate::{
            self as tether_io, ClientConfig, Error, Incoming, Proxy, RequestHook, ServerConfig,
            Shutdown, SlotGuard, is_shut_down,
        };

        #[cfg(feature = "rustls")]
        pub use $crate::{rustls, tls};
    };
}

/// Defines an adapter's public API over the engine: the re-exports an application needs
/// (the core's message and close types, the engine's handle, configs and error), `Server`,
/// `Connecting`, `MaybeTlsStream`, `connect`, `connect_request`, `connect_on`, `accept`,
/// `accept_with`, `open_upgraded`, `serve_upgraded`, `reconnecting` and
/// `reconnecting_request`, each fixed to one runtime.
///
/// ```ignore
/// tether_io::adapter_api!(runtime = Tokio, wrap = TokioIo,
///     stream = [tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static]);
/// ```
#[macro_export]
macro_rules! adapter_api {
    (runtime = $rt:ty, wrap = $wrap:path, stream = [$($bound:tt)+]) => {
        $crate::adapter_reexports!();
        pub use $crate::{ReconnectingClient, Upgraded, WebSocket, WsReader, WsWriter};
        pub use $crate::tether::Role;
        pub use $crate::broadcast::{
            self, Broadcast, BroadcastConfig, Published, SlowConsumer, Subscriber,
        };

        /// The stream [`connect`] opens: plain TCP for `ws://`, TLS for `wss://`.
        pub type MaybeTlsStream = $crate::ClientStream<$rt>;

        /// A TCP listener that upgrades connections, with its limits (a connection limit with
        /// 503 and `Retry-After` beyond it, back-off when out of file descriptors): see
        /// [`tether_io::Server`].
        pub type Server = $crate::Server<$rt>;

        /// An accepted connection holding a slot of a [`Server`]'s limit.
        pub type Connecting = $crate::Connecting<$rt>;

        /// Connects to a `ws://` or `wss://` URL: TCP (`TCP_NODELAY`) and, for `wss://`, TLS
        /// within `ClientConfig::connect_timeout`, then the opening handshake within
        /// `Config::handshake_timeout`. See [`tether_io::connect`].
        pub async fn connect(
            url: &str,
            config: $crate::ClientConfig,
        ) -> ::core::result::Result<
            ($crate::WebSocket, $crate::tether::handshake::Response),
            $crate::Error,
        > {
            $crate::connect::<$rt>(url, config).await
        }

        /// [`connect`] with a prepared request (subprotocols, extra headers such as
        /// `Authorization`).
        pub async fn connect_request(
            request: $crate::tether::handshake::ClientRequest,
            config: $crate::ClientConfig,
        ) -> ::core::result::Result<
            ($crate::WebSocket, $crate::tether::handshake::Response),
            $crate::Error,
        > {
            $crate::connect_request::<$rt>(request, config).await
        }

        /// Runs the client handshake over a stream the caller connected (a proxy tunnel, a
        /// Unix socket, an in-memory pipe...). Cancel safety: dropping the future drops the
        /// stream.
        pub async fn connect_on<S>(
            stream: S,
            request: $crate::tether::handshake::ClientRequest,
            config: $crate::tether::Config,
        ) -> ::core::result::Result<
            ($crate::WebSocket, $crate::tether::handshake::Response),
            $crate::Error,
        >
        where
            S: $($bound)+,
        {
            $crate::connect_on::<$rt, _>($wrap(stream), request, config).await
        }

        /// Runs the opening handshake on an accepted stream (plain TCP, TLS, anything),
        /// applying the policy; bounded by `Config::handshake_timeout`. See
        /// [`tether_io::accept`].
        pub async fn accept<S>(
            stream: S,
            config: $crate::ServerConfig,
        ) -> ::core::result::Result<$crate::WebSocket, $crate::Error>
        where
            S: $($bound)+,
        {
            $crate::accept::<$rt, _>($wrap(stream), config).await
        }

        /// Like [`accept`], with the decision made by `decide` after the policy's checks:
        /// it sees the request and accepts (choosing the subprotocol, extra headers) or
        /// rejects it.
        pub async fn accept_with<S, F>(
            stream: S,
            config: $crate::ServerConfig,
            decide: F,
        ) -> ::core::result::Result<$crate::WebSocket, $crate::Error>
        where
            S: $($bound)+,
            F: FnOnce(
                &$crate::tether::handshake::Request,
            ) -> ::core::result::Result<
                $crate::tether::handshake::Accept,
                $crate::tether::handshake::Reject,
            >,
        {
            $crate::accept_with::<$rt, _, _>($wrap(stream), config, decide).await
        }

        /// Runs TLS (rustls) and then the opening handshake on an accepted stream, both within
        /// `Config::handshake_timeout`; see [`tether_io::accept_tls`].
        #[cfg(feature = "rustls")]
        pub async fn accept_tls<S>(
            stream: S,
            tls: ::std::sync::Arc<$crate::rustls::ServerConfig>,
            config: $crate::ServerConfig,
        ) -> ::core::result::Result<$crate::WebSocket, $crate::Error>
        where
            S: $($bound)+,
        {
            $crate::accept_tls::<$rt, _>($wrap(stream), tls, config).await
        }

        /// Opens a WebSocket over a stream whose HTTP upgrade was done elsewhere (hyper,
        /// axum, an HTTP/2 extended CONNECT stream), in either role, and spawns its driver.
        /// `leftover` (bytes read past the HTTP head) goes to the connection first. See
        /// [`tether_io::open_upgraded`].
        pub fn open_upgraded<S>(
            stream: S,
            leftover: &[u8],
            upgraded: $crate::Upgraded,
        ) -> ::core::result::Result<$crate::WebSocket, $crate::Error>
        where
            S: $($bound)+,
        {
            $crate::open_upgraded::<$rt, _>($wrap(stream), leftover, upgraded)
        }

        /// [`open_upgraded`], then `handler` with the connection, with its driver in the
        /// same future (one task per connection). See [`tether_io::serve_upgraded`].
        pub fn serve_upgraded<S, H, Fut>(
            stream: S,
            leftover: &[u8],
            upgraded: $crate::Upgraded,
            handler: H,
        ) -> impl ::core::future::Future<
            Output = ::core::result::Result<(), $crate::Error>,
        >
        where
            S: $($bound)+,
            H: FnOnce($crate::WebSocket) -> Fut,
            Fut: ::core::future::Future<Output = ()>,
        {
            $crate::serve_upgraded::<$rt, _, H, Fut>($wrap(stream), leftover, upgraded, handler)
        }

        /// Starts a reconnecting client for `url` (its first attempt begins at once, in a
        /// task of the runtime); see [`tether_io::ReconnectingClient`].
        pub fn reconnecting(
            url: &str,
            config: $crate::ClientConfig,
            reconnect: $crate::tether::reconnect::ReconnectConfig,
            settings: $crate::tether::reconnect::SessionConfig,
        ) -> ::core::result::Result<$crate::ReconnectingClient, $crate::Error> {
            $crate::reconnecting::<$rt>(url, config, reconnect, settings)
        }

        /// [`reconnecting`] with a prepared request (subprotocols, extra headers).
        pub fn reconnecting_request(
            request: $crate::tether::handshake::ClientRequest,
            config: $crate::ClientConfig,
            reconnect: $crate::tether::reconnect::ReconnectConfig,
            settings: $crate::tether::reconnect::SessionConfig,
        ) -> ::core::result::Result<$crate::ReconnectingClient, $crate::Error> {
            $crate::reconnecting_request::<$rt>(request, config, reconnect, settings)
        }
    };
}
