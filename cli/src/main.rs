//! `tether`: the tether WebSocket toolkit's command line. `tether doctor URL` explains why a
//! WebSocket connection fails; `tether doctor --watch URL` watches one that flaps.
//!
//! Exit status: 0 when the verdict is `ok` (or `--watch` ended by Ctrl-C or its duration),
//! 10-23 for the failure verdicts (one status per kind, see `Verdict::exit_code`), 2 for
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

use clap::Parser;

use crate::args::{Cli, Command};

fn main() {
    let cli = Cli::parse();
    let Command::Doctor(args) = cli.command;
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("tether: cannot start the runtime: {e}");
            std::process::exit(1);
        }
    };
    let options = match probe::Options::from_args(&args) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("tether doctor: {message}");
            std::process::exit(2);
        }
    };
    let code = if args.watch {
        runtime.block_on(watch::run(&options, &watch::WatchOptions::from_args(&args)))
    } else {
        let report = runtime.block_on(probe::run(&options));
        if args.json {
            match serde_json::to_string_pretty(&report) {
                Ok(json) => println!("{json}"),
                Err(e) => {
                    eprintln!("tether doctor: {e}");
                    std::process::exit(1);
                }
            }
        } else {
            print!("{}", report.to_text());
        }
        report.exit_code
    };
    std::process::exit(code);
}
