//! Conversions from `std::time::Instant` (the only place a test reads the real clock: the core
//! itself never does).

use std::time::Duration;
use tether::Instant;

#[test]
fn std_conversion_is_monotonic() {
    let a = std::time::Instant::now();
    let b = a + Duration::from_millis(5);
    let (ta, tb) = (Instant::from(a), Instant::from(b));
    assert_eq!(tb - ta, Duration::from_millis(5));
    assert!(Instant::from(a - Duration::from_secs(3)) < ta);
}
