//! Broadcast through the engine, over in-memory transports (`tokio::io::duplex`) on one
//! thread: topics, subscribe and unsubscribe, one publish reaching every subscriber in order,
//! and a stalled subscriber under each slow-consumer policy: its memory stays bounded while
//! the others get every message.

use std::time::Duration;

use tether::handshake::ClientRequest;
use tether_tokio::{
    Broadcast, BroadcastConfig, CloseCode, Config, Error, Message, ServerConfig, SlowConsumer,
    WebSocket,
};

/// Every wait is bounded: a hang fails the test.
const LIMIT: Duration = Duration::from_secs(10);
/// The in-memory pipe's capacity each way.
const PIPE: usize = 4096;
/// The server's output high watermark.
const SERVER_HIGH: usize = 16 << 10;
/// Payload size of each published message.
const SIZE: usize = 1000;

fn quiet(high: usize) -> Config {
    let mut c = Config::default();
    c.heartbeat = None;
    c.high_watermark = high;
    c.low_watermark = high / 4;
    c
}

/// A server-side handle and a tether client over an in-memory pipe. A client with a small
/// high watermark that nobody reads from stops reading after a few KiB: a stalled peer.
async fn pair(client_high: usize) -> (WebSocket, WebSocket) {
    let (a, b) = tokio::io::duplex(PIPE);
    let request = ClientRequest::new("ws://127.0.0.1/room").unwrap();
    let (server, client) = tokio::join!(
        tether_tokio::accept(a, ServerConfig::default().config(quiet(SERVER_HIGH))),
        tether_tokio::connect_on(b, request, quiet(client_high)),
    );
    (server.unwrap(), client.unwrap().0)
}

fn payload(i: usize) -> String {
    format!("{i:06} {}", "x".repeat(SIZE - 7))
}

fn index(m: &Message) -> usize {
    match m {
        Message::Text(t) => t.as_str()[..6].parse().unwrap(),
        other => panic!("unexpected {other:?}"),
    }
}

async fn recv(ws: &mut WebSocket) -> Option<Result<Message, Error>> {
    tokio::time::timeout(LIMIT, ws.recv())
        .await
        .expect("recv hangs")
}

#[tokio::test]
async fn one_publish_reaches_every_subscriber_in_order_and_unsubscribe_stops_it() {
    let hub = Broadcast::new(BroadcastConfig::default());
    let mut servers = Vec::new();
    let mut clients = Vec::new();
    let mut subs = Vec::new();
    for _ in 0..3 {
        let (server, client) = pair(1 << 20).await;
        let mut sub = hub.subscriber(&server);
        assert!(sub.subscribe("room"));
        assert!(!sub.subscribe("room"), "twice");
        subs.push(sub);
        servers.push(server);
        clients.push(client);
    }
    assert_eq!(hub.subscribers("room"), 3);
    assert_eq!(hub.topics(), vec!["room".to_string()]);
    for i in 0..50 {
        let published = hub.publish("room", Message::text(payload(i)));
        assert_eq!(published.reached(), 3);
    }
    for client in &mut clients {
        for i in 0..50 {
            let m = recv(client).await.unwrap().unwrap();
            assert_eq!(index(&m), i);
            assert_eq!(m, Message::text(payload(i)));
        }
    }
    // The first leaves; the second drops its subscriber (leaving every topic).
    assert!(subs[0].unsubscribe("room"));
    assert!(!subs[0].unsubscribe("room"));
    drop(subs.remove(1));
    assert_eq!(hub.subscribers("room"), 1);
    assert_eq!(hub.publish("room", Message::text(payload(50))).reached(), 1);
    assert_eq!(hub.publish("elsewhere", Message::text("x")).reached(), 0);
    let m = recv(&mut clients[2]).await.unwrap().unwrap();
    assert_eq!(index(&m), 50);
    // The others got nothing: a direct message is the next thing they see.
    for i in 0..2 {
        servers[i].send_text("direct").await.unwrap();
        assert_eq!(
            recv(&mut clients[i]).await.unwrap().unwrap(),
            Message::text("direct")
        );
    }
    drop(subs);
    assert_eq!(hub.subscribers("room"), 0);
    assert!(hub.topics().is_empty());
}

/// Publishes `count` messages to a fast subscriber (whose client reads each one before the
/// next is published) and a stalled one; checks the stalled one's bound at every step.
/// Returns the stalled subscriber's pieces.
async fn publish_past_a_stalled_subscriber(
    policy: SlowConsumer,
    count: usize,
) -> (
    Broadcast,
    tether_tokio::Subscriber,
    WebSocket,
    WebSocket,
    usize,
) {
    let max_queued = 8 << 10;
    let hub = Broadcast::new(
        BroadcastConfig::default()
            .max_queued_bytes(max_queued)
            .slow_consumer(policy),
    );
    let (fast_server, mut fast_client) = pair(1 << 20).await;
    let (stalled_server, stalled_client) = pair(4096).await;
    let mut fast = hub.subscriber(&fast_server);
    fast.subscribe("feed");
    let mut stalled = hub.subscriber(&stalled_server);
    stalled.subscribe("feed");
    let mut removed = 0;
    let frame = SIZE + 4;
    for i in 0..count {
        let published = hub.publish("feed", Message::text(payload(i)));
        removed += published.removed;
        let m = recv(&mut fast_client).await.unwrap().unwrap();
        assert_eq!(
            index(&m),
            i,
            "the fast subscriber gets every message, in order"
        );
        assert!(stalled.queued_bytes() <= max_queued);
        assert!(
            stalled.held_bytes() <= max_queued + SERVER_HIGH + frame,
            "held {} at {i}",
            stalled.held_bytes()
        );
    }
    assert_eq!(fast.dropped(), 0);
    drop(fast_server);
    (hub, stalled, stalled_server, stalled_client, removed)
}

#[tokio::test]
async fn drop_oldest_keeps_the_newest_and_bounds_the_stalled_subscriber() {
    let count = 200;
    let (_hub, stalled, _server, mut client, removed) =
        publish_past_a_stalled_subscriber(SlowConsumer::DropOldest, count).await;
    assert_eq!(removed, 0);
    let dropped = stalled.dropped() as usize;
    assert!(dropped > 100, "dropped {dropped}");
    // The reader wakes up: what it gets is in order, with gaps (where the pipe and the peer
    // made room while the tasks ran, there can be more than one), and ends with a run of the
    // newest: the queue held them when publishing stopped.
    let mut got = Vec::new();
    while got.len() + dropped < count {
        got.push(index(&recv(&mut client).await.unwrap().unwrap()));
    }
    assert!(got.windows(2).all(|w| w[0] < w[1]), "{got:?}");
    assert!(got.windows(2).any(|w| w[1] != w[0] + 1), "{got:?}");
    assert_eq!(got[..5], [0, 1, 2, 3, 4], "{got:?}");
    let tail: Vec<usize> = (count - 5..count).collect();
    assert_eq!(got[got.len() - 5..], tail[..], "{got:?}");
}

#[tokio::test]
async fn drop_newest_keeps_the_oldest() {
    let count = 200;
    let (_hub, stalled, _server, mut client, removed) =
        publish_past_a_stalled_subscriber(SlowConsumer::DropNewest, count).await;
    assert_eq!(removed, 0);
    let dropped = stalled.dropped() as usize;
    assert!(dropped > 100, "dropped {dropped}");
    // In order, starting with the oldest; the newest were dropped (the queue was full when
    // publishing stopped).
    let mut got = Vec::new();
    while got.len() + dropped < count {
        got.push(index(&recv(&mut client).await.unwrap().unwrap()));
    }
    assert!(got.windows(2).all(|w| w[0] < w[1]), "{got:?}");
    assert_eq!(got[..5], [0, 1, 2, 3, 4], "{got:?}");
    assert!(*got.last().unwrap() < count - 5, "{got:?}");
}

#[tokio::test]
async fn close_policy_disconnects_with_1008_and_1013() {
    for code in [CloseCode::POLICY_VIOLATION, CloseCode(1013)] {
        let count = 100;
        let (hub, stalled, _server, mut client, removed) =
            publish_past_a_stalled_subscriber(SlowConsumer::Close(code), count).await;
        assert_eq!(removed, 1, "removed once");
        assert_eq!(
            hub.subscribers("feed"),
            0,
            "the fast one left, the slow one removed"
        );
        assert_eq!(stalled.queued_bytes(), 0, "its queue was released");
        // The reader wakes up: what it gets is a prefix, then the Close with the code.
        let mut got = Vec::new();
        loop {
            match recv(&mut client).await {
                Some(Ok(m)) => got.push(index(&m)),
                Some(Err(e)) => panic!("{e}"),
                None => break,
            }
        }
        assert_eq!(got, (0..got.len()).collect::<Vec<_>>());
        assert!(got.len() < count);
        let closed = client.closed().unwrap();
        assert_eq!(closed.code, code);
        assert_eq!(closed.reason, "slow consumer");
    }
}

#[tokio::test]
async fn a_subscriber_that_ended_is_removed_on_the_next_publish() {
    let hub = Broadcast::default();
    let (server, mut client) = pair(1 << 20).await;
    let mut sub = hub.subscriber(&server);
    sub.subscribe("t");
    client.close(CloseCode::NORMAL, "").await.unwrap();
    drop(client);
    // The server's driver sees the end; then the publish finds it gone.
    let deadline = tokio::time::Instant::now() + LIMIT;
    while server.closed().is_none() {
        assert!(tokio::time::Instant::now() < deadline, "never closed");
        tokio::task::yield_now().await;
    }
    let published = hub.publish("t", Message::text("late"));
    assert_eq!(published.removed, 1);
    assert_eq!(hub.subscribers("t"), 0);
}

#[tokio::test]
async fn send_prepared_on_a_handle() {
    let (mut server, mut client) = pair(1 << 20).await;
    let prepared = tether_tokio::PreparedMessage::text("prepared \u{2713}");
    server.send_prepared(&prepared).await.unwrap();
    server.send_prepared(&prepared).await.unwrap();
    for _ in 0..2 {
        assert_eq!(
            recv(&mut client).await.unwrap().unwrap(),
            Message::text("prepared \u{2713}")
        );
    }
}
