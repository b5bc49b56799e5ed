//! The bridge between a node's room and Redis pub/sub: what the node says is published on one
//! channel, what the other nodes publish there is delivered to the node's clients.
//!
//! The bridge reconnects by the core's reconnect policy (`tether::reconnect::ReconnectPolicy`:
//! exponential backoff with jitter, the RFC 6455 §7.2.3 random first delay after a lost
//! connection), not by the Redis client's own. While Redis is away the node's clients still
//! talk to each other: the room never waits for the bridge, and what it hands over meanwhile
//! is dropped (cross-node delivery resumes with the next message once Redis is back).

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use rand::SeedableRng;
use rand::rngs::{StdRng, SysRng};
use redis::AsyncCommands;
use tether_tokio::tether::reconnect::{
    Backoff, Decision, Disconnect, ReconnectConfig, ReconnectPolicy,
};
use tokio::sync::mpsc;

use crate::room::Room;

/// The channel every node publishes on and subscribes to.
pub const CHANNEL: &str = "tether-chat";
/// Envelopes waiting for the bridge (beyond that they are dropped).
const OUTBOX: usize = 1024;
/// How long connecting and subscribing may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How often a node repeats who is online on it.
const PRESENCE_EVERY: Duration = Duration::from_secs(5);

/// Starts the bridge for `room` to the Redis server at `url` (e.g. `redis://127.0.0.1:6379`).
pub fn start(url: String, room: Arc<Room>) -> Result<(), redis::RedisError> {
    let client = redis::Client::open(url.as_str())?;
    let (tx, rx) = mpsc::channel(OUTBOX);
    room.connect_outbox(tx);
    tokio::spawn(run(client, url, room, rx));
    Ok(())
}

/// The reconnect schedule: quick first retries (a restarted Redis is back within a second or
/// two), at most 5 s apart.
fn policy() -> ReconnectPolicy {
    let mut backoff = Backoff::default();
    backoff.initial = Duration::from_millis(200);
    backoff.max = Duration::from_secs(5);
    backoff.first_delay_max = Some(Duration::from_secs(1));
    let mut config = ReconnectConfig::default();
    config.backoff = backoff;
    ReconnectPolicy::new(config)
}

async fn run(
    client: redis::Client,
    url: String,
    room: Arc<Room>,
    mut outbox: mpsc::Receiver<String>,
) {
    let mut policy = policy();
    let mut rng = StdRng::try_from_rng(&mut SysRng).unwrap_or_else(|_| StdRng::seed_from_u64(17));
    loop {
        let (why, error) = match session(&client, &url, &room, &mut outbox, &mut policy).await {
            Ended::OutboxClosed => return,
            Ended::NotConnected(e) => (Disconnect::ConnectFailed, e),
            Ended::Lost(e) => (Disconnect::TransportLost, e),
        };
        let now = tether_tokio::tether::Instant::from(std::time::Instant::now());
        let wait = match policy.disconnected(now, why, &mut rng) {
            Decision::Retry { after, .. } => after,
            _ => Duration::from_secs(5),
        };
        eprintln!("redis: {error}; retrying in {} ms", wait.as_millis());
        // Waiting: what the room hands over meanwhile cannot reach the other nodes.
        let sleep = tokio::time::sleep(wait);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                () = &mut sleep => break,
                envelope = outbox.recv() => if envelope.is_none() { return },
            }
        }
    }
}

enum Ended {
    OutboxClosed,
    NotConnected(String),
    Lost(String),
}

/// One connection to Redis, until it is lost.
async fn session(
    client: &redis::Client,
    url: &str,
    room: &Room,
    outbox: &mut mpsc::Receiver<String>,
    policy: &mut ReconnectPolicy,
) -> Ended {
    let connect = async {
        let mut pubsub = client.get_async_pubsub().await?;
        pubsub.subscribe(CHANNEL).await?;
        let publisher = client.get_multiplexed_async_connection().await?;
        Ok::<_, redis::RedisError>((pubsub, publisher))
    };
    let (pubsub, mut publisher) = match tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
        Ok(Ok(connected)) => connected,
        Ok(Err(e)) => return Ended::NotConnected(e.to_string()),
        Err(_) => return Ended::NotConnected("connect timed out".into()),
    };
    policy.connected(tether_tokio::tether::Instant::from(
        std::time::Instant::now(),
    ));
    eprintln!("redis: connected to {url}");
    room.refresh_presence();
    let mut incoming = pubsub.into_on_message();
    let mut presence = tokio::time::interval(PRESENCE_EVERY);
    loop {
        tokio::select! {
            msg = incoming.next() => match msg {
                Some(msg) => {
                    if let Ok(payload) = std::str::from_utf8(msg.get_payload_bytes()) {
                        room.receive_from_peer(payload);
                    }
                }
                None => return Ended::Lost("subscription lost".into()),
            },
            envelope = outbox.recv() => match envelope {
                Some(envelope) => {
                    let sent: redis::RedisResult<()> = publisher.publish(CHANNEL, envelope).await;
                    if let Err(e) = sent {
                        return Ended::Lost(e.to_string());
                    }
                }
                None => return Ended::OutboxClosed,
            },
            _ = presence.tick() => room.refresh_presence(),
        }
    }
}
