//! Where a server keeps sessions between connections.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::string::String;
use alloc::vec::Vec;
use core::time::Duration;

use super::LossReason;
use super::session::Session;
use super::token::SessionToken;
use crate::time::Instant;

/// A parked session a store gave up on: its client did not come back in time, or the store
/// needed the room. What the server had sent on it and the client had not confirmed is lost;
/// a store reports that (see [`SessionStore::take_lost`]) instead of dropping it silently.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LostSession {
    /// The session's token.
    pub token: SessionToken,
    /// Who the session belonged to (what the authentication hook accepted).
    pub principal: String,
    /// [`LossReason::Expired`] or [`LossReason::Evicted`].
    pub reason: LossReason,
    /// Messages sent on the session that the client had not confirmed: never delivered, or
    /// delivered without the server knowing.
    pub unconfirmed_messages: usize,
    /// Their payload bytes.
    pub unconfirmed_bytes: usize,
}

impl LostSession {
    fn of(session: &Session, reason: LossReason) -> Option<LostSession> {
        Some(LostSession {
            token: session.token()?,
            principal: session.principal().into(),
            reason,
            unconfirmed_messages: session.unacked_messages(),
            unconfirmed_bytes: session.unacked_bytes(),
        })
    }
}

/// Where a server parks the sessions of ended connections until their clients come back. An
/// interface, so sessions can live elsewhere (a shared store lets a client resume on another
/// process); [`MemoryStore`] is the default.
///
/// Contract: [`take`](SessionStore::take) is single-use (a session comes out at most once per
/// [`park`](SessionStore::park)), a token parked for another principal, expired or unknown
/// answer the same `None`, and every parked session the store lets go of other than through
/// `take` (expired, evicted, refused as too large) is reported by
/// [`take_lost`](SessionStore::take_lost).
pub trait SessionStore {
    /// Keeps `session` under its token (a session without one is not kept) from `now`.
    fn park(&mut self, session: Session, now: Instant);
    /// Takes out the session parked under `token`, if it is there, not expired, and was started
    /// by `principal`.
    fn take(&mut self, token: &SessionToken, principal: &str, now: Instant) -> Option<Session>;
    /// The sessions given up since the last call (those expired by `now` included), oldest
    /// first.
    fn take_lost(&mut self, now: Instant) -> Vec<LostSession>;
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
    /// Sessions given up and not reported yet, at most `max_sessions.max(1024)` (past that
    /// the oldest reports go, counted in `unreported`).
    lost: VecDeque<LostSession>,
    unreported: u64,
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
            lost: VecDeque::new(),
            unreported: 0,
        }
    }

    /// Reports of lost sessions dropped because nobody took them ([`SessionStore::take_lost`])
    /// while more than `max_sessions` (at least 1,024) waited.
    #[must_use]
    pub fn unreported(&self) -> u64 {
        self.unreported
    }

    fn report(&mut self, session: &Session, reason: LossReason) {
        let Some(lost) = LostSession::of(session, reason) else {
            return;
        };
        if self.lost.len() >= self.max_sessions.max(1024) {
            self.lost.pop_front();
            self.unreported += 1;
        }
        self.lost.push_back(lost);
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
            if live && let Some(session) = self.remove(&token) {
                self.report(&session, LossReason::Expired);
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
                if let Some(session) = self.remove(&token) {
                    self.report(&session, LossReason::Evicted);
                }
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
            self.report(&session, LossReason::Evicted);
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

    fn take_lost(&mut self, now: Instant) -> Vec<LostSession> {
        self.sweep(now);
        self.lost.drain(..).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Message;
    use crate::resume::ResumeConfig;

    fn session(n: u8, payload: usize) -> Session {
        let mut s = Session::new(ResumeConfig::default());
        s.set_token(SessionToken::parse(&alloc::format!("{n:02x}{}", "0".repeat(30))).unwrap());
        s.set_principal("p");
        s.record(Message::binary(alloc::vec![0u8; payload]));
        s
    }

    fn token(s: &Session) -> SessionToken {
        s.token().unwrap()
    }

    #[test]
    fn sessions_expire() {
        let mut store = MemoryStore::new(10, 1 << 20, Duration::from_secs(5));
        let s = session(1, 10);
        let t = token(&s);
        store.park(s, Instant::from_secs(1));
        assert!(store.take(&t, "p", Instant::from_secs(6)).is_none());
        assert!(store.is_empty() && store.memory() == 0);
        // Reported, with what was not confirmed, once.
        let lost = store.take_lost(Instant::from_secs(6));
        assert_eq!(lost.len(), 1, "{lost:?}");
        assert_eq!(lost[0].token, t);
        assert_eq!(lost[0].principal, "p");
        assert_eq!(lost[0].reason, LossReason::Expired);
        assert_eq!(
            (lost[0].unconfirmed_messages, lost[0].unconfirmed_bytes),
            (1, 10)
        );
        assert!(store.take_lost(Instant::from_secs(7)).is_empty());
        let s = session(2, 10);
        let t = token(&s);
        store.park(s, Instant::from_secs(10));
        assert!(store.take(&t, "p", Instant::from_secs(14)).is_some());
    }

    #[test]
    fn bounds_evict_the_oldest_and_memory_is_accounted() {
        let size = session(0, 1000).memory();
        let mut store = MemoryStore::new(3, 2 * size + size / 2, Duration::from_secs(60));
        let sessions: alloc::vec::Vec<Session> = (1..=4).map(|n| session(n, 1000)).collect();
        let tokens: alloc::vec::Vec<SessionToken> = sessions.iter().map(token).collect();
        for (i, s) in sessions.into_iter().enumerate() {
            store.park(s, Instant::from_secs(i as u64));
        }
        // Two fit in memory: the newest two stay.
        assert_eq!(store.len(), 2);
        assert!(store.memory() <= 2 * size + size / 2);
        let now = Instant::from_secs(5);
        assert!(store.take(&tokens[0], "p", now).is_none());
        assert!(store.take(&tokens[1], "p", now).is_none());
        assert!(
            store.take(&tokens[3], "q", now).is_none(),
            "another principal"
        );
        assert!(
            store.take(&tokens[3], "p", now).is_some(),
            "still there for its owner"
        );
        assert!(store.take(&tokens[3], "p", now).is_none(), "single use");
        assert!(store.take(&tokens[2], "p", now).is_some());
        assert_eq!(store.memory(), 0);
        // The two evicted ones are reported; the taken ones are not.
        let lost: alloc::vec::Vec<(SessionToken, LossReason)> = store
            .take_lost(now)
            .into_iter()
            .map(|l| (l.token, l.reason))
            .collect();
        assert_eq!(
            lost,
            [
                (tokens[0], LossReason::Evicted),
                (tokens[1], LossReason::Evicted)
            ]
        );
        // One too large for the store is reported at once.
        let mut small = MemoryStore::new(3, 10, Duration::from_secs(60));
        let big = session(9, 1000);
        let t = token(&big);
        small.park(big, now);
        assert!(small.is_empty());
        assert_eq!(small.take_lost(now)[0].token, t);
    }

    #[test]
    fn expiry_is_found_by_take_lost_alone() {
        let mut store = MemoryStore::new(10, 1 << 20, Duration::from_secs(5));
        store.park(session(1, 10), Instant::from_secs(1));
        assert!(store.take_lost(Instant::from_secs(5)).is_empty());
        assert_eq!(store.take_lost(Instant::from_secs(6)).len(), 1);
        assert!(store.is_empty());
    }

    #[test]
    fn the_previous_token_finds_a_resumed_session_until_confirmed() {
        let mut store = MemoryStore::default();
        let mut s = session(1, 10);
        let old = token(&s);
        let new = SessionToken::parse("ff000000000000000000000000000000").unwrap();
        s.set_token(new);
        s.set_previous_token(Some(old));
        store.park(s, Instant::from_secs(1));
        assert!(store.take(&old, "p", Instant::from_secs(2)).is_some());
        assert!(
            store.take(&new, "p", Instant::from_secs(2)).is_none(),
            "taken once"
        );
    }
}
