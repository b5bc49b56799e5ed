//! Process-wide resources some tests change or measure: the open-files limit and the CPU clock.

use std::fs::File;
use std::time::Duration;

use rustix::io::Errno;
use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
use rustix::time::{ClockId, clock_gettime};

/// Raises the soft open-files limit to at least `n`, as far as the hard limit allows.
pub fn raise_open_files(n: u64) {
    let limit = getrlimit(Resource::Nofile);
    if limit.current.is_some_and(|current| current < n) {
        let current = limit.maximum.map_or(n, |max| n.min(max));
        let raised = Rlimit {
            current: Some(current),
            maximum: limit.maximum,
        };
        setrlimit(Resource::Nofile, raised).expect("raise RLIMIT_NOFILE");
    }
}

/// No file descriptor left: the soft open-files limit lowered near what is open and every
/// free slot under it filled. Dropping it gives them back and restores the limit.
pub struct Exhausted {
    filler: Vec<File>,
    limit: Rlimit,
}

impl Exhausted {
    /// Takes every file descriptor the process has left.
    pub fn now() -> Exhausted {
        let limit = getrlimit(Resource::Nofile);
        let open = std::fs::read_dir("/proc/self/fd")
            .expect("list /proc/self/fd")
            .count() as u64;
        let lowered = Rlimit {
            current: Some(open + 32),
            maximum: limit.maximum,
        };
        setrlimit(Resource::Nofile, lowered).expect("lower RLIMIT_NOFILE");
        let mut exhausted = Exhausted {
            filler: Vec::new(),
            limit,
        };
        loop {
            match File::open("/dev/null") {
                Ok(file) => exhausted.filler.push(file),
                Err(e) if e.raw_os_error() == Some(Errno::MFILE.raw_os_error()) => break,
                Err(e) => panic!("filling the descriptor table: {e}"),
            }
            assert!(exhausted.filler.len() < 1 << 16, "no EMFILE in sight");
        }
        exhausted
    }
}

impl Drop for Exhausted {
    fn drop(&mut self) {
        self.filler.clear();
        let _ = setrlimit(Resource::Nofile, self.limit);
    }
}

/// The CPU time the whole process has used so far, every thread included.
pub fn cpu_time() -> Duration {
    let t = clock_gettime(ClockId::ProcessCPUTime);
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}
