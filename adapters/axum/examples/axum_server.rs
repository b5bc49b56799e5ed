//! An echo server on axum: `axum_server ADDR` (default `127.0.0.1:3000`) prints
//! `listening on ADDR` once bound, then serves a page at `/`, a health check at `/health` and
//! echoing WebSockets at `/ws` (HTTP/1.1 and HTTP/2).

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:3000".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("listening on {}", listener.local_addr()?);
    axum::serve(listener, tether_axum::echo_app()).await
}
