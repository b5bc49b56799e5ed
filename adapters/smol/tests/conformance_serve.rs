//! The adapter conformance suite run against tether-smol with the server's connections under
//! `Connecting::serve`: the connection's driver runs in the handler's task, not its own.

mod harness;

tether_conformance::conformance_tests!(harness::Smol<true>, known_failing = []);
