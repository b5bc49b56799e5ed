//! The tests, each a function generic over the [`Adapter`] under test. The macros
//! [`conformance_tests!`](crate::conformance_tests) and
//! [`conformance_emfile_test!`](crate::conformance_emfile_test) turn them into `#[test]`s.

mod close;
mod close_timeout;
mod duration_max;
mod emfile;
mod flow;
mod handshake;
mod many;
mod reconnect;
mod resume;
mod server;
mod timeouts;

use tether::Role;

use crate::harness::Adapter;

pub use duration_max::duration_max_everywhere;
pub use emfile::accept_loop_backs_off_on_emfile;
pub use flow::{
    ping_flood_from_a_peer_that_never_reads_is_bounded, send_waits_for_a_peer_that_never_reads,
};
pub use handshake::{
    compressed_echo_between_two_adapter_ends, echo_between_two_adapter_ends,
    handshake_and_echo_client_role, handshake_and_echo_server_role,
};
pub use many::thousand_concurrent_connections;
pub use reconnect::{
    dropping_the_reconnecting_client_closes_with_1001,
    reconnecting_queue_is_bounded_then_delivered_in_order,
};
pub use resume::{
    a_session_whose_client_never_returns_is_reported_lost,
    resume_falls_back_to_plain_reconnect_with_another_peer,
    resumed_session_survives_a_black_hole_both_ways,
};
pub use server::{
    an_accepted_connection_keeps_no_request_by_default,
    graceful_shutdown_closes_with_1001_then_resets, request_hook_answers_http_and_gates_websockets,
};

/// One test per role of a behaviour both ends of a connection must have.
macro_rules! in_both_roles {
    ($($module:ident::$test:ident => $server:ident, $client:ident;)*) => {
        $(
            #[doc = concat!("`", stringify!($test), "` with the adapter as the server.")]
            pub fn $server<A: Adapter>() {
                $module::$test::<A>(Role::Server)
            }

            #[doc = concat!("`", stringify!($test), "` with the adapter as the client.")]
            pub fn $client<A: Adapter>() {
                $module::$test::<A>(Role::Client)
            }
        )*
    };
}

in_both_roles! {
    close::close_from_adapter => close_from_adapter_server_role, close_from_adapter_client_role;
    close::close_from_peer => close_from_peer_server_role, close_from_peer_client_role;
    close::unsendable_close_is_refused =>
        unsendable_close_is_refused_server_role, unsendable_close_is_refused_client_role;
    close::dropping_the_handle_closes_with_1001 =>
        dropping_the_handle_closes_with_1001_server_role,
        dropping_the_handle_closes_with_1001_client_role;
    close::peer_ends_tcp_first => peer_ends_tcp_first_server_role, peer_ends_tcp_first_client_role;
    timeouts::heartbeat_timeout => heartbeat_timeout_server_role, heartbeat_timeout_client_role;
    timeouts::idle_timeout => idle_timeout_server_role, idle_timeout_client_role;
    close_timeout::close_timeout_releases_a_stuck_socket =>
        close_timeout_releases_a_stuck_socket_server_role,
        close_timeout_releases_a_stuck_socket_client_role;
}
