//! # tether-cli: `tether doctor`
//!
//! The library behind the `tether` binary. `tether doctor URL` explains why a WebSocket
//! connection fails: it walks the URL, DNS, TCP (per address), an HTTP proxy's CONNECT, TLS,
//! the HTTP exchange and the 101 (validated by the core's client handshake), then a Ping and
//! the close, timing each step, and ends with `verdict: KIND` and advice. `tether doctor
//! --watch URL` keeps a connection open with the core's heartbeat and reconnect supervisor and
//! reports every drop.
//!
//! Exit status: 0 when the verdict is `ok` (or `--watch` ended by Ctrl-C or its duration),
//! 10-23 for the failure verdicts (one status per kind, see [`Verdict::exit_code`]), 2 for
//! usage errors, 1 when the tool itself failed or `--watch` gave up.
#![forbid(unsafe_code)]

mod args;
mod drive;
mod explain;
mod net;
mod probe;
mod report;
mod tls;
mod watch;

pub use args::Cli;
pub use report::{Outcome, Report, Step, Verdict};

use args::Command;

/// Runs the command line `cli`; returns the process exit status.
pub fn run(cli: Cli) -> i32 {
    let Command::Doctor(args) = cli.command;
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("tether: cannot start the runtime: {e}");
            return 1;
        }
    };
    let options = match probe::Options::from_args(&args) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("tether doctor: {message}");
            return 2;
        }
    };
    if args.watch {
        return runtime.block_on(watch::run(&options, &watch::WatchOptions::from_args(&args)));
    }
    let report = runtime.block_on(probe::run(&options));
    if args.json {
        match serde_json::to_string_pretty(&report) {
            Ok(json) => println!("{json}"),
            Err(e) => {
                eprintln!("tether doctor: {e}");
                return 1;
            }
        }
    } else {
        print!("{}", report.to_text());
    }
    report.exit_code
}
