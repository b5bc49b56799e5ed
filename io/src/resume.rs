//! Server side of resumable sessions (`tether-resume`, see [`tether::resume`]): which live
//! connection holds which session, and the [`SessionStore`] where ended connections park
//! theirs. The protocol is the core's; this only wires it to connections.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use tether::handshake::{Accept, AcceptError, Request};
use tether::resume::{LostSession, MemoryStore, ResumeParams, SessionStore, SessionToken};

use crate::shared::{Inner, Shared};

/// A server's sessions: those held by live connections, and a [`SessionStore`] for those of
/// ended ones. Share one between the connections of a server (a [`Server`](crate::Server)
/// makes one with a [`MemoryStore`] when [`Config::resume`](tether::Config::resume) is set and
/// [`ServerConfig::sessions`](crate::ServerConfig::sessions) is `None`).
///
/// A session is bound to the request's `Authorization` header (empty when there is none):
/// what the authentication hook accepted. A client that comes back while its old connection
/// still looks alive (a black hole the server has not noticed yet) takes the session over:
/// the old connection is aborted and its session handed to the new one.
pub struct SessionRegistry {
    inner: Mutex<Registry>,
}

struct Registry {
    store: Box<dyn SessionStore + Send>,
    /// Tokens (current and previous) of sessions held by open connections.
    live: HashMap<SessionToken, Weak<Shared>>,
    /// The connections' clock, once one has been seen.
    clock: Option<fn() -> tether::Instant>,
}

impl std::fmt::Debug for SessionRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionRegistry")
            .field("live", &self.lock().live.len())
            .finish_non_exhaustive()
    }
}

impl Default for SessionRegistry {
    /// An in-memory store ([`MemoryStore::default`]).
    fn default() -> Self {
        SessionRegistry::new(MemoryStore::default())
    }
}

impl SessionRegistry {
    /// Parks ended connections' sessions in `store`.
    pub fn new(store: impl SessionStore + Send + 'static) -> Self {
        SessionRegistry {
            inner: Mutex::new(Registry {
                store: Box::new(store),
                live: HashMap::new(),
                clock: None,
            }),
        }
    }

    /// The sessions the store gave up on since the last call (expired, or evicted for room):
    /// what the server had sent on each and its client had not confirmed is lost. Call it from
    /// time to time (a session expires only as far as this or the next accept finds it) and
    /// report or log what it returns; a [`MemoryStore`] keeps at most its session bound of
    /// reports waiting.
    pub fn take_lost(&self) -> Vec<LostSession> {
        let mut reg = self.lock();
        match reg.clock {
            Some(now) => reg.store.take_lost(now()),
            None => Vec::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Registry> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Accepts `request` on `inner` (the new connection, locked by the caller), resuming the
    /// offered session: taken over from a live connection, or out of the store.
    pub(crate) fn accept(
        &self,
        shared: &Arc<Shared>,
        inner: &mut Inner,
        request: &Request,
        accept: Accept,
    ) -> Result<(), AcceptError> {
        let now = (inner.now)();
        let principal = request.header("authorization").unwrap_or_default();
        let offered = request
            .extensions()
            .iter()
            .find_map(|e| ResumeParams::parse(e))
            .and_then(Result::ok)
            .and_then(|p| p.session);
        let mut reg = self.lock();
        reg.clock = Some(inner.now);
        if let Some(old) = offered
            .and_then(|token| reg.live.remove(&token))
            .and_then(|w| w.upgrade())
        {
            // Lock order: the registry, then a connection (as `connection_ended`).
            let mut old = old.lock();
            old.conn.abort();
            if let Some(session) = old.conn.take_session() {
                reg.forget(&session);
                reg.store.park(session, now);
            }
            if let Some(w) = old.driver_waker.clone() {
                w.wake();
            }
        }
        let Registry { store, .. } = &mut *reg;
        inner
            .conn
            .accept_session(now, accept, store.as_mut(), principal)?;
        if let Some(session) = inner.conn.session() {
            let weak = Arc::downgrade(shared);
            for token in [session.token(), session.previous_token()]
                .into_iter()
                .flatten()
            {
                reg.live.insert(token, weak.clone());
            }
        }
        if reg.live.len() > 1024 && reg.live.len().is_power_of_two() {
            reg.live.retain(|_, w| w.strong_count() > 0);
        }
        Ok(())
    }

    /// A connection's transport is closed: its session, unless the close was clean, is parked.
    pub(crate) fn connection_ended(&self, shared: &Shared) {
        let mut reg = self.lock();
        let mut inner = shared.lock();
        reg.clock = Some(inner.now);
        let now = (inner.now)();
        if let Some(session) = inner.conn.session() {
            let tokens = [session.token(), session.previous_token()];
            for token in tokens.into_iter().flatten() {
                reg.live.remove(&token);
            }
        }
        if let Some(session) = inner.conn.take_session() {
            drop(inner);
            reg.store.park(session, now);
        }
    }
}

impl Registry {
    fn forget(&mut self, session: &tether::resume::Session) {
        for token in [session.token(), session.previous_token()]
            .into_iter()
            .flatten()
        {
            self.live.remove(&token);
        }
    }
}
