//! The conformance suite's EMFILE test against tether-std, in a binary of its own: it lowers
//! the process's open-files limit.

mod harness;

tether_conformance::conformance_emfile_test!(harness::Std);
