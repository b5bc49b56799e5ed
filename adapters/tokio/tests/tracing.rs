//! The `tracing` feature over real sockets: each connection's `websocket` span carries the
//! peer's address, the role and the subprotocol, and the core's events (open, closing, closed)
//! happen inside it, on whichever task drove the connection.
#![cfg(feature = "tracing")]

use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tether::handshake::{ClientRequest, ServerPolicy};
use tether::{CloseCode, Config};
use tether_tokio::{ClientConfig, Server, ServerConfig};
use tokio::time::timeout;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

type Fields = BTreeMap<String, String>;

struct Visitor<'a>(&'a mut Fields);

impl Visit for Visitor<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

/// An event with the fields of the span it happened in, as they were then.
#[derive(Debug, Clone)]
struct Captured {
    fields: Fields,
    span_name: Option<String>,
    span: Fields,
}

#[derive(Clone, Default)]
struct Capture {
    spans: Arc<Mutex<HashMap<u64, Fields>>>,
    events: Arc<Mutex<Vec<Captured>>>,
}

impl<S: tracing::Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Capture {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, _: Context<'_, S>) {
        let mut fields = Fields::new();
        attrs.record(&mut Visitor(&mut fields));
        self.spans.lock().unwrap().insert(id.into_u64(), fields);
    }
    fn on_record(&self, id: &Id, values: &Record<'_>, _: Context<'_, S>) {
        if let Some(fields) = self.spans.lock().unwrap().get_mut(&id.into_u64()) {
            values.record(&mut Visitor(fields));
        }
    }
    fn on_event(&self, event: &tracing::Event<'_>, ctx: Context<'_, S>) {
        let mut fields = Fields::new();
        event.record(&mut Visitor(&mut fields));
        let span = ctx.event_span(event);
        let span_fields = span
            .as_ref()
            .and_then(|s| self.spans.lock().unwrap().get(&s.id().into_u64()).cloned())
            .unwrap_or_default();
        self.events.lock().unwrap().push(Captured {
            fields,
            span_name: span.map(|s| s.name().to_owned()),
            span: span_fields,
        });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_spans_carry_peer_role_and_subprotocol() {
    let capture = Capture::default();
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(capture.clone()))
        .unwrap();

    let policy = ServerPolicy::new().subprotocol("chat");
    let server = Server::bind("127.0.0.1:0", ServerConfig::new(Config::default(), policy))
        .await
        .unwrap();
    let addr = server.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let connecting = server.accept().await.unwrap();
        let peer = connecting.peer_addr();
        let mut ws = connecting.handshake().await.unwrap();
        while let Some(Ok(m)) = ws.recv().await {
            ws.send(m).await.unwrap();
        }
        let _ = tx.send((peer, ws.closed()));
    });
    let request = ClientRequest::new(&format!("ws://{addr}/"))
        .unwrap()
        .subprotocol("chat")
        .unwrap();
    let (mut ws, _) = timeout(
        Duration::from_secs(20),
        tether_tokio::connect_request(request, ClientConfig::default()),
    )
    .await
    .unwrap()
    .unwrap();
    ws.send_text("traced").await.unwrap();
    ws.recv().await.unwrap().unwrap();
    let closed = ws.close(CloseCode::NORMAL, "done").await.unwrap();
    assert!(closed.clean);
    let (client_addr, server_closed) = timeout(Duration::from_secs(20), rx).await.unwrap().unwrap();
    assert!(server_closed.is_some());

    let events = capture.events.lock().unwrap().clone();
    let find = |message: &str, role: &str| {
        events
            .iter()
            .find(|e| {
                e.fields.get("message").is_some_and(|m| m == message)
                    && e.span.get("role").is_some_and(|r| r == role)
            })
            .unwrap_or_else(|| panic!("no {message:?} event in a {role} span: {events:#?}"))
            .clone()
    };
    let client_open = find("open", "Client");
    assert_eq!(client_open.span_name.as_deref(), Some("websocket"));
    assert_eq!(client_open.span["peer"], addr.to_string());
    assert_eq!(client_open.fields["subprotocol"], "chat");
    let server_open = find("open", "Server");
    assert_eq!(server_open.span["peer"], client_addr.to_string());
    let client_closed = find("closed", "Client");
    assert_eq!(client_closed.span["subprotocol"], "chat");
    assert_eq!(client_closed.span["peer"], addr.to_string());
    assert_eq!(client_closed.fields["code"], "1000");
    assert_eq!(client_closed.fields["clean"], "true");
    assert_eq!(client_closed.fields["initiator"], "Local");
    let server_closing = find("closing", "Server");
    assert_eq!(server_closing.fields["initiator"], "remote");
    assert_eq!(server_closing.fields["reason"], "done");
    let server_closed = find("closed", "Server");
    assert_eq!(server_closed.span["subprotocol"], "chat");
    assert_eq!(server_closed.fields["initiator"], "Remote");
    assert!(find("connecting", "Client").span.contains_key("peer"));

    // A connection upgraded elsewhere (hyper, axum) gets its span too, with the peer the
    // upgrading code names.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let there = tokio::net::TcpStream::connect(listener.local_addr().unwrap());
    let (there, accepted) = tokio::join!(there, listener.accept());
    let (here, _) = accepted.unwrap();
    let named: std::net::SocketAddr = "192.0.2.7:4242".parse().unwrap();
    let upgraded = |role| tether_tokio::Upgraded::new(role, Config::default());
    let mut server_side =
        tether_tokio::open_upgraded(here, &[], upgraded(tether::Role::Server).peer(named)).unwrap();
    let mut client_side =
        tether_tokio::open_upgraded(there.unwrap(), &[], upgraded(tether::Role::Client)).unwrap();
    let closing = tokio::spawn(async move { client_side.close(CloseCode::NORMAL, "bye").await });
    assert!(server_side.recv().await.is_none());
    assert!(closing.await.unwrap().unwrap().clean);
    let events = capture.events.lock().unwrap().clone();
    assert!(
        events.iter().any(|e| {
            e.span_name.as_deref() == Some("websocket")
                && e.span.get("peer").is_some_and(|p| *p == named.to_string())
                && e.span.get("role").is_some_and(|r| r == "Server")
                && e.fields.get("message").is_some_and(|m| m == "closed")
        }),
        "no closed event in the upgraded connection's span: {events:#?}"
    );
}
