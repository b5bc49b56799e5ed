//! The adapter conformance suite (tether-conformance) run against tether-std.

mod harness;

tether_conformance::conformance_tests!(
    harness::Std,
    // Tests that fail on this adapter today, each with its reason: `name => "issue 12: why"`.
    // They run as `#[ignore]`d tests until the adapter is fixed.
    known_failing = [],
);
