//! Scenario generation: from one seed, the configuration of every party, the links' character
//! and a script of application traffic and faults on a millisecond grid.

use core::fmt;
use core::time::Duration;

use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};
use tether::reconnect::{Action, Backoff, Jitter, Overflow, ReconnectConfig, SessionConfig};
use tether::{CloseCode, Config, Heartbeat, Instant};

/// The scenario families; every one mixes traffic both ways with its own kind of trouble.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Traffic both ways, pings, the odd fault.
    Chatty,
    /// Resets and stalls (both directions or one).
    Flaky,
    /// Black holes: both directions, or one (a half-open connection).
    HalfOpen,
    /// The server restarts (a crash that resets, or a reboot that goes silent) and sheds load.
    Restarts,
    /// Applications that stop reading: receive windows fill, queues and watermarks hold.
    SlowReader,
    /// Closes from both ends with every sendable code, and sessions the user stops.
    Closes,
    /// Long idle periods, with an idle timeout.
    Idle,
}

pub const KINDS: [Kind; 7] = [
    Kind::Chatty,
    Kind::Flaky,
    Kind::HalfOpen,
    Kind::Restarts,
    Kind::SlowReader,
    Kind::Closes,
    Kind::Idle,
];

/// One direction of a link, or both.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    Both,
    ClientToServer,
    ServerToClient,
}

/// A scripted step. `client` indexes the client; link faults hit its current transport.
#[derive(Clone, Debug)]
pub enum Op {
    ClientSend {
        client: usize,
        len: usize,
        binary: bool,
    },
    ServerSend {
        client: usize,
        len: usize,
        binary: bool,
    },
    ClientPing {
        client: usize,
    },
    ServerPing {
        client: usize,
    },
    /// The client's application closes the current connection (the session goes on, or not,
    /// as the policy says for the code).
    ClientClose {
        client: usize,
        code: u16,
    },
    ServerClose {
        client: usize,
        code: u16,
    },
    /// The user stops the session (the supervisor's close).
    ClientStop {
        client: usize,
        code: u16,
    },
    Reset {
        client: usize,
    },
    BlackHole {
        client: usize,
        dir: Dir,
    },
    Stall {
        client: usize,
        dir: Dir,
        ms: u64,
    },
    ServerRestart {
        crash: bool,
        down_ms: u64,
    },
    ServerOverload {
        ms: u64,
        status: u16,
        retry_after: u64,
    },
    ClientPause {
        client: usize,
        ms: u64,
    },
    ServerPause {
        client: usize,
        ms: u64,
    },
}

impl Op {
    pub fn is_fault(&self) -> bool {
        matches!(
            self,
            Op::Reset { .. }
                | Op::BlackHole { .. }
                | Op::Stall { .. }
                | Op::ServerRestart { .. }
                | Op::ServerOverload { .. }
                | Op::ClientPause { .. }
                | Op::ServerPause { .. }
        )
    }
}

/// A link's character, drawn once per scenario (each transport gets the same).
#[derive(Clone, Debug)]
pub struct LinkParams {
    pub latency: Duration,
    pub jitter: Duration,
    /// Bytes per second.
    pub bandwidth: u64,
    /// Receive window: bytes in flight plus bytes arrived and not yet read.
    pub window: usize,
    /// The most one write hands the link.
    pub mss: usize,
}

#[derive(Clone, Debug)]
pub struct Scenario {
    pub seed: u64,
    pub kind: Kind,
    pub clients: usize,
    pub config: Config,
    pub reconnect: ReconnectConfig,
    pub session: SessionConfig,
    pub link: LinkParams,
    /// The script stops here; then every session is closed and the world runs dry.
    pub horizon: Instant,
    pub script: Vec<(Instant, Op)>,
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.config;
        writeln!(
            f,
            "scenario seed={} kind={:?} clients={} horizon={:?}",
            self.seed,
            self.kind,
            self.clients,
            self.horizon.as_duration()
        )?;
        writeln!(
            f,
            "  config: heartbeat={:?} idle={:?} close_timeout={:?} handshake_timeout={:?} \
             watermarks={}/{} read_buffer={}",
            c.heartbeat,
            c.idle_timeout,
            c.close_timeout,
            c.handshake_timeout,
            c.high_watermark,
            c.low_watermark,
            c.read_buffer_size
        )?;
        writeln!(f, "  reconnect: {:?}", self.reconnect)?;
        writeln!(
            f,
            "  session: max_queued={}msgs/{}B overflow={:?} on_open={} connect_timeout={:?}",
            self.session.max_queued_messages,
            self.session.max_queued_bytes,
            self.session.overflow,
            self.session.on_open.len(),
            self.session.connect_timeout
        )?;
        writeln!(f, "  link: {:?}", self.link)?;
        for (t, op) in &self.script {
            writeln!(f, "  {:>9}ms {op:?}", t.as_nanos() / 1_000_000)?;
        }
        Ok(())
    }
}

/// Every code an application may send: 1000-1003, 1007-1014, 3000-4999.
pub fn sendable_code(r: &mut ChaCha8Rng) -> u16 {
    const NAMED: [u16; 12] = [
        1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014,
    ];
    let code = if r.next_u32().is_multiple_of(3) {
        3000 + (r.next_u32() % 2000) as u16
    } else {
        NAMED[(r.next_u32() as usize) % NAMED.len()]
    };
    debug_assert!(CloseCode(code).is_sendable());
    code
}

fn between(r: &mut ChaCha8Rng, lo: u64, hi: u64) -> u64 {
    lo + r.next_u64() % (hi - lo + 1)
}

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

fn chance(r: &mut ChaCha8Rng, percent: u32) -> bool {
    r.next_u32() % 100 < percent
}

fn message_len(r: &mut ChaCha8Rng, big: bool) -> usize {
    let roll = r.next_u32() % 100;
    let (lo, hi) = match roll {
        _ if big && roll < 30 => (16 << 10, 96 << 10),
        0..=59 => (0, 200),
        60..=91 => (200, 4 << 10),
        _ => (4 << 10, 64 << 10),
    };
    between(r, lo, hi) as usize
}

pub fn generate(seed: u64) -> Scenario {
    let mut r = ChaCha8Rng::seed_from_u64(seed ^ 0x005e_ed0f_7e7e);
    let kind = KINDS[(r.next_u32() as usize) % KINDS.len()];
    let clients = between(&mut r, 1, 3) as usize;

    let mut config = Config::default();
    // The pong timeout stays well above the worst round trip of a healthy link (see
    // `LinkParams` below), so a peer that answers is never declared dead.
    let interval = ms(between(&mut r, 2_000, 12_000));
    let timeout = ms(between(&mut r, 2_000, 6_000));
    config.heartbeat = Some(Heartbeat::new(interval, timeout));
    config.idle_timeout =
        (kind == Kind::Idle && chance(&mut r, 70)).then(|| ms(between(&mut r, 3_000, 30_000)));
    config.close_timeout = ms(between(&mut r, 1_000, 5_000));
    config.handshake_timeout = ms(between(&mut r, 1_000, 5_000));
    config.high_watermark = between(&mut r, 8 << 10, 64 << 10) as usize;
    config.low_watermark = config.high_watermark / 4;
    config.read_buffer_size = between(&mut r, 1 << 10, 16 << 10) as usize;

    let mut reconnect = ReconnectConfig::default();
    let mut backoff = Backoff::default();
    backoff.initial = ms(between(&mut r, 50, 1_000));
    backoff.multiplier = [1.0, 1.5, 2.0, 3.0][(r.next_u32() % 4) as usize];
    backoff.max = ms(between(&mut r, 1_000, 8_000));
    backoff.jitter = [
        Jitter::None,
        Jitter::Full,
        Jitter::Equal,
        Jitter::Decorrelated,
    ][(r.next_u32() % 4) as usize];
    backoff.first_delay_max = chance(&mut r, 50).then(|| ms(between(&mut r, 100, 3_000)));
    reconnect.backoff = backoff;
    reconnect.max_attempts = chance(&mut r, 20).then(|| between(&mut r, 3, 10) as u32);
    reconnect.stable_period = ms(between(&mut r, 2_000, 20_000));
    reconnect.application_codes = if chance(&mut r, 50) {
        Action::Retry
    } else {
        Action::GiveUp
    };

    let mut session = SessionConfig::default();
    session.max_queued_messages = between(&mut r, 8, 64) as usize;
    session.max_queued_bytes = between(&mut r, 16 << 10, 256 << 10) as usize;
    session.overflow = if chance(&mut r, 20) {
        Overflow::DropOldest
    } else {
        Overflow::RejectNew
    };
    session.connect_timeout = ms(between(&mut r, 1_000, 5_000));
    // On-open messages are filled in by the world (they carry the client's tag).
    let on_open = between(&mut r, 0, 2) as usize;
    session.on_open = (0..on_open).map(|_| tether::Message::text("")).collect();

    // Worst healthy round trip: 2 * (80 + 30 ms + (64 KiB window + 64 KiB watermark + 96 KiB
    // message) / 1 MiB/s) < 0.7 s, well under the 2 s shortest pong timeout.
    let link = LinkParams {
        latency: ms(between(&mut r, 1, 80)),
        jitter: ms(between(&mut r, 0, 30)),
        bandwidth: between(&mut r, 1 << 20, 20 << 20),
        window: between(&mut r, 8 << 10, 64 << 10) as usize,
        mss: between(&mut r, 512, 16 << 10) as usize,
    };

    let horizon_ms = between(&mut r, 30_000, 120_000);
    let mut script = Vec::new();
    let mut t = between(&mut r, 0, 500);
    while t < horizon_ms {
        let client = (r.next_u32() as usize) % clients;
        let op = pick(&mut r, kind, client);
        script.push((Instant::from_millis(t), op));
        let gap = if kind == Kind::Idle && chance(&mut r, 15) {
            between(&mut r, 10_000, 40_000)
        } else {
            between(&mut r, 10, 1_500)
        };
        t += gap;
    }
    Scenario {
        seed,
        kind,
        clients,
        config,
        reconnect,
        session,
        link,
        horizon: Instant::from_millis(horizon_ms),
        script,
    }
}

fn dir(r: &mut ChaCha8Rng) -> Dir {
    [Dir::Both, Dir::ClientToServer, Dir::ServerToClient][(r.next_u32() % 3) as usize]
}

fn pick(r: &mut ChaCha8Rng, kind: Kind, client: usize) -> Op {
    // A fault with this probability (percent), else traffic.
    let fault_pct = match kind {
        Kind::Chatty => 3,
        Kind::Idle => 8,
        Kind::Closes => 0,
        _ => 12,
    };
    if chance(r, fault_pct) {
        return match kind {
            Kind::Flaky | Kind::Chatty | Kind::Idle => match r.next_u32() % 3 {
                0 => Op::Reset { client },
                _ => Op::Stall {
                    client,
                    dir: dir(r),
                    ms: between(r, 100, 15_000),
                },
            },
            Kind::HalfOpen => Op::BlackHole {
                client,
                dir: dir(r),
            },
            Kind::Restarts => {
                if chance(r, 70) {
                    Op::ServerRestart {
                        crash: chance(r, 50),
                        down_ms: between(r, 0, 20_000),
                    }
                } else {
                    Op::ServerOverload {
                        ms: between(r, 500, 10_000),
                        status: [503, 503, 429, 500, 401][(r.next_u32() % 5) as usize],
                        retry_after: between(r, 0, 4),
                    }
                }
            }
            Kind::SlowReader | Kind::Closes => {
                let ms = between(r, 500, 20_000);
                if chance(r, 50) {
                    Op::ClientPause { client, ms }
                } else {
                    Op::ServerPause { client, ms }
                }
            }
        };
    }
    let big = kind == Kind::SlowReader;
    let close_pct = match kind {
        Kind::Closes => 12,
        _ => 1,
    };
    if chance(r, close_pct) {
        let code = sendable_code(r);
        return match r.next_u32() % 5 {
            0 | 1 => Op::ServerClose { client, code },
            2 | 3 => Op::ClientClose { client, code },
            _ => Op::ClientStop { client, code },
        };
    }
    match r.next_u32() % 100 {
        0..=44 => Op::ClientSend {
            client,
            len: message_len(r, big),
            binary: chance(r, 40),
        },
        45..=89 => Op::ServerSend {
            client,
            len: message_len(r, big),
            binary: chance(r, 40),
        },
        90..=94 => Op::ClientPing { client },
        _ => Op::ServerPing { client },
    }
}
