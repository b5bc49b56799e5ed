//! Side-by-side benchmarks of tether against tungstenite / tokio-tungstenite, fastwebsockets and
//! tokio-websockets (issue 8). Every number is reported with the ratio to the best library of the
//! same repetition, because this shared machine drifts by tens of percent between runs.
//!
//! ```text
//! cargo run --release -p tether-bench -- --quick          # under 90 s once built
//! cargo run --release -p tether-bench                     # the full run, under 8 minutes
//! cargo run --release -p tether-bench -- --only decode,mask --no-native
//! ```
//!
//! Output: one JSON line per sample on stdout as it is measured, then the Markdown table and one
//! `bench <scenario> tether=<x> best_peer=<name>:<y> ratio=<x/y>` line per cell; the table goes
//! to `target/bench/latest.md` and the JSON lines to `target/bench/latest.jsonl`.

mod broadcast;
mod decode;
mod deflate;
mod encode;
mod mask;
mod measure;
mod memstream;
mod net;
mod report;
mod server;
mod wire;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant as StdInstant};

use report::{Report, Sample};

/// The fixed `now` the in-memory scenarios hand to tether: no time passes inside a batch, so
/// no timer fires and no clock read is measured (the peers read no clock either).
pub const NOW: tether::Instant = tether::Instant::from_secs(1_000);

pub struct Opts {
    pub quick: bool,
    pub reps: usize,
    /// CPU time per in-memory sample.
    pub budget: Duration,
    pub only: Option<Vec<String>>,
    pub native: bool,
    /// (Re)build the `-C target-cpu=native` copy before running it.
    pub build_native: bool,
    /// Run only the masking scenario, label its cases with this build name and print its
    /// samples as `SAMPLE` lines for the parent (the `-C target-cpu=native` re-execution).
    pub child_mask: Option<String>,
    /// Restricts the network scenarios to these servers.
    pub libs: Option<Vec<String>>,
    /// Restricts the echo and deflate scenarios to cases whose name contains this.
    pub case: Option<String>,
}

impl Opts {
    fn wants(&self, scenario: &str) -> bool {
        self.only
            .as_ref()
            .is_none_or(|o| o.iter().any(|s| s == scenario))
    }
}

fn parse_args() -> Opts {
    let mut quick = false;
    let mut only = None;
    let mut native = true;
    let mut build_native = false;
    let mut child_mask = None;
    let mut reps = None;
    let mut libs = None;
    let mut case = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--quick" => quick = true,
            "--only" => {
                only = args
                    .next()
                    .map(|s| s.split(',').map(String::from).collect())
            }
            "--no-native" => native = false,
            "--build-native" => build_native = true,
            "--case" => case = args.next(),
            "--libs" => {
                libs = args
                    .next()
                    .map(|s| s.split(',').map(String::from).collect())
            }
            "--reps" => reps = args.next().and_then(|s| s.parse().ok()),
            "--child-mask" => child_mask = args.next(),
            "--profile" => {
                // For callgrind: run one decoder or encoder for a fixed number of messages.
                let what = args.next().unwrap_or_default();
                let case = args.next().unwrap_or_default();
                let lib = args.next().unwrap_or_default();
                let n: u64 = args.next().and_then(|v| v.parse().ok()).unwrap_or(10_000);
                profile(&what, &case, &lib, n);
                std::process::exit(0);
            }
            "--serve" => {
                let lib = args.next().unwrap_or_default();
                let mut cpu = None;
                if args.next().as_deref() == Some("--cpu") {
                    cpu = args.next().and_then(|c| c.parse().ok());
                }
                server::serve(&lib, cpu);
                std::process::exit(0);
            }
            "-h" | "--help" => {
                println!(
                    "tether-bench [--quick] [--only decode,encode,deflate,mask,echo,memory,deflate-memory,handshake,broadcast] [--no-native] [--build-native] [--reps N] [--libs tether-tokio,..]"
                );
                std::process::exit(0);
            }
            other => {
                eprintln!("unknown argument {other}");
                std::process::exit(2);
            }
        }
    }
    Opts {
        quick,
        reps: reps.unwrap_or(if quick { 3 } else { 5 }),
        budget: if quick {
            Duration::from_millis(10)
        } else {
            Duration::from_millis(80)
        },
        only,
        native,
        build_native,
        child_mask,
        libs,
        case,
    }
}

pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Builds and runs this crate again with `RUSTFLAGS="-C target-cpu=native"` in its own target
/// directory, for the masking scenario only, and collects its samples.
fn run_native_mask(opts: &Opts, report: &mut Report) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let base = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| workspace_root().join("target"));
    let target = PathBuf::from(format!("{}-native", base.display()));
    let exe = target.join("release").join("tether-bench");
    // Build the native copy when asked or when it does not exist yet; otherwise run the binary
    // that is there (the shared tree changes all the time, and a rebuild costs minutes).
    if opts.build_native || !exe.exists() {
        if opts.quick && !opts.build_native {
            eprintln!(
                "# mask: no native build in {} yet; run once with --build-native",
                target.display()
            );
            return;
        }
        eprintln!(
            "# mask: building the -C target-cpu=native copy in {}",
            target.display()
        );
        let status = Command::new(&cargo)
            .current_dir(workspace_root())
            .args(["build", "--quiet", "--release", "-p", "tether-bench"])
            .env("RUSTFLAGS", "-C target-cpu=native")
            .env("CARGO_TARGET_DIR", &target)
            .status();
        if !status.is_ok_and(|s| s.success()) {
            eprintln!("# mask: the native build failed");
            return;
        }
    }
    let age = std::fs::metadata(&exe)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .map_or(0, |d| d.as_secs());
    eprintln!(
        "# mask: running the -C target-cpu=native copy {} (built {age} s ago)",
        exe.display()
    );
    let mut cmd = Command::new(&exe);
    cmd.args(["--child-mask", "native", "--reps", &opts.reps.to_string()])
        .stdout(Stdio::piped());
    if opts.quick {
        cmd.arg("--quick");
    }
    let Ok(mut child) = cmd.spawn() else {
        eprintln!("# mask: could not start the native copy");
        return;
    };
    let out = child.stdout.take().expect("piped");
    for line in BufReader::new(out).lines().map_while(Result::ok) {
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() >= 6 && f[0] == "SAMPLE" {
            let extra = f[6..]
                .iter()
                .filter_map(|kv| kv.split_once('='))
                .filter_map(|(k, v)| {
                    Some((
                        if k == "ns_per_op" {
                            "ns_per_op"
                        } else {
                            "other"
                        },
                        v.parse().ok()?,
                    ))
                })
                .collect();
            let size: usize = f[2].parse().unwrap_or(0);
            report.add_cell(report::CellSpec {
                scenario: "mask".into(),
                case: mask::case_name(size, "native"),
                metric: "GB_per_s",
                higher_is_better: true,
                reference_only: vec!["memcpy".into()],
            });
            report.push(Sample {
                scenario: "mask".into(),
                case: mask::case_name(size, "native"),
                lib: f[3].into(),
                rep: f[4].parse().unwrap_or(0),
                value: f[5].parse().unwrap_or(f64::NAN),
                extra,
            });
        }
    }
    let _ = child.wait();
}

fn profile(what: &str, case: &str, lib: &str, n: u64) {
    let (msgs, bytes) = match what {
        "decode" => {
            let c = decode::cases()
                .into_iter()
                .find(|c| c.name == case)
                .expect("decode case");
            let mut r = decode::make(lib, decode::input(&c), c.chunk, c.len, c.text);
            r(n)
        }
        "encode" => {
            let (_, len, text, frag) = decode::shapes()
                .into_iter()
                .find(|s| s.0 == case)
                .expect("encode case");
            let mut r = encode::make(lib, len, text, frag);
            r(n)
        }
        "deflate" => deflate::profile(case, lib, n),
        _ => panic!("--profile decode|encode|deflate CASE LIB N"),
    };
    println!("{what} {case} {lib}: {msgs} messages, {bytes} bytes");
}

fn main() {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let opts = parse_args();
    let started = StdInstant::now();
    if let Some(label) = &opts.child_mask {
        let mut report = Report::default();
        mask::run(&opts, &mut report, label);
        for s in &report.samples {
            let size = mask::SIZES
                .iter()
                .find(|&&z| mask::case_name(z, label) == s.case)
                .copied()
                .unwrap_or(0);
            let extra: Vec<String> = s.extra.iter().map(|(k, v)| format!("{k}={v}")).collect();
            println!(
                "SAMPLE\tmask\t{size}\t{}\t{}\t{}\t{}",
                s.lib,
                s.rep,
                s.value,
                extra.join("\t")
            );
        }
        return;
    }
    let mut report = Report::default();
    let stamp = |what: &str| eprintln!("# {what} done at {:.1} s", started.elapsed().as_secs_f64());
    if opts.wants("decode") {
        decode::run(&opts, &mut report);
        stamp("decode");
    }
    if opts.wants("encode") {
        encode::run(&opts, &mut report);
        stamp("encode");
    }
    if opts.wants("deflate") {
        deflate::run(&opts, &mut report);
        stamp("deflate");
    }
    if opts.wants("mask") {
        mask::run(&opts, &mut report, "default");
        if opts.native {
            run_native_mask(&opts, &mut report);
        }
        stamp("mask");
    }
    let libs: Vec<&str> = net::all_libs()
        .into_iter()
        .filter(|l| opts.libs.as_ref().is_none_or(|o| o.iter().any(|x| x == l)))
        .collect();
    if opts.wants("echo") {
        net::run_echo(&opts, &mut report, &libs);
        stamp("echo");
    }
    if opts.wants("memory") {
        net::run_memory(&opts, &mut report, &libs);
        stamp("memory");
    }
    if opts.wants("deflate-memory") {
        let dlibs: Vec<&str> = net::all_libs()
            .into_iter()
            .filter(|l| ["tether-tokio", "tether-smol", "yawc", "sockudo-ws"].contains(l))
            .filter(|l| opts.libs.as_ref().is_none_or(|o| o.iter().any(|x| x == l)))
            .collect();
        net::run_deflate_memory(&opts, &mut report, &dlibs);
        stamp("deflate-memory");
    }
    if opts.wants("handshake") {
        net::run_handshake(&opts, &mut report, &libs);
        stamp("handshake");
    }
    if opts.wants("broadcast") {
        broadcast::run(&opts, &mut report, &libs);
        stamp("broadcast");
    }
    let header = format!(
        "## tether-bench ({} run, {} repetitions, {} s, {} CPUs)",
        if opts.quick { "--quick" } else { "full" },
        opts.reps,
        started.elapsed().as_secs(),
        cpus
    );
    let md = report.markdown(&header);
    println!("\n{md}");
    let dir = workspace_root().join("target").join("bench");
    if std::fs::create_dir_all(&dir).is_ok() {
        let _ = std::fs::write(dir.join("latest.md"), &md);
        let _ = std::fs::write(dir.join("latest.jsonl"), report.jsonl());
        eprintln!("# wrote {}", dir.join("latest.md").display());
    }
}
