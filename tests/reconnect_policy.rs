//! The reconnect policy on a virtual clock with seeded generators: the delay formulas, the
//! schedule's resets and limits, the classification table row by row, and a thundering herd.

use core::time::Duration;

use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};
use tether::reconnect::{
    Action, Backoff, Decision, Disconnect, GiveUpReason, Jitter, ReconnectConfig, ReconnectPolicy,
    TRY_AGAIN_LATER_DELAY, parse_retry_after,
};
use tether::{CloseCode, Initiator, Instant};

const MS: Duration = Duration::from_millis(1);
const SEC: Duration = Duration::from_secs(1);

fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

fn config(jitter: Jitter, first_delay_max: Option<Duration>) -> ReconnectConfig {
    let mut c = ReconnectConfig::default();
    c.backoff.jitter = jitter;
    c.backoff.first_delay_max = first_delay_max;
    c
}

#[track_caller]
fn retry(d: Decision) -> (Duration, u32) {
    match d {
        Decision::Retry { after, attempt } => (after, attempt),
        other => panic!("expected a retry, got {other:?}"),
    }
}

#[track_caller]
fn give_up(d: Decision) -> GiveUpReason {
    match d {
        Decision::GiveUp { reason } => reason,
        other => panic!("expected to give up, got {other:?}"),
    }
}

/// The delays of `n` connect failures in a row, starting at `t = 0`, with no connection between.
fn failing_schedule(cfg: &ReconnectConfig, seed: u64, n: usize) -> Vec<Duration> {
    let mut p = ReconnectPolicy::new(cfg.clone());
    let mut r = rng(seed);
    let mut now = Instant::ZERO;
    (1..=n)
        .map(|i| {
            let (after, attempt) = retry(p.disconnected(now, Disconnect::ConnectFailed, &mut r));
            assert_eq!(attempt as usize, i);
            now += after;
            after
        })
        .collect()
}

/// `min(cap, base × mult^(n-1))`, the documented ceiling, computed independently.
fn ceiling(base: Duration, mult: f64, cap: Duration, n: u32) -> Duration {
    base.mul_f64(mult.powi(n as i32 - 1)).min(cap)
}

// ---------------------------------------------------------------------------------------------
// Defaults and delay formulas

#[test]
fn defaults_are_as_documented() {
    let c = ReconnectConfig::default();
    assert_eq!(c.backoff.initial, 500 * MS);
    assert_eq!(c.backoff.multiplier, 2.0);
    assert_eq!(c.backoff.max, 30 * SEC);
    assert_eq!(c.backoff.jitter, Jitter::Full);
    assert_eq!(c.backoff.first_delay_max, Some(5 * SEC));
    assert_eq!(c.max_attempts, None);
    assert_eq!(c.stable_period, 10 * SEC);
    assert_eq!(c.application_codes, Action::GiveUp);
    assert_eq!(TRY_AGAIN_LATER_DELAY, 5 * SEC);
    assert_eq!(Backoff::default(), c.backoff);
    assert_eq!(ReconnectPolicy::default().attempt(), 0);
}

#[test]
fn no_jitter_is_exactly_initial_times_multiplier_to_the_n_capped() {
    let cfg = config(Jitter::None, None);
    let expected: Vec<Duration> = [
        500, 1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000, 30_000,
    ]
    .into_iter()
    .map(|ms| ms * MS)
    .collect();
    assert_eq!(failing_schedule(&cfg, 1, expected.len()), expected);

    let mut cfg = config(Jitter::None, None);
    cfg.backoff.initial = 100 * MS;
    cfg.backoff.multiplier = 1.5;
    cfg.backoff.max = 2 * SEC;
    let got = failing_schedule(&cfg, 1, 12);
    for (n, d) in (1..).zip(&got) {
        let want = ceiling(100 * MS, 1.5, 2 * SEC, n);
        assert!(
            d.abs_diff(want) <= Duration::from_nanos(1),
            "retry {n}: {d:?} vs {want:?}"
        );
    }
    assert_eq!(got[11], 2 * SEC);
}

#[test]
fn no_jitter_does_not_depend_on_the_generator() {
    let cfg = config(Jitter::None, None);
    assert_eq!(failing_schedule(&cfg, 1, 10), failing_schedule(&cfg, 2, 10));
}

#[test]
fn full_jitter_stays_within_zero_and_the_ceiling() {
    let cfg = config(Jitter::Full, None);
    let b = &cfg.backoff;
    let mut top = [Duration::ZERO; 10];
    let mut sum = [0.0f64; 10];
    let seeds = 500;
    for seed in 0..seeds {
        for (i, d) in failing_schedule(&cfg, seed, 10).into_iter().enumerate() {
            let c = ceiling(b.initial, b.multiplier, b.max, i as u32 + 1);
            assert!(d <= c, "retry {}: {d:?} over {c:?}", i + 1);
            top[i] = top[i].max(d);
            sum[i] += d.as_secs_f64() / c.as_secs_f64();
        }
    }
    for i in 0..10 {
        let c = ceiling(b.initial, b.multiplier, b.max, i as u32 + 1);
        // The largest of 500 uniform draws lies within 2% of the top with probability 1 - 0.98^500.
        assert!(
            top[i] >= c.mul_f64(0.98),
            "retry {}: max {:?}",
            i + 1,
            top[i]
        );
        // Uniform on [0, 1]: mean 1/2, sd of the mean 0.29/sqrt(500) = 0.013; allow 5 sd.
        let mean = sum[i] / seeds as f64;
        assert!((mean - 0.5).abs() < 0.065, "retry {}: mean {mean}", i + 1);
    }
}

#[test]
fn equal_jitter_stays_in_the_upper_half() {
    let cfg = config(Jitter::Equal, None);
    let b = &cfg.backoff;
    let mut low_seen = [false; 8];
    for seed in 0..300 {
        for (i, d) in failing_schedule(&cfg, seed, 8).into_iter().enumerate() {
            let c = ceiling(b.initial, b.multiplier, b.max, i as u32 + 1);
            assert!(d >= c / 2 && d <= c, "retry {}: {d:?} vs {c:?}", i + 1);
            low_seen[i] |= d < c.mul_f64(0.55);
        }
    }
    assert!(
        low_seen.iter().all(|&s| s),
        "the lower end is reached: {low_seen:?}"
    );
}

#[test]
fn decorrelated_stays_between_base_and_three_times_the_previous_delay() {
    let cfg = config(Jitter::Decorrelated, None);
    let b = &cfg.backoff;
    let mut near_cap = false;
    for seed in 0..300 {
        let mut previous = b.initial;
        for d in failing_schedule(&cfg, seed, 15) {
            let high = (previous * 3).min(b.max);
            assert!(
                d >= b.initial && d <= high,
                "{d:?} outside [{:?}, {high:?}]",
                b.initial
            );
            near_cap |= d >= b.max.mul_f64(0.9);
            previous = d;
        }
    }
    assert!(near_cap, "the schedule grows to the cap");
}

#[test]
fn same_seed_same_schedule_and_different_seeds_differ() {
    for jitter in [Jitter::Full, Jitter::Equal, Jitter::Decorrelated] {
        let cfg = config(jitter, Some(5 * SEC));
        let run = |seed| {
            let mut p = ReconnectPolicy::new(cfg.clone());
            let mut r = rng(seed);
            let mut out =
                vec![retry(p.disconnected(Instant::ZERO, Disconnect::TransportLost, &mut r)).0];
            out.extend((0..10).map(|_| {
                retry(p.disconnected(Instant::ZERO, Disconnect::ConnectFailed, &mut r)).0
            }));
            out
        };
        assert_eq!(run(42), run(42), "{jitter:?}");
        assert_ne!(run(42), run(43), "{jitter:?}");
    }
}

#[test]
fn takes_a_generator_as_a_trait_object() {
    let mut r = rng(9);
    let dynamic: &mut dyn Rng = &mut r;
    let mut p = ReconnectPolicy::default();
    let (after, _) = retry(p.disconnected(Instant::ZERO, Disconnect::TransportLost, dynamic));
    assert!(after <= 5 * SEC);
}

// ---------------------------------------------------------------------------------------------
// RFC 6455 §7.2.3: the first reconnect after a lost connection is random

#[test]
fn first_delay_after_a_lost_connection_is_spread_over_zero_to_first_delay_max() {
    // Even with Jitter::None: the spread is the RFC's rule, not a jitter choice.
    for jitter in [
        Jitter::None,
        Jitter::Full,
        Jitter::Equal,
        Jitter::Decorrelated,
    ] {
        let cfg = config(jitter, Some(5 * SEC));
        let firsts: Vec<Duration> = (0..400)
            .map(|seed| {
                let mut p = ReconnectPolicy::new(cfg.clone());
                p.connected(Instant::ZERO);
                let (d, attempt) = retry(p.disconnected(
                    Instant::from_secs(1),
                    Disconnect::TransportLost,
                    &mut rng(seed),
                ));
                assert_eq!(attempt, 1);
                d
            })
            .collect();
        assert!(firsts.iter().all(|&d| d <= 5 * SEC), "{jitter:?}");
        // 400 uniform draws: each fifth of [0, 5 s] holds 80 on average (sd 8).
        for fifth in 0..5u32 {
            let n = firsts
                .iter()
                .filter(|d| d.as_secs() == u64::from(fifth))
                .count();
            assert!((40..=120).contains(&n), "{jitter:?}: {n} in second {fifth}");
        }
    }
}

#[test]
fn after_the_random_first_delay_the_schedule_doubles_from_first_delay_max() {
    let cfg = config(Jitter::None, Some(5 * SEC));
    let mut p = ReconnectPolicy::new(cfg);
    let mut r = rng(3);
    p.connected(Instant::ZERO);
    let (first, _) =
        retry(p.disconnected(Instant::from_secs(60), Disconnect::TransportLost, &mut r));
    assert!(first <= 5 * SEC);
    let rest: Vec<Duration> = (0..4)
        .map(|_| retry(p.disconnected(Instant::from_secs(60), Disconnect::ConnectFailed, &mut r)).0)
        .collect();
    assert_eq!(rest, [10 * SEC, 20 * SEC, 30 * SEC, 30 * SEC]);
}

#[test]
fn attempts_that_never_connected_start_from_initial() {
    let cfg = ReconnectConfig::default();
    for seed in 0..200 {
        let mut p = ReconnectPolicy::new(cfg.clone());
        let (d, attempt) =
            retry(p.disconnected(Instant::ZERO, Disconnect::ConnectFailed, &mut rng(seed)));
        assert_eq!(attempt, 1);
        assert!(d <= 500 * MS);
    }
}

#[test]
fn without_first_delay_max_a_lost_connection_follows_the_plain_schedule() {
    let cfg = config(Jitter::None, None);
    let mut p = ReconnectPolicy::new(cfg);
    p.connected(Instant::ZERO);
    let (d, _) = retry(p.disconnected(
        Instant::from_secs(60),
        Disconnect::TransportLost,
        &mut rng(0),
    ));
    assert_eq!(d, 500 * MS);
}

// ---------------------------------------------------------------------------------------------
// Stable period and attempt limits

/// Fails `n` times in a row from `now`, returning the time of the last retry.
fn fail_n(p: &mut ReconnectPolicy, r: &mut ChaCha8Rng, mut now: Instant, n: u32) -> Instant {
    for _ in 0..n {
        now += retry(p.disconnected(now, Disconnect::ConnectFailed, r)).0;
    }
    now
}

#[test]
fn a_connection_that_stays_up_for_the_stable_period_resets_the_count() {
    let mut p = ReconnectPolicy::new(config(Jitter::None, None));
    let mut r = rng(0);
    let t = fail_n(&mut p, &mut r, Instant::ZERO, 4);
    assert_eq!(p.attempt(), 4);
    p.connected(t);
    // Exactly the stable period counts as stable.
    let (d, attempt) = retry(p.disconnected(t + 10 * SEC, Disconnect::TransportLost, &mut r));
    assert_eq!((d, attempt), (500 * MS, 1));
    assert_eq!(p.attempt(), 1);
}

#[test]
fn a_shorter_connection_keeps_counting() {
    let mut p = ReconnectPolicy::new(config(Jitter::None, None));
    let mut r = rng(0);
    let t = fail_n(&mut p, &mut r, Instant::ZERO, 4);
    p.connected(t);
    let (d, attempt) = retry(p.disconnected(t + 10 * SEC - MS, Disconnect::TransportLost, &mut r));
    assert_eq!((d, attempt), (8 * SEC, 5));
}

#[test]
fn a_clock_that_steps_back_is_not_a_stable_connection() {
    let mut p = ReconnectPolicy::new(config(Jitter::None, None));
    let mut r = rng(0);
    let t = fail_n(&mut p, &mut r, Instant::from_secs(100), 3);
    p.connected(t);
    let (_, attempt) = retry(p.disconnected(Instant::ZERO, Disconnect::TransportLost, &mut r));
    assert_eq!(attempt, 4);
}

#[test]
fn a_stable_connection_brings_back_the_random_first_delay() {
    let mut p = ReconnectPolicy::new(config(Jitter::None, Some(5 * SEC)));
    let mut r = rng(11);
    let t = fail_n(&mut p, &mut r, Instant::ZERO, 6);
    p.connected(t);
    let (d, attempt) = retry(p.disconnected(t + 3600 * SEC, Disconnect::TransportLost, &mut r));
    assert_eq!(attempt, 1);
    assert!(d <= 5 * SEC);
}

#[test]
fn max_attempts_gives_up_with_a_reason_that_says_so() {
    let mut cfg = ReconnectConfig::default();
    cfg.max_attempts = Some(3);
    let mut p = ReconnectPolicy::new(cfg);
    let mut r = rng(5);
    fail_n(&mut p, &mut r, Instant::ZERO, 3);
    let reason = give_up(p.disconnected(Instant::ZERO, Disconnect::ConnectTimeout, &mut r));
    assert_eq!(
        reason,
        GiveUpReason::AttemptsExhausted {
            attempts: 3,
            last: Disconnect::ConnectTimeout
        }
    );
    assert_eq!(reason.disconnect(), &Disconnect::ConnectTimeout);
    assert!(
        reason.to_string().contains("after 3 reconnect attempts"),
        "{reason}"
    );
    // The policy starts afresh for whatever comes next.
    assert_eq!(p.attempt(), 0);
    assert_eq!(
        retry(p.disconnected(Instant::ZERO, Disconnect::ConnectFailed, &mut r)).1,
        1
    );
}

#[test]
fn max_attempts_counts_flapping_connections_as_failures() {
    let mut cfg = config(Jitter::None, None);
    cfg.max_attempts = Some(2);
    let mut p = ReconnectPolicy::new(cfg);
    let mut r = rng(0);
    let mut now = Instant::ZERO;
    for _ in 0..2 {
        p.connected(now);
        now += SEC;
        now += retry(p.disconnected(now, Disconnect::TransportLost, &mut r)).0;
    }
    p.connected(now);
    let reason = give_up(p.disconnected(now + SEC, Disconnect::TransportLost, &mut r));
    assert!(matches!(
        reason,
        GiveUpReason::AttemptsExhausted { attempts: 2, .. }
    ));
    assert_eq!(reason.close_code(), Some(CloseCode::ABNORMAL));
}

#[test]
fn zero_max_attempts_never_retries() {
    let mut cfg = ReconnectConfig::default();
    cfg.max_attempts = Some(0);
    let mut p = ReconnectPolicy::new(cfg);
    let reason = give_up(p.disconnected(Instant::ZERO, Disconnect::TransportLost, &mut rng(0)));
    assert!(matches!(
        reason,
        GiveUpReason::AttemptsExhausted { attempts: 0, .. }
    ));
}

#[test]
fn a_normal_end_is_a_stop_even_with_attempts_exhausted() {
    let mut cfg = ReconnectConfig::default();
    cfg.max_attempts = Some(0);
    let mut p = ReconnectPolicy::new(cfg);
    assert_eq!(
        p.disconnected(Instant::ZERO, Disconnect::UserClosed, &mut rng(0)),
        Decision::Stop
    );
}

// ---------------------------------------------------------------------------------------------
// Classification

/// What a decision looks like, for table rows.
#[derive(Debug, PartialEq)]
enum Kind {
    Retry,
    /// A retry no sooner than this.
    RetryAtLeast(Duration),
    Stop,
    GiveUp,
}

fn kind_of(cfg: &ReconnectConfig, why: Disconnect) -> Kind {
    // No jitter and no random first delay, so a floor shows as floor + 500 ms exactly.
    let mut cfg = cfg.clone();
    cfg.backoff.jitter = Jitter::None;
    cfg.backoff.first_delay_max = None;
    let mut p = ReconnectPolicy::new(cfg);
    match p.disconnected(Instant::ZERO, why, &mut rng(0)) {
        Decision::Retry { after, attempt: 1 } if after == 500 * MS => Kind::Retry,
        Decision::Retry { after, attempt: 1 } => Kind::RetryAtLeast(after - 500 * MS),
        Decision::Stop => Kind::Stop,
        Decision::GiveUp {
            reason: GiveUpReason::NotRetryable(d),
        } => {
            assert_eq!(d, why, "the decision carries the cause");
            Kind::GiveUp
        }
        other => panic!("{why:?}: {other:?}"),
    }
}

fn closed(code: u16, initiator: Initiator) -> Disconnect {
    Disconnect::Closed {
        code: CloseCode(code),
        initiator,
    }
}

fn rejected(status: u16, retry_after: Option<Duration>) -> Disconnect {
    Disconnect::HandshakeRejected {
        status,
        retry_after,
    }
}

#[test]
fn connection_attempt_failures_are_retried_and_the_users_close_stops() {
    let cfg = ReconnectConfig::default();
    for why in [
        Disconnect::ConnectFailed,
        Disconnect::ConnectTimeout,
        Disconnect::HandshakeTimeout,
        Disconnect::TransportLost,
    ] {
        assert_eq!(kind_of(&cfg, why), Kind::Retry, "{why:?}");
    }
    assert_eq!(kind_of(&cfg, Disconnect::UserClosed), Kind::Stop);
}

#[test]
fn close_code_table_row_by_row() {
    use Kind::*;
    let rows: &[(u16, Kind)] = &[
        (1000, Stop),
        (1001, Retry),
        (1002, GiveUp),
        (1003, GiveUp),
        (1005, Retry),
        (1006, Retry),
        (1007, GiveUp),
        (1008, GiveUp),
        (1009, GiveUp),
        (1010, GiveUp),
        (1011, Retry),
        (1012, Retry),
        (1013, RetryAtLeast(5 * SEC)),
        (1014, Retry),
        (1015, GiveUp),
        (3000, GiveUp),
        (3003, GiveUp),
        (3008, Retry),
        (3001, GiveUp),
        (3999, GiveUp),
        (4000, GiveUp),
        (4321, GiveUp),
        (4999, GiveUp),
        // Not valid on the wire: only a caller can report them; treated as an unexplained loss.
        (0, Retry),
        (1004, Retry),
        (1016, Retry),
        (2500, Retry),
        (5000, Retry),
    ];
    let cfg = ReconnectConfig::default();
    for (code, want) in rows {
        for initiator in [Initiator::Remote, Initiator::Local] {
            let got = kind_of(&cfg, closed(*code, initiator));
            assert_eq!(&got, want, "close {code} by {initiator:?}");
        }
        let got = kind_of(
            &cfg,
            Disconnect::ProtocolFailure {
                code: CloseCode(*code),
            },
        );
        assert_eq!(&got, want, "failed locally with {code}");
    }
}

#[test]
fn give_up_carries_the_close_code() {
    let mut p = ReconnectPolicy::default();
    let reason =
        give_up(p.disconnected(Instant::ZERO, closed(1008, Initiator::Remote), &mut rng(0)));
    assert_eq!(reason.close_code(), Some(CloseCode::POLICY_VIOLATION));
    assert_eq!(reason.status(), None);
    assert_eq!(
        reason.to_string(),
        "not reconnecting: the peer closed the connection with code 1008"
    );
}

#[test]
fn application_codes_follow_their_switch() {
    let mut cfg = ReconnectConfig::default();
    cfg.application_codes = Action::Retry;
    for code in [3001, 3999, 4000, 4999] {
        assert_eq!(
            kind_of(&cfg, closed(code, Initiator::Remote)),
            Kind::Retry,
            "{code}"
        );
    }
    // Registered meanings are not application-defined.
    assert_eq!(kind_of(&cfg, closed(3000, Initiator::Remote)), Kind::GiveUp);
    assert_eq!(kind_of(&cfg, closed(3003, Initiator::Remote)), Kind::GiveUp);
    cfg.application_codes = Action::Stop;
    assert_eq!(kind_of(&cfg, closed(4100, Initiator::Remote)), Kind::Stop);
}

#[test]
fn handshake_status_table_by_class() {
    let cfg = ReconnectConfig::default();
    for status in 100..=599u16 {
        let want = match status {
            501 | 505 => Kind::GiveUp,
            408 | 425 | 429 | 500..=599 => Kind::Retry,
            _ => Kind::GiveUp,
        };
        assert_eq!(kind_of(&cfg, rejected(status, None)), want, "HTTP {status}");
    }
    for status in [401, 403, 404, 426, 400, 301, 200] {
        assert_eq!(
            kind_of(&cfg, rejected(status, None)),
            Kind::GiveUp,
            "HTTP {status}"
        );
    }
    for status in [500, 502, 503, 504, 408, 429] {
        assert_eq!(
            kind_of(&cfg, rejected(status, None)),
            Kind::Retry,
            "HTTP {status}"
        );
    }
}

#[test]
fn an_invalid_handshake_response_gives_up_and_says_so() {
    let cfg = ReconnectConfig::default();
    assert_eq!(kind_of(&cfg, Disconnect::InvalidResponse), Kind::GiveUp);
    let mut p = ReconnectPolicy::default();
    let reason = give_up(p.disconnected(Instant::ZERO, Disconnect::InvalidResponse, &mut rng(0)));
    assert_eq!(reason.status(), None);
    assert!(!Disconnect::InvalidResponse.was_open());
    assert!(
        reason.to_string().contains("not a valid upgrade"),
        "{reason}"
    );
}

fn ended(cause: tether::CloseCause, code: u16, initiator: Initiator) -> tether::Closed {
    tether::Closed {
        code: CloseCode(code),
        reason: String::new(),
        initiator,
        clean: false,
        cause,
    }
}

#[test]
fn a_connections_terminal_event_reads_as_a_disconnect() {
    use tether::CloseCause as C;
    use tether::handshake::HandshakeError as H;
    let from = |cause, code, initiator| Disconnect::from_closed(&ended(cause, code, initiator));
    assert_eq!(
        from(C::Normal, 1000, Initiator::Remote),
        closed(1000, Initiator::Remote)
    );
    assert_eq!(
        from(C::IdleTimeout, 1001, Initiator::Local),
        closed(1001, Initiator::Local)
    );
    assert_eq!(
        from(
            C::Protocol(tether::ProtocolError::MaskedFrame),
            1002,
            Initiator::Local
        ),
        Disconnect::ProtocolFailure {
            code: CloseCode::PROTOCOL_ERROR
        }
    );
    for cause in [C::TransportLost, C::CloseTimeout, C::HeartbeatTimeout] {
        assert_eq!(
            from(cause, 1006, Initiator::Remote),
            Disconnect::TransportLost
        );
    }
    assert_eq!(
        from(C::HandshakeTimeout, 1006, Initiator::Local),
        Disconnect::HandshakeTimeout
    );
    assert_eq!(
        from(C::Aborted, 1006, Initiator::Local),
        Disconnect::UserClosed
    );
    let failed = |err| from(C::HandshakeFailed(err), 1006, Initiator::Remote);
    assert_eq!(
        failed(H::Redirect {
            status: 301,
            location: None
        }),
        rejected(301, None)
    );
    assert_eq!(failed(H::Timeout), Disconnect::HandshakeTimeout);
    assert_eq!(failed(H::UnexpectedEof), Disconnect::TransportLost);
    assert_eq!(failed(H::MissingAccept), Disconnect::InvalidResponse);
    assert_eq!(
        failed(H::InvalidAccept("nope".into())),
        Disconnect::InvalidResponse
    );
}

#[test]
fn the_close_initiator_is_the_connections() {
    // The policy and the connection's terminal event share one `Initiator`.
    let end = tether::Closed {
        code: CloseCode::GOING_AWAY,
        reason: String::new(),
        initiator: Initiator::Remote,
        clean: true,
        cause: tether::CloseCause::Normal,
    };
    let why = closed(end.code.0, end.initiator);
    assert_eq!(
        why.to_string(),
        "the peer closed the connection with code 1001"
    );
    let local = closed(1001, Initiator::Local);
    assert_eq!(local.to_string(), "closed the connection with code 1001");
}

#[test]
fn give_up_carries_the_status() {
    let mut p = ReconnectPolicy::default();
    let reason = give_up(p.disconnected(Instant::ZERO, rejected(401, None), &mut rng(0)));
    assert_eq!(reason.status(), Some(401));
    assert_eq!(reason.close_code(), None);
    assert!(reason.to_string().contains("HTTP 401"), "{reason}");
}

#[test]
fn retry_after_is_a_floor_under_the_backoff() {
    let cfg = ReconnectConfig::default();
    for status in [503, 429, 408] {
        let why = rejected(status, Some(120 * SEC));
        assert_eq!(
            kind_of(&cfg, why),
            Kind::RetryAtLeast(120 * SEC),
            "HTTP {status}"
        );
        // With the default full jitter, 120 s plus a draw from [0, 500 ms].
        for seed in 0..50 {
            let mut p = ReconnectPolicy::new(cfg.clone());
            let (d, _) = retry(p.disconnected(Instant::ZERO, why, &mut rng(seed)));
            assert!(d >= 120 * SEC && d <= 120 * SEC + 500 * MS, "{d:?}");
        }
    }
    // A Retry-After on a status that gives up changes nothing.
    assert_eq!(kind_of(&cfg, rejected(401, Some(SEC))), Kind::GiveUp);
    // The value comes from the header through the parser.
    let why = rejected(503, parse_retry_after(" 30 "));
    assert_eq!(kind_of(&cfg, why), Kind::RetryAtLeast(30 * SEC));
}

#[test]
fn try_again_later_waits_at_least_its_floor_and_still_spreads() {
    let cfg = ReconnectConfig::default();
    let delays: Vec<Duration> = (0..200)
        .map(|seed| {
            let mut p = ReconnectPolicy::new(cfg.clone());
            p.connected(Instant::ZERO);
            let why = closed(1013, Initiator::Remote);
            retry(p.disconnected(Instant::from_secs(1), why, &mut rng(seed))).0
        })
        .collect();
    assert!(delays.iter().all(|&d| d >= 5 * SEC && d <= 10 * SEC));
    assert!(delays.iter().any(|&d| d < 6 * SEC) && delays.iter().any(|&d| d > 9 * SEC));
}

#[test]
fn overrides_take_precedence_and_can_be_cleared() {
    let mut cfg = ReconnectConfig::default();
    cfg.set_close_code_action(CloseCode::NORMAL, Action::Retry)
        .set_close_code_action(CloseCode(4001), Action::RetryAfterAtLeast(60 * SEC))
        .set_close_code_action(CloseCode::ABNORMAL, Action::GiveUp)
        .set_status_action(401, Action::Retry)
        .set_status_action(503, Action::Stop);
    assert_eq!(kind_of(&cfg, closed(1000, Initiator::Remote)), Kind::Retry);
    assert_eq!(
        kind_of(&cfg, closed(4001, Initiator::Remote)),
        Kind::RetryAtLeast(60 * SEC)
    );
    // TransportLost is a 1006 and follows its row.
    assert_eq!(kind_of(&cfg, Disconnect::TransportLost), Kind::GiveUp);
    assert_eq!(
        kind_of(&cfg, rejected(401, Some(7 * SEC))),
        Kind::RetryAtLeast(7 * SEC)
    );
    assert_eq!(kind_of(&cfg, rejected(503, None)), Kind::Stop);
    // The user's own close is not a code: it always stops.
    assert_eq!(kind_of(&cfg, Disconnect::UserClosed), Kind::Stop);

    cfg.clear_close_code_action(CloseCode::NORMAL)
        .clear_status_action(503);
    assert_eq!(kind_of(&cfg, closed(1000, Initiator::Remote)), Kind::Stop);
    assert_eq!(kind_of(&cfg, rejected(503, None)), Kind::Retry);
    assert_eq!(
        cfg.close_code_action(CloseCode(4001)),
        Action::RetryAfterAtLeast(60 * SEC)
    );
    assert_eq!(cfg.status_action(401), Action::Retry);
}

#[test]
fn a_floor_larger_than_retry_after_wins_and_the_other_way_round() {
    let mut cfg = ReconnectConfig::default();
    cfg.set_status_action(503, Action::RetryAfterAtLeast(20 * SEC));
    assert_eq!(
        kind_of(&cfg, rejected(503, Some(5 * SEC))),
        Kind::RetryAtLeast(20 * SEC)
    );
    assert_eq!(
        kind_of(&cfg, rejected(503, Some(50 * SEC))),
        Kind::RetryAtLeast(50 * SEC)
    );
}

#[test]
fn the_caller_may_classify_an_end_itself() {
    let mut p = ReconnectPolicy::default();
    let why = closed(4000, Initiator::Remote);
    let d = p.disconnected_with(Instant::ZERO, why, Action::Retry, &mut rng(0));
    assert_eq!(retry(d).1, 1);
    let d = p.disconnected_with(
        Instant::ZERO,
        Disconnect::ConnectFailed,
        Action::GiveUp,
        &mut rng(0),
    );
    assert_eq!(
        give_up(d),
        GiveUpReason::NotRetryable(Disconnect::ConnectFailed)
    );
}

// ---------------------------------------------------------------------------------------------
// Thundering herd

const CLIENTS: usize = 1_000;
/// The server is down from t = 0 for this long; every attempt before then fails at once.
const DOWN: Duration = Duration::from_secs(60);

/// Simulates every client on a virtual clock and counts attempts per one-second window.
fn herd(cfg: &ReconnectConfig) -> Vec<u32> {
    let mut per_second = vec![0u32; 200];
    for client in 0..CLIENTS {
        let mut p = ReconnectPolicy::new(cfg.clone());
        let mut r = rng(client as u64);
        // Every client had been connected long enough for its loss to start a fresh schedule.
        p.connected(Instant::ZERO);
        let lost = Instant::ZERO + 3600 * SEC;
        let mut now = lost;
        let mut why = Disconnect::TransportLost;
        loop {
            let (after, _) = retry(p.disconnected(now, why, &mut r));
            now += after;
            per_second[(now - lost).as_secs() as usize] += 1;
            if now - lost >= DOWN {
                p.connected(now);
                break;
            }
            why = Disconnect::ConnectFailed;
        }
    }
    per_second
}

/// Per client, the expected number of attempts in each one-second window after the loss, computed
/// from the schedule the docs promise (not from the implementation): attempt 1 is uniform on
/// `[0, D]`; attempt k ≥ 2 follows attempt k-1 by a uniform gap on `[0, min(cap, D × m^(k-1))]`;
/// a client stops after its first attempt at or after `DOWN`. Densities are carried on a 1 ms
/// grid and convolved with each gap's uniform distribution by a running sum.
fn expected_attempts_per_window(b: &Backoff) -> Vec<f64> {
    const STEP_MS: usize = 1;
    let first = b.first_delay_max.unwrap().as_millis() as usize / STEP_MS;
    let cap = b.max.as_millis() as usize / STEP_MS;
    let down = DOWN.as_millis() as usize / STEP_MS;
    let len = down + cap + 1;
    let mut per_window = vec![0.0; len * STEP_MS / 1000 + 1];
    let mut mass = vec![0.0; len];
    mass[..first].fill(1.0 / first as f64);
    for k in 1u32.. {
        for (i, m) in mass.iter().enumerate() {
            per_window[i * STEP_MS / 1000] += m;
        }
        // Only the clients still failing (attempt before DOWN) make attempt k + 1.
        let still_down: f64 = mass[..down].iter().sum();
        if still_down < 1e-12 {
            break;
        }
        let width = ((first as f64) * b.multiplier.powi(k as i32)).min(cap as f64) as usize;
        let mut next = vec![0.0; len];
        let mut window_sum = 0.0;
        for i in 0..len {
            if i < down {
                window_sum += mass[i];
            }
            if i >= width && i - width < down {
                window_sum -= mass[i - width];
            }
            next[i] = window_sum / width as f64;
        }
        mass = next;
    }
    per_window
}

/// `P(X >= k)` for `X ~ Binomial(n, p)`, summed exactly from the probability mass function.
fn binomial_tail(n: usize, p: f64, k: usize) -> f64 {
    let mut pmf = (1.0 - p).powi(n as i32);
    let mut below = 0.0;
    for i in 0..k {
        below += pmf;
        pmf *= (n - i) as f64 / (i + 1) as f64 * p / (1.0 - p);
    }
    (1.0 - below).max(0.0)
}

#[test]
fn herd_with_the_default_policy_stays_spread_out() {
    let cfg = ReconnectConfig::default();
    let counts = herd(&cfg);
    let measured = *counts.iter().max().unwrap();

    // The bound. Clients are independent, so a window's count is a sum over 1,000 clients of
    // each one's attempts in it. `p` is the largest per-client expectation over all windows,
    // from the documented schedule: ~0.2 from the first delay alone (1 s of a 5 s spread, the
    // ~1000/D the RFC's rule gives) plus retries of clients whose first delay came early. A
    // client makes two attempts in one window only if a gap is under 1 s (at most 1 in 10,
    // since gaps after the first are at least 10 s wide), so we model the count as Binomial
    // (1,000, p) and take the smallest bound that every window of a correct implementation
    // stays under except with probability 1e-6 (a union bound over the windows).
    let expected = expected_attempts_per_window(&cfg.backoff);
    let p = expected.iter().copied().fold(0.0, f64::max);
    let windows = expected.len();
    let bound = (0..=CLIENTS)
        .find(|&k| windows as f64 * binomial_tail(CLIENTS, p, k) <= 1e-6)
        .unwrap();
    println!(
        "default herd: max {measured} attempts/s, bound {bound} (p = {p:.4}, mean {:.1}); per second: {:?}",
        p * CLIENTS as f64,
        &counts[..windows]
    );
    assert!(
        (measured as usize) < bound,
        "max {measured} per second, bound {bound}"
    );
    // The model matches the measurement: the busiest window is within a few sd of its mean.
    assert!(
        measured as f64 > p * CLIENTS as f64 * 0.8,
        "{measured} vs mean {}",
        p * 1000.0
    );
    // Everyone came back, each exactly once after the server did.
    let after_down: u32 = counts[DOWN.as_secs() as usize..].iter().sum();
    assert_eq!(after_down as usize, CLIENTS);
}

#[test]
fn herd_without_jitter_or_first_delay_spikes() {
    let cfg = config(Jitter::None, None);
    let counts = herd(&cfg);
    // Every client retries at exactly 0.5 s, 1.5 s, 3.5 s, ...: the whole fleet in one window.
    assert_eq!(*counts.iter().max().unwrap() as usize, CLIENTS);
    assert_eq!(counts[0] as usize, CLIENTS);
}

#[test]
fn herd_without_jitter_is_still_spread_by_the_random_first_delay() {
    // Jitter::None keeps each client's gaps fixed, but the RFC's random first delay offsets each
    // client's whole schedule: 1,000 clients over 5 s average 200 per second. Each client's
    // attempts are at least 10 s apart, so a window holds at most one per client: the count is
    // Binomial(1000, p) with p <= 1/5, and this bound holds except with probability 1e-6.
    let cfg = config(Jitter::None, Some(5 * SEC));
    let counts = herd(&cfg);
    let bound = (0..=CLIENTS)
        .find(|&k| counts.len() as f64 * binomial_tail(CLIENTS, 0.2, k) <= 1e-6)
        .unwrap();
    let measured = *counts.iter().max().unwrap();
    println!("no-jitter herd with first delay: max {measured}, bound {bound}");
    assert!((measured as usize) < bound, "{measured} vs {bound}");
}
