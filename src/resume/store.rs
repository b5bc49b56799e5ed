//! Where a server keeps sessions between connections.

use alloc::collections::{BTreeMap, VecDeque};
use core::time::Duration;

use super::session::Session;
use super::token::SessionToken;
use crate::time::Instant;

/// Where a server parks the sessions of ended connections until their clients come back. An
/// interface, so sessions can live elsewhere (a shared store lets a client resume on another
/// process); [`MemoryStore`] is the default.
///
/// Contract: [`take`](SessionStore::take) is single-use (a session comes out at most once per
/// [`park`](SessionStore::park)), and a token parked for another principal, expired or unknown
/// answer the same `None`.
pub trait SessionStore {
    /// Keeps `session` under its token (a session without one is not kept) from `now`.
    fn park(&mut self, session: Session, now: Instant);
    /// Takes out the session parked under `token`, if it is there, not expired, and was started
    /// by `principal`.
    fn take(&mut self, token: &SessionToken, principal: &str, now: Instant) -> Option<Session>;
}

/// An in-memory [`SessionStore`], bounded in sessions and bytes, with an expiry. Over a bound,
/// the session parked longest ago is evicted. Gone with the process: a server restart loses
/// every parked session (their clients are told their sessions were lost).
#[derive(Debug)]
pub struct MemoryStore {
    sessions: BTreeMap<SessionToken, (Session, Instant)>,
    /// A resumed session's previous token, to its current one (see
    /// [`Session::previous_token`]).
    aliases: BTreeMap<SessionToken, SessionToken>,
    /// Parking order, oldest first (entries whose session was taken are skipped).
    order: VecDeque<(SessionToken, Instant)>,
    memory: usize,
    max_sessions: usize,
    max_memory: usize,
    expiry: Duration,
}

impl MemoryStore {
    /// A store holding at most `max_sessions` sessions and about `max_memory` bytes, each for
    /// at most `expiry` after its connection ended.
    #[must_use]
    pub fn new(max_sessions: usize, max_memory: usize, expiry: Duration) -> Self {
        MemoryStore {
            sessions: BTreeMap::new(),
            aliases: BTreeMap::new(),
            order: VecDeque::new(),
            memory: 0,
            max_sessions,
            max_memory,
            expiry,
        }
    }

    /// Sessions parked now (expired ones included until they are swept).
    #[must_use]
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// Whether no session is parked.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// About how much memory the parked sessions hold.
    #[must_use]
    pub fn memory(&self) -> usize {
        self.memory
    }

    /// Forgets expired sessions.
    pub fn sweep(&mut self, now: Instant) {
        while let Some(&(token, at)) = self.order.front() {
            let live = self.sessions.get(&token).is_some_and(|(_, p)| *p == at);
            if live && now.saturating_duration_since(at) < self.expiry {
                break;
            }
            self.order.pop_front();
            if live {
                self.remove(&token);
            }
        }
    }

    fn remove(&mut self, token: &SessionToken) -> Option<Session> {
        let (session, _) = self.sessions.remove(token)?;
        if let Some(prev) = session.previous_token() {
            self.aliases.remove(&prev);
        }
        self.memory -= session.memory();
        Some(session)
    }

    fn evict_oldest(&mut self) {
        while let Some((token, at)) = self.order.pop_front() {
            if self.sessions.get(&token).is_some_and(|(_, p)| *p == at) {
                self.remove(&token);
                return;
            }
        }
    }
}

impl Default for MemoryStore {
    /// 10,000 sessions, 64 MiB, two minutes.
    fn default() -> Self {
        MemoryStore::new(10_000, 64 << 20, Duration::from_secs(120))
    }
}

impl SessionStore for MemoryStore {
    fn park(&mut self, session: Session, now: Instant) {
        self.sweep(now);
        let Some(token) = session.token() else {
            return;
        };
        let size = session.memory();
        if size > self.max_memory || self.max_sessions == 0 {
            return;
        }
        self.remove(&token);
        while self.sessions.len() >= self.max_sessions || self.memory + size > self.max_memory {
            self.evict_oldest();
        }
        self.memory += size;
        if let Some(prev) = session.previous_token() {
            self.aliases.insert(prev, token);
        }
        self.sessions.insert(token, (session, now));
        self.order.push_back((token, now));
        if self.order.len() > 2 * self.sessions.len() + 16 {
            // Entries of sessions taken since: dropped so the order stays bounded too.
            let sessions = &self.sessions;
            self.order
                .retain(|(t, at)| sessions.get(t).is_some_and(|(_, p)| p == at));
        }
    }

    fn take(&mut self, token: &SessionToken, principal: &str, now: Instant) -> Option<Session> {
        self.sweep(now);
        let token = match self.sessions.contains_key(token) {
            true => *token,
            false => *self.aliases.get(token)?,
        };
        let (session, _) = self.sessions.get(&token)?;
        // Someone else's token is left where it is, for its owner, and looks unknown.
        if session.principal() != principal {
            return None;
        }
        self.remove(&token)
    }
}
