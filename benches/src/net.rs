//! Scenarios 4-6 over loopback: the load generator (raw masked frames, written here once for
//! every library), idle-connection memory and handshake rate. Servers are child processes
//! (`server.rs`) pinned to the same CPU as this generator, because cross-CPU wake-ups on this VM
//! cost tens of microseconds. Every loop is bounded in count and in time.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use futures_util::future::join_all;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

use crate::Opts;
use crate::report::{CellSpec, Report, Sample};
use crate::server::LIBS;
use crate::wire;

/// The CPU both the servers and the generator run on.
const CPU: usize = 0;

pub fn pin(cpu: usize) {
    if let Some(ids) = core_affinity::get_core_ids()
        && let Some(id) = ids.into_iter().find(|c| c.id == cpu)
    {
        core_affinity::set_for_current(id);
    }
}

/// Bun's built-in WebSocket server (uWebSockets inside), an outside reference in the echo and
/// memory scenarios: shown in the tables, never tether's best peer (`report::OUTSIDE_REFERENCES`).
pub const BUN: &str = "bun";

/// The echo server script Bun runs (`benches/bun/echo.js`).
fn bun_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("bun")
        .join("echo.js")
}

/// The Bun binary: `$TETHER_BENCH_BUN`, else the one `npm install --prefix benches/bun`
/// installed, else `bun` on the PATH; only if it answers `--version`.
fn bun_exe() -> Option<PathBuf> {
    let local = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("bun/node_modules/.bin/bun");
    let candidates = [
        std::env::var_os("TETHER_BENCH_BUN").map(PathBuf::from),
        Some(local),
        Some(PathBuf::from("bun")),
    ];
    candidates.into_iter().flatten().find(|exe| {
        Command::new(exe)
            .arg("--version")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

/// `libs` plus the outside references that were not filtered out by `--libs` and are
/// installed; a missing Bun is skipped with a note.
fn with_references<'a>(opts: &Opts, libs: &[&'a str]) -> Vec<&'a str> {
    let mut out = libs.to_vec();
    if opts
        .libs
        .as_ref()
        .is_none_or(|o| o.iter().any(|l| l == BUN))
    {
        if bun_exe().is_some() {
            out.push(BUN);
        } else {
            eprintln!(
                "# bun is not installed, so it has no rows: `npm install --prefix benches/bun` \
                 (or set TETHER_BENCH_BUN)"
            );
        }
    }
    out
}

/// A server child process; closing its standard input (on drop) ends it.
pub struct ServerProc {
    child: Child,
    pub addr: SocketAddr,
}

impl ServerProc {
    pub fn start(lib: &str) -> Option<ServerProc> {
        // The Rust servers are this binary (`--serve LIB --cpu N`, pinning itself); Bun runs
        // its script and inherits the CPU this generator is pinned to (every thread it starts
        // does too).
        let (exe, args): (PathBuf, Vec<String>) = if lib == BUN {
            let script = bun_script();
            (bun_exe()?, vec![script.display().to_string()])
        } else {
            let args = ["--serve", lib, "--cpu", &CPU.to_string()].map(String::from);
            (std::env::current_exe().ok()?, args.to_vec())
        };
        // TETHER_BENCH_SERVER_WRAP="strace -f -c -o FILE" runs the server under a tool (for
        // syscall counts; the CPU numbers are then the tool's, not the server's).
        let wrap = std::env::var("TETHER_BENCH_SERVER_WRAP").unwrap_or_default();
        let mut words = wrap.split_whitespace();
        let mut cmd = match words.next() {
            Some(tool) => {
                let mut c = Command::new(tool);
                c.args(words).arg(exe);
                c
            }
            None => Command::new(exe),
        };
        let mut child = cmd
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let out = child.stdout.take()?;
        let mut line = String::new();
        BufReader::new(out).read_line(&mut line).ok()?;
        let addr = line.trim().strip_prefix("listening on ")?.parse().ok()?;
        Some(ServerProc { child, addr })
    }

    /// Nanoseconds the server process has run on a CPU: the sum of its live threads'
    /// schedstat (ns precision), or the process's utime + stime (10 ms ticks, but it keeps the
    /// time of threads that have exited, as tether-std's per-connection threads do), whichever
    /// is larger.
    pub fn cpu_ns(&self) -> u64 {
        let pid = self.child.id();
        let live: u64 = std::fs::read_dir(format!("/proc/{pid}/task"))
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
            .filter_map(|e| std::fs::read_to_string(e.path().join("schedstat")).ok())
            .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
            .sum();
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // Fields after the parenthesised command: utime and stime are the 12th and 13th.
        let ticks: u64 = stat
            .rsplit_once(')')
            .map(|(_, rest)| {
                rest.split_whitespace()
                    .skip(11)
                    .take(2)
                    .filter_map(|v| v.parse::<u64>().ok())
                    .sum()
            })
            .unwrap_or(0);
        live.max(ticks * 10_000_000)
    }

    /// Resident set size in bytes.
    pub fn rss(&self) -> u64 {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        s.lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    }
}

impl Drop for ServerProc {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        // Give it a moment to exit on its own (a wrapping tool then writes its report).
        for _ in 0..50 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Connects from a rotating source address in 127.0.0.2-127.0.0.251, so repeated runs do not run
/// out of ephemeral ports, and performs the opening handshake by hand.
async fn connect(addr: SocketAddr, i: usize) -> std::io::Result<TcpStream> {
    connect_offering(addr, i, None).await
}

/// [`connect`], offering `extensions` (`Sec-WebSocket-Extensions`); the 101 must agree to
/// permessage-deflate when it is offered.
async fn connect_offering(
    addr: SocketAddr,
    i: usize,
    extensions: Option<&str>,
) -> std::io::Result<TcpStream> {
    let sock = tokio::net::TcpSocket::new_v4()?;
    let src = Ipv4Addr::new(127, 0, 0, 2 + (i % 250) as u8);
    sock.bind(SocketAddr::V4(SocketAddrV4::new(src, 0)))?;
    let mut s = sock.connect(addr).await?;
    s.set_nodelay(true)?;
    let req = format!(
        "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{}\r\n",
        extensions.map_or(String::new(), |e| format!(
            "Sec-WebSocket-Extensions: {e}\r\n"
        ))
    );
    s.write_all(req.as_bytes()).await?;
    let mut head = Vec::with_capacity(256);
    let mut b = [0u8; 512];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = s.read(&mut b).await?;
        if n == 0 || head.len() > 8192 {
            return Err(std::io::Error::other("no 101"));
        }
        head.extend_from_slice(&b[..n]);
    }
    if !head.starts_with(b"HTTP/1.1 101") {
        return Err(std::io::Error::other("handshake refused"));
    }
    let agreed = String::from_utf8_lossy(&head)
        .to_ascii_lowercase()
        .contains("permessage-deflate");
    if extensions.is_some() && !agreed {
        return Err(std::io::Error::other("permessage-deflate not agreed"));
    }
    Ok(s)
}

pub async fn connect_many(addr: SocketAddr, n: usize, start: usize) -> Vec<TcpStream> {
    connect_many_offering(addr, n, start, None).await
}

async fn connect_many_offering(
    addr: SocketAddr,
    n: usize,
    start: usize,
    extensions: Option<&str>,
) -> Vec<TcpStream> {
    let mut out = Vec::with_capacity(n);
    let mut i = 0;
    while i < n {
        let batch = (n - i).min(64);
        let res =
            join_all((0..batch).map(|j| connect_offering(addr, start + i + j, extensions))).await;
        let mut failed = None;
        for r in res {
            match r {
                Ok(s) => out.push(s),
                Err(e) => failed = Some(e),
            }
        }
        if let Some(e) = failed {
            // The server refuses or died: stop here, the caller reports the shortfall.
            eprintln!("# connect: {e} after {} connections", out.len());
            break;
        }
        i += batch;
    }
    out
}

/// One echo connection's traffic for a phase: at most `k` messages in flight, each echo checked
/// byte for byte (payload carries the sequence number), round trips recorded in microseconds.
/// One prepared echo request: the masked frame, its header length, key and clear payload.
struct Request<'a> {
    frame: &'a [u8],
    header_len: usize,
    key: [u8; 4],
    base: &'a [u8],
}

async fn echo_conn(
    s: &mut TcpStream,
    req: &Request<'_>,
    k: usize,
    stop: Instant,
    rtts: &RefCell<Vec<u32>>,
    done: &Cell<u64>,
) -> Result<(), String> {
    let Request {
        frame,
        header_len,
        key,
        base,
    } = *req;
    let (mut rd, mut wr) = s.split();
    let sem = Semaphore::new(k);
    let inflight: RefCell<VecDeque<(Instant, u64)>> = RefCell::new(VecDeque::new());
    let sent = Cell::new(0u64);
    let writing = Cell::new(true);
    let writer_done = tokio::sync::Notify::new();
    let max_msgs = 50_000_000u64;
    let writer = async {
        let mut f = frame.to_vec();
        let mut seq = 0u64;
        while Instant::now() < stop && seq < max_msgs {
            let Ok(p) = sem.acquire().await else { break };
            p.forget();
            if Instant::now() >= stop {
                break;
            }
            let sb = seq.to_le_bytes();
            for i in 0..base.len().min(8) {
                f[header_len + i] = sb[i] ^ key[i & 3];
            }
            inflight.borrow_mut().push_back((Instant::now(), seq));
            sent.set(seq + 1);
            if let Err(e) = wr.write_all(&f).await {
                writing.set(false);
                writer_done.notify_one();
                return Err(format!("write: {e}"));
            }
            seq += 1;
        }
        writing.set(false);
        writer_done.notify_one();
        Ok(())
    };
    let reader = async {
        let mut buf = BytesMut::with_capacity(base.len() * 2 + 64);
        let mut got = 0u64;
        let deadline = stop + Duration::from_secs(5);
        loop {
            if !writing.get() && got == sent.get() {
                return Ok(());
            }
            while let Some((fin, op, len, hl)) = wire::parse_server_header(&buf) {
                if buf.len() < hl + len {
                    break;
                }
                if !fin || op != wire::OP_BINARY || len != base.len() {
                    return Err(format!("bad echo frame fin={fin} op={op} len={len}"));
                }
                let Some((t, seq)) = inflight.borrow_mut().pop_front() else {
                    return Err("echo without a request".into());
                };
                let p = &buf[hl..hl + len];
                let n8 = len.min(8);
                if p[..n8] != seq.to_le_bytes()[..n8] || p[n8..] != base[n8..] {
                    return Err("echo payload differs".into());
                }
                buf.advance(hl + len);
                got += 1;
                done.set(done.get() + 1);
                let us = t.elapsed().as_micros().min(u32::MAX as u128) as u32;
                let mut r = rtts.borrow_mut();
                if r.len() < 4_000_000 {
                    r.push(us);
                }
                drop(r);
                sem.add_permits(1);
            }
            if !writing.get() && got == sent.get() {
                return Ok(());
            }
            buf.reserve(64 << 10);
            let n = tokio::select! {
                r = tokio::time::timeout_at(deadline.into(), rd.read_buf(&mut buf)) => r
                    .map_err(|_| "echo timed out".to_string())?
                    .map_err(|e| format!("read: {e}"))?,
                _ = writer_done.notified() => continue,
            };
            if n == 0 {
                return Err("server closed".into());
            }
        }
    };
    let (w, r) = tokio::join!(writer, reader);
    w.and(r)
}

pub struct EchoStats {
    pub msgs: u64,
    pub wall: Duration,
    pub server_cpu_ns: u64,
    pub p50_us: f64,
    pub p99_us: f64,
}

async fn echo_phase(
    srv: &ServerProc,
    conns: &mut [TcpStream],
    len: usize,
    k: usize,
    dur: Duration,
) -> Result<EchoStats, String> {
    let key = [0x11, 0x22, 0x33, 0x44];
    let base = wire::payload(len, false);
    let mut frame = Vec::new();
    wire::put_frame(&mut frame, true, wire::OP_BINARY, Some(key), &base);
    let header_len = frame.len() - len;
    let req = Request {
        frame: &frame,
        header_len,
        key,
        base: &base,
    };
    let rtts = RefCell::new(Vec::new());
    let done = Cell::new(0u64);
    let cpu0 = srv.cpu_ns();
    let t0 = Instant::now();
    let stop = t0 + dur;
    let results = join_all(
        conns
            .iter_mut()
            .map(|s| echo_conn(s, &req, k, stop, &rtts, &done)),
    )
    .await;
    let wall = t0.elapsed();
    let cpu = srv.cpu_ns().saturating_sub(cpu0);
    if let Some(Err(e)) = results.into_iter().find(Result::is_err) {
        return Err(e);
    }
    let mut r = rtts.into_inner();
    r.sort_unstable();
    let pct = |p: f64| {
        if r.is_empty() {
            f64::NAN
        } else {
            r[((r.len() - 1) as f64 * p) as usize] as f64
        }
    };
    Ok(EchoStats {
        msgs: done.get(),
        wall,
        server_cpu_ns: cpu,
        p50_us: pct(0.50),
        p99_us: pct(0.99),
    })
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// One echo cell: `n` upgraded connections, `active` of them (spread evenly over the others)
/// doing echo with `len`-byte messages and at most `k` in flight each; the rest stay idle.
#[derive(Clone, Copy)]
pub struct EchoCase {
    pub n: usize,
    pub active: usize,
    pub len: usize,
    pub k: usize,
}

const fn all_active(n: usize, len: usize, k: usize) -> EchoCase {
    EchoCase {
        n,
        active: n,
        len,
        k,
    }
}

pub const ECHO_CASES: [EchoCase; 9] = [
    all_active(1, 20, 1),
    all_active(1, 16 << 10, 1),
    all_active(100, 20, 1),
    all_active(100, 16 << 10, 1),
    all_active(1, 20, 16),
    all_active(100, 16 << 10, 16),
    // Issue 15: where the best servers win.
    all_active(1, 20, 64),
    all_active(100, 512, 1),
    // 10,000 connections held open, 1 % of them active (500 and 5 with --quick): the
    // n100-20B-k1 traffic with 9,900 idle neighbours.
    EchoCase {
        n: 10_000,
        active: 100,
        len: 20,
        k: 1,
    },
];

impl EchoCase {
    /// The case as run: the many-connections case shrinks to 500 (5 active) with `--quick`,
    /// like the memory scenario.
    fn scaled(self, quick: bool) -> EchoCase {
        if quick && self.n > 1_000 {
            EchoCase {
                n: self.n / 20,
                active: self.active / 20,
                ..self
            }
        } else {
            self
        }
    }

    pub fn name(&self) -> String {
        let size = crate::decode::size_name(self.len);
        if self.active == self.n {
            echo_case_name(self.n, self.len, self.k)
        } else {
            format!("n{}a{}-{size}-k{}", self.n, self.active, self.k)
        }
    }
}

pub fn echo_case_name(n: usize, len: usize, k: usize) -> String {
    format!("n{n}-{}-k{k}", crate::decode::size_name(len))
}

/// tether-std (a thread per connection) stops accepting at about 8,200 connections here
/// (`vm.max_map_count`), so it sits out cases with more.
const TETHER_STD_MAX_CONNS: usize = 8_000;

pub fn run_echo(opts: &Opts, report: &mut Report, libs: &[&str]) {
    pin(CPU);
    let rt = runtime();
    let libs = with_references(opts, libs);
    let dur = if opts.quick {
        Duration::from_millis(120)
    } else {
        Duration::from_millis(500)
    };
    let reps = opts.reps.clamp(3, 3);
    for (ci, c) in ECHO_CASES.iter().enumerate() {
        let EchoCase { n, active, len, k } = c.scaled(opts.quick);
        let case = c.scaled(opts.quick).name();
        if opts
            .case
            .as_ref()
            .is_some_and(|c| !case.contains(c.as_str()))
        {
            continue;
        }
        report.add_cell(CellSpec {
            scenario: "echo".into(),
            case: case.clone(),
            metric: "msg_per_server_cpu_s",
            higher_is_better: true,
            reference_only: vec![],
        });
        for rep in 0..reps {
            for i in 0..libs.len() {
                let lib = libs[(i + rep) % libs.len()];
                if lib == "tether-std" && n > TETHER_STD_MAX_CONNS {
                    if rep == 0 {
                        eprintln!("# echo {case}: tether-std sits out (a thread per connection)");
                    }
                    continue;
                }
                let Some(srv) = ServerProc::start(lib) else {
                    eprintln!("# echo: could not start the {lib} server");
                    continue;
                };
                let res: Result<EchoStats, String> = rt.block_on(async {
                    let conns = connect_many(srv.addr, n, ci * 1000 + rep * 100 + i).await;
                    if conns.len() != n {
                        return Err("connections failed".into());
                    }
                    // Every (n / active)-th connection echoes; the others stay open, idle,
                    // until the measured phase is over.
                    let stride = n / active;
                    let (busy, idle): (Vec<_>, Vec<_>) = conns
                        .into_iter()
                        .enumerate()
                        .partition(|(j, _)| j % stride == 0 && j / stride < active);
                    let mut busy: Vec<TcpStream> = busy.into_iter().map(|(_, s)| s).collect();
                    echo_phase(&srv, &mut busy, len, k, dur / 5).await?;
                    let st = echo_phase(&srv, &mut busy, len, k, dur).await;
                    drop(idle);
                    st
                });
                match res {
                    Ok(st) => {
                        let per_cpu = st.msgs as f64 / (st.server_cpu_ns.max(1) as f64 / 1e9);
                        report.push(Sample {
                            scenario: "echo".into(),
                            case: case.clone(),
                            lib: lib.into(),
                            rep,
                            value: per_cpu,
                            extra: vec![
                                ("msg_per_s", st.msgs as f64 / st.wall.as_secs_f64()),
                                ("msgs", st.msgs as f64),
                                (
                                    "server_cpu_share",
                                    st.server_cpu_ns as f64 / st.wall.as_nanos() as f64,
                                ),
                                ("p50_us", st.p50_us),
                                ("p99_us", st.p99_us),
                            ],
                        });
                    }
                    Err(e) => eprintln!("# echo {case} {lib}: {e}"),
                }
            }
        }
    }
}

/// Scenario 5: server RSS per idle upgraded connection, right after the handshake and after
/// one 64 KiB message echoed on each.
pub fn run_memory(opts: &Opts, report: &mut Report, libs: &[&str]) {
    pin(CPU);
    let rt = runtime();
    let libs = with_references(opts, libs);
    let conns_n = if opts.quick { 500 } else { 10_000 };
    let reps = if opts.quick { 3 } else { opts.reps.max(5) };
    let settle = Duration::from_millis(if opts.quick { 50 } else { 150 });
    for (phase, case) in [
        (0, format!("idle-after-handshake-{conns_n}")),
        (1, format!("idle-after-64KiB-{conns_n}")),
    ] {
        report.add_cell(CellSpec {
            scenario: "memory".into(),
            case,
            metric: "bytes_per_conn",
            higher_is_better: false,
            reference_only: vec![],
        });
        let _ = phase;
    }
    for rep in 0..reps {
        for i in 0..libs.len() {
            let lib = libs[(i + rep) % libs.len()];
            let Some(srv) = ServerProc::start(lib) else {
                continue;
            };
            let res: Result<(f64, f64), String> = rt.block_on(async {
                // Warm the server up with one connection and one large message, then close it.
                {
                    let mut warm = connect_many(srv.addr, 1, rep * 7 + i).await;
                    echo_phase(&srv, &mut warm, 64 << 10, 1, Duration::from_millis(20)).await?;
                }
                tokio::time::sleep(settle).await;
                let rss0 = srv.rss();
                let mut conns = connect_many(srv.addr, conns_n, rep * 13 + i).await;
                if conns.len() != conns_n {
                    return Err(format!("only {} connections", conns.len()));
                }
                tokio::time::sleep(settle).await;
                let rss1 = srv.rss();
                for chunk in conns.chunks_mut(64) {
                    for r in join_all(chunk.iter_mut().map(one_64k)).await {
                        r?;
                    }
                }
                tokio::time::sleep(settle).await;
                let rss2 = srv.rss();
                drop(conns);
                let per = |r: u64| (r as f64 - rss0 as f64) / conns_n as f64;
                Ok((per(rss1), per(rss2)))
            });
            match res {
                Ok((a, b)) => {
                    for (case, v) in [
                        (format!("idle-after-handshake-{conns_n}"), a),
                        (format!("idle-after-64KiB-{conns_n}"), b),
                    ] {
                        report.push(Sample {
                            scenario: "memory".into(),
                            case,
                            lib: lib.into(),
                            rep,
                            value: v,
                            extra: vec![],
                        });
                    }
                }
                Err(e) => eprintln!("# memory {lib}: {e}"),
            }
        }
    }
}

/// Sends one 64 KiB message and waits for its echo (checked by length only).
async fn one_64k(s: &mut TcpStream) -> Result<(), String> {
    let base = wire::payload(64 << 10, false);
    let mut frame = Vec::new();
    wire::put_frame(&mut frame, true, wire::OP_BINARY, Some([1, 2, 3, 4]), &base);
    s.write_all(&frame).await.map_err(|e| e.to_string())?;
    let mut got = 0usize;
    let mut b = vec![0u8; 16 << 10];
    while got < base.len() + 4 {
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut b))
            .await
            .map_err(|_| "timeout".to_string())?
            .map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("closed".to_string());
        }
        got += n;
    }
    Ok(())
}

/// The permessage-deflate memory scenario: idle connections that agreed permessage-deflate,
/// after one 16 KiB compressed JSON text each way, per mode. The libraries run their own
/// servers with the mode (`LIB+deflate`, `LIB+deflate-shared`); the client offers exactly the
/// mode's parameters and checks the 101 agreed.
pub fn run_deflate_memory(opts: &Opts, report: &mut Report, libs: &[&str]) {
    pin(CPU);
    let rt = runtime();
    let conns_n = if opts.quick { 500 } else { 10_000 };
    let reps = if opts.quick { 2 } else { 3 };
    let settle = Duration::from_millis(if opts.quick { 50 } else { 150 });
    let text = crate::deflate::json_text(16 << 10, 7);
    let mut frame = Vec::new();
    let compressed = crate::deflate::compress_fresh(text.as_bytes());
    wire::put_frame(
        &mut frame,
        true,
        wire::OP_TEXT,
        Some([9, 8, 7, 6]),
        &compressed,
    );
    frame[0] |= 0x40;
    for (suffix, offer) in [
        (
            "deflate-shared",
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
        ),
        ("deflate", "permessage-deflate"),
    ] {
        let case = format!("{suffix}-idle-after-16KiB-json-{conns_n}");
        report.add_cell(CellSpec {
            scenario: "memory".into(),
            case: case.clone(),
            metric: "bytes_per_conn",
            higher_is_better: false,
            reference_only: vec![],
        });
        for rep in 0..reps {
            for i in 0..libs.len() {
                let lib = libs[(i + rep) % libs.len()];
                let Some(srv) = ServerProc::start(&format!("{lib}+{suffix}")) else {
                    continue;
                };
                let res: Result<f64, String> = rt.block_on(async {
                    {
                        let mut warm =
                            connect_many_offering(srv.addr, 1, rep * 7 + i, Some(offer)).await;
                        for s in &mut warm {
                            one_frame(s, &frame).await?;
                        }
                    }
                    tokio::time::sleep(settle).await;
                    let rss0 = srv.rss();
                    let mut conns =
                        connect_many_offering(srv.addr, conns_n, rep * 13 + i, Some(offer)).await;
                    if conns.len() != conns_n {
                        return Err(format!("only {} connections", conns.len()));
                    }
                    for chunk in conns.chunks_mut(64) {
                        for r in join_all(chunk.iter_mut().map(|s| one_frame(s, &frame))).await {
                            r?;
                        }
                    }
                    tokio::time::sleep(settle).await;
                    let rss1 = srv.rss();
                    drop(conns);
                    Ok((rss1 as f64 - rss0 as f64) / conns_n as f64)
                });
                match res {
                    Ok(v) => report.push(Sample {
                        scenario: "memory".into(),
                        case: case.clone(),
                        lib: lib.into(),
                        rep,
                        value: v,
                        extra: vec![],
                    }),
                    Err(e) => eprintln!("# memory {lib}+{suffix}: {e}"),
                }
            }
        }
    }
}

/// Writes one prepared frame and reads one whole frame back (an echo, compressed or not).
async fn one_frame(s: &mut TcpStream, frame: &[u8]) -> Result<(), String> {
    s.write_all(frame).await.map_err(|e| e.to_string())?;
    let mut got = Vec::new();
    let mut b = vec![0u8; 16 << 10];
    loop {
        if let Some((_, op, len, hl)) = wire::parse_server_header(&got) {
            if op != wire::OP_TEXT {
                return Err(format!("opcode {op} back"));
            }
            if got.len() >= hl + len {
                return Ok(());
            }
        }
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut b))
            .await
            .map_err(|_| "timeout".to_string())?
            .map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("closed".to_string());
        }
        got.extend_from_slice(&b[..n]);
    }
}

/// Scenario 6: completed server handshakes per second, one at a time and 100 concurrent.
pub fn run_handshake(opts: &Opts, report: &mut Report, libs: &[&str]) {
    pin(CPU);
    let rt = runtime();
    let dur = if opts.quick {
        Duration::from_millis(150)
    } else {
        Duration::from_millis(500)
    };
    let reps = 3;
    for conc in [1usize, 100] {
        let case = format!("concurrent-{conc}");
        report.add_cell(CellSpec {
            scenario: "handshake".into(),
            case: case.clone(),
            metric: "per_server_cpu_s",
            higher_is_better: true,
            reference_only: vec![],
        });
        for rep in 0..reps {
            for i in 0..libs.len() {
                let lib = libs[(i + rep) % libs.len()];
                let Some(srv) = ServerProc::start(lib) else {
                    continue;
                };
                let (count, wall, cpu) = rt.block_on(async {
                    // warm-up
                    let _ = connect(srv.addr, 0).await;
                    let total = Cell::new(0u64);
                    let cpu0 = srv.cpu_ns();
                    let t0 = Instant::now();
                    let stop = t0 + dur;
                    join_all((0..conc).map(|c| {
                        let total = &total;
                        async move {
                            let mut j = c;
                            while Instant::now() < stop && total.get() < 10_000_000 {
                                match connect(srv.addr, j).await {
                                    Ok(s) => {
                                        drop(s);
                                        total.set(total.get() + 1);
                                    }
                                    Err(e) => {
                                        eprintln!("# handshake {lib}: {e}");
                                        break;
                                    }
                                }
                                j += conc;
                            }
                        }
                    }))
                    .await;
                    (total.get(), t0.elapsed(), srv.cpu_ns().saturating_sub(cpu0))
                });
                report.push(Sample {
                    scenario: "handshake".into(),
                    case: case.clone(),
                    lib: lib.into(),
                    rep,
                    value: count as f64 / (cpu.max(1) as f64 / 1e9),
                    extra: vec![("per_s", count as f64 / wall.as_secs_f64())],
                });
            }
        }
    }
}

pub fn all_libs() -> Vec<&'static str> {
    LIBS.to_vec()
}
