//! TLS configuration with an explicit rustls provider (no process-wide default needed).

pub use tether_io::tls::{default_client_config, ring_provider};
