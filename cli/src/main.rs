//! `tether`: the tether WebSocket toolkit's command line; see the `tether_cli` library.
#![forbid(unsafe_code)]

use clap::Parser;

fn main() {
    std::process::exit(tether_cli::run(tether_cli::Cli::parse()));
}
