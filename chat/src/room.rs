//! The chat room of one node: who is here, the last messages, and the broadcast topic every
//! connection of the node subscribes to. Messages and presence from other nodes come in
//! through [`Room::receive_from_peer`]; what this node says goes out through an outbox (the Redis
//! bridge), which may be absent or away without stopping local delivery.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use tether_tokio::{Broadcast, BroadcastConfig, CloseCode, Message, SlowConsumer, Subscriber};
use tokio::sync::mpsc;

/// The topic every connection of a node subscribes to.
pub const TOPIC: &str = "chat";
/// Messages a joining client is shown.
pub const HISTORY: usize = 50;
/// How long another node's roster counts without a refresh.
pub const PRESENCE_TTL: Duration = Duration::from_secs(15);

/// One node's room.
pub struct Room {
    node: String,
    hub: Broadcast,
    state: Mutex<State>,
    /// Envelopes for the other nodes (the Redis bridge), when there is one.
    outbox: OnceLock<mpsc::Sender<String>>,
    seq: AtomicU64,
}

#[derive(Default)]
struct State {
    /// The last messages, as sent to clients (JSON).
    history: VecDeque<String>,
    /// This node's users, by connection.
    local: BTreeMap<u64, String>,
    /// Other nodes' users, with when their roster was last heard.
    remote: HashMap<String, (Vec<String>, Instant)>,
}

impl Room {
    /// A room for node `node`. A slow reader's queue is bounded (256 KiB beyond its output);
    /// past that it is closed with 1013 (Try Again Later): the page reconnects and gets the
    /// history, rather than silently missing messages.
    pub fn new(node: String) -> Self {
        let config = BroadcastConfig::default()
            .max_queued_bytes(256 << 10)
            .slow_consumer(SlowConsumer::Close(CloseCode(1013)));
        Room {
            node,
            hub: Broadcast::new(config),
            state: Mutex::new(State::default()),
            outbox: OnceLock::new(),
            seq: AtomicU64::new(1),
        }
    }

    /// Sends what this node says to the other nodes through `outbox` from now on.
    pub fn connect_outbox(&self, outbox: mpsc::Sender<String>) {
        let _ = self.outbox.set(outbox);
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A client joins as `name`: it is sent the greeting (its name, the history, who is
    /// online) and subscribed, under one lock, so it sees every later message exactly once
    /// and after the greeting.
    pub fn join(&self, ws: &mut tether_tokio::WebSocket, id: u64, name: &str) -> Subscriber {
        let mut sub = self.hub.subscriber(ws);
        let mut state = self.lock();
        state.local.insert(id, name.to_owned());
        let hello = format!(
            r#"{{"type":"hello","you":{},"node":{},"online":{},"history":[{}]}}"#,
            json!(name),
            json!(self.node),
            json!(online(&state)),
            state.history.iter().cloned().collect::<Vec<_>>().join(",")
        );
        // The output is empty: this cannot wait or be refused for room.
        let _ = ws.try_send(Message::text(hello));
        sub.subscribe(TOPIC);
        self.announce(&mut state);
        drop(state);
        self.send_presence();
        sub
    }

    /// Client `id` is now called `name`.
    pub fn rename(&self, id: u64, name: &str) {
        let mut state = self.lock();
        state.local.insert(id, name.to_owned());
        self.announce(&mut state);
        drop(state);
        self.send_presence();
    }

    /// Client `id` left.
    pub fn leave(&self, id: u64) {
        let mut state = self.lock();
        state.local.remove(&id);
        self.announce(&mut state);
        drop(state);
        self.send_presence();
    }

    /// `from` says `text`: every client of this node gets it now, the other nodes through
    /// the outbox.
    pub fn say(&self, from: &str, text: &str) {
        let ts = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let msg = json!({
            "type": "msg",
            "id": format!("{}:{seq}", self.node),
            "node": self.node,
            "from": from,
            "text": text,
            "ts": ts,
        });
        self.deliver(msg.to_string());
        self.send_out(json!({"node": self.node, "msg": msg}).to_string());
    }

    /// An envelope from another node (a message or its roster); this node's own are skipped.
    pub fn receive_from_peer(&self, envelope: &str) {
        let Ok(value) = serde_json::from_str::<Value>(envelope) else {
            return;
        };
        let Some(node) = value.get("node").and_then(Value::as_str) else {
            return;
        };
        if node == self.node {
            return;
        }
        if let Some(msg) = value.get("msg") {
            if msg.get("type").and_then(Value::as_str) == Some("msg") {
                self.deliver(msg.to_string());
            }
        } else if let Some(users) = value.get("online").and_then(Value::as_array) {
            let users = users
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect();
            let mut state = self.lock();
            state
                .remote
                .insert(node.to_owned(), (users, Instant::now()));
            self.announce(&mut state);
        }
    }

    /// Forgets rosters not refreshed within [`PRESENCE_TTL`] and sends this node's own (the
    /// bridge calls it periodically and once connected).
    pub fn refresh_presence(&self) {
        let mut state = self.lock();
        let before = state.remote.len();
        state
            .remote
            .retain(|_, (_, seen)| seen.elapsed() < PRESENCE_TTL);
        if state.remote.len() != before {
            self.announce(&mut state);
        }
        drop(state);
        self.send_presence();
    }

    /// Appends a message to the history and publishes it, under the lock so that the history
    /// and every client see one order.
    fn deliver(&self, msg: String) {
        let mut state = self.lock();
        if state.history.len() == HISTORY {
            state.history.pop_front();
        }
        self.hub.publish(TOPIC, Message::text(msg.as_str()));
        state.history.push_back(msg);
    }

    /// Tells this node's clients who is online.
    fn announce(&self, state: &mut State) {
        let msg = json!({"type": "online", "users": online(state)});
        self.hub.publish(TOPIC, Message::text(msg.to_string()));
    }

    fn send_presence(&self) {
        let users: Vec<String> = self.lock().local.values().cloned().collect();
        self.send_out(json!({"node": self.node, "online": users}).to_string());
    }

    /// Hands an envelope to the bridge without waiting: while it is away (or busy), the
    /// envelope is dropped; local delivery never waits for it.
    fn send_out(&self, envelope: String) {
        if let Some(outbox) = self.outbox.get() {
            let _ = outbox.try_send(envelope);
        }
    }
}

/// Everyone online, on every node heard from, sorted.
fn online(state: &State) -> Vec<String> {
    let mut users: Vec<String> = state
        .local
        .values()
        .chain(state.remote.values().flat_map(|(users, _)| users))
        .cloned()
        .collect();
    users.sort();
    users
}
