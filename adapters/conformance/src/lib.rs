//! # tether-conformance: one adapter conformance suite
//!
//! The behaviours every tether adapter (tokio, smol, std) must share, written once and run
//! against each: the opening handshake in both roles, echo, close codes both ways, dead-peer
//! detection, flow control against peers that never read, the close timeout, `Duration::MAX`
//! timeouts, EMFILE in the accept loop, the reconnecting client and a thousand concurrent
//! connections.
//!
//! An adapter implements the small blocking [`Adapter`] harness (its listener, client,
//! connection handle and reconnecting client; an async adapter blocks on a runtime running on
//! background threads) in its `tests/conformance.rs`, and names the harness once:
//!
//! ```ignore
//! mod harness; // `pub struct Tokio;` and `impl tether_conformance::Adapter for Tokio`
//!
//! tether_conformance::conformance_tests!(harness::Tokio, known_failing = [
//!     // What fails today and why; the list empties as the adapter is fixed.
//!     idle_timeout_client_role => "issue 12: <what is wrong>",
//! ]);
//! ```
//!
//! That expands to one `#[test]` per behaviour, named after the functions in [`suite`]; the
//! tests listed in `known_failing` are `#[ignore]`d with their reason (`cargo test --
//! --ignored` runs them). [`conformance_emfile_test!`] does the same for the EMFILE test, which
//! lowers the process's open-files limit and so belongs in a test binary of its own.
//!
//! On the other side of most tests is a [`RawPeer`]: a blocking socket speaking WebSocket by
//! hand, so misbehaving peers can be scripted. Tests use 127.0.0.1 port 0, wait on events with
//! bounds (never sleep to synchronise) and keep their timers small.

// The harness returns the adapters' `Error`, which carries the terminal information by value,
// as every adapter does.
#![allow(clippy::result_large_err)]

mod flood;
pub mod frame;
mod harness;
mod limits;
pub mod proxy;
pub mod raw;
mod setup;
pub mod suite;

pub use harness::{Accepted, Adapter, Conn, Reconnecting, Stop};
pub use raw::RawPeer;
pub use setup::LIMIT;
pub use {tether, tether_io};

/// Generates the test macros from the list of tests. The `$d` argument is a `$` token, so the
/// macros written here can have metavariables of their own.
macro_rules! define_test_macros {
    ($d:tt tests: [$($test:ident),* $(,)?] emfile: [$($emfile:ident),* $(,)?]) => {
        /// One `#[test]` for `$test`: `#[ignore]`d with its reason when the list names it.
        #[doc(hidden)]
        #[macro_export]
        macro_rules! __conformance_test {
            $(
                ($d harness:ty, $test, [$test => $d reason:literal $d(, $d n:ident => $d r:literal)*]) => {
                    #[test]
                    #[ignore = $d reason]
                    fn $test() {
                        $crate::suite::$test::<$d harness>();
                    }
                };
                ($d harness:ty, $test, [$d other:ident => $d reason:literal $d(, $d n:ident => $d r:literal)*]) => {
                    $crate::__conformance_test!($d harness, $test, [$d($d n => $d r),*]);
                };
                ($d harness:ty, $test, []) => {
                    #[test]
                    fn $test() {
                        $crate::suite::$test::<$d harness>();
                    }
                };
            )*
            $(
                ($d harness:ty, $emfile, [$emfile => $d reason:literal $d(, $d n:ident => $d r:literal)*]) => {
                    #[test]
                    #[ignore = $d reason]
                    fn $emfile() {
                        $crate::suite::$emfile::<$d harness>();
                    }
                };
                ($d harness:ty, $emfile, [$d other:ident => $d reason:literal $d(, $d n:ident => $d r:literal)*]) => {
                    $crate::__conformance_test!($d harness, $emfile, [$d($d n => $d r),*]);
                };
                ($d harness:ty, $emfile, []) => {
                    #[test]
                    fn $emfile() {
                        $crate::suite::$emfile::<$d harness>();
                    }
                };
            )*
        }

        /// Expands to one `#[test]` per behaviour of the suite (all but the EMFILE test), run
        /// against the [`Adapter`](crate::Adapter) implementation `$harness`.
        ///
        /// `known_failing` lists tests that fail on this adapter today, each with its reason:
        /// they are `#[ignore]`d with it. Every name must be a test of [`suite`](crate::suite).
        #[macro_export]
        macro_rules! conformance_tests {
            ($d harness:ty $d(, known_failing = [$d($d n:ident => $d r:literal),* $d(,)?])? $d(,)?) => {
                $d($d(
                    const _: () = {
                        let _ = $crate::suite::$d n::<$d harness>;
                    };
                )*)?
                $(
                    $crate::__conformance_test!($d harness, $test, [$d($d($d n => $d r),*)?]);
                )*
            };
        }

        /// Expands to the `#[test]` of the EMFILE behaviour, run against `$harness`. It lowers
        /// the process's open-files limit: give it a test binary of its own.
        #[macro_export]
        macro_rules! conformance_emfile_test {
            ($d harness:ty $d(, known_failing = [$d($d n:ident => $d r:literal),* $d(,)?])? $d(,)?) => {
                $d($d(
                    const _: () = {
                        let _ = $crate::suite::$d n::<$d harness>;
                    };
                )*)?
                $(
                    $crate::__conformance_test!($d harness, $emfile, [$d($d($d n => $d r),*)?]);
                )*
            };
        }
    };
}

define_test_macros! {
    $
    tests: [
        handshake_and_echo_server_role,
        handshake_and_echo_client_role,
        echo_between_two_adapter_ends,
        compressed_echo_between_two_adapter_ends,
        close_from_adapter_server_role,
        close_from_adapter_client_role,
        close_from_peer_server_role,
        close_from_peer_client_role,
        unsendable_close_is_refused_server_role,
        unsendable_close_is_refused_client_role,
        dropping_the_handle_closes_with_1001_server_role,
        dropping_the_handle_closes_with_1001_client_role,
        peer_ends_tcp_first_server_role,
        peer_ends_tcp_first_client_role,
        heartbeat_timeout_server_role,
        heartbeat_timeout_client_role,
        idle_timeout_server_role,
        idle_timeout_client_role,
        send_waits_for_a_peer_that_never_reads,
        ping_flood_from_a_peer_that_never_reads_is_bounded,
        close_timeout_releases_a_stuck_socket_server_role,
        close_timeout_releases_a_stuck_socket_client_role,
        duration_max_everywhere,
        reconnecting_queue_is_bounded_then_delivered_in_order,
        dropping_the_reconnecting_client_closes_with_1001,
        resumed_session_survives_a_black_hole_both_ways,
        a_session_whose_client_never_returns_is_reported_lost,
        resume_falls_back_to_plain_reconnect_with_another_peer,
        request_hook_answers_http_and_gates_websockets,
        an_accepted_connection_keeps_no_request_by_default,
        graceful_shutdown_closes_with_1001_then_resets,
        thousand_concurrent_connections,
    ]
    emfile: [accept_loop_backs_off_on_emfile]
}
