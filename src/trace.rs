//! Events through `tracing` with the `tracing` feature, nothing without it: the macros expand
//! to nothing, so the arguments are not even evaluated.

/// `tracing::event!` with the feature; nothing without it.
#[cfg(feature = "tracing")]
macro_rules! trace_event {
    ($($t:tt)*) => { ::tracing::event!($($t)*) };
}

/// `tracing::event!` with the feature; nothing without it.
#[cfg(not(feature = "tracing"))]
macro_rules! trace_event {
    ($($t:tt)*) => {};
}

pub(crate) use trace_event;
