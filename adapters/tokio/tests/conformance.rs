//! The adapter conformance suite (tether-conformance) run against tether-tokio.

mod harness;

tether_conformance::conformance_tests!(
    harness::Tokio,
    // Tests that fail on this adapter today, each with its reason: `name => "issue 12: why"`.
    // They run as `#[ignore]`d tests until the adapter is fixed.
    known_failing = [],
);
