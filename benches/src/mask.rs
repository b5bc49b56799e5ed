//! Scenario 3: the masking kernel alone, against memcpy of the same footprint.
//!
//! One op XORs a whole buffer with a key in place (`tether::mask::apply_mask`,
//! `fastwebsockets::unmask`), or copies it to a second buffer (`memcpy`: `copy_from_slice`, the
//! physical limit: both read and write every byte once). tungstenite's and tokio-websockets'
//! kernels are private (`mod mask`); their masking cost is inside decode and encode. Buffers are
//! allocated and touched before timing, so no page fault is measured.

use std::hint::black_box;

use crate::Opts;
use crate::decode::size_name;
use crate::report::{CellSpec, Report, Sample};

pub const LIBS: [&str; 3] = ["tether", "fastwebsockets", "memcpy"];
pub const SIZES: [usize; 3] = [1 << 10, 1 << 20, 64 << 20];

pub fn case_name(size: usize, build: &str) -> String {
    format!("{}-{build}", size_name(size))
}

pub fn run(opts: &Opts, report: &mut Report, build: &str) {
    let key = [0x37, 0xfa, 0x21, 0x3d];
    for size in SIZES {
        let case = case_name(size, build);
        report.add_cell(CellSpec {
            scenario: "mask".into(),
            case: case.clone(),
            metric: "GB_per_s",
            higher_is_better: true,
            reference_only: vec!["memcpy".into()],
        });
        let mut buf = vec![0x5au8; size];
        let src = vec![0xa5u8; size];
        for rep in 0..opts.reps {
            for i in 0..LIBS.len() {
                let lib = LIBS[(i + rep) % LIBS.len()];
                let m = crate::measure::measure(opts.budget, |n| {
                    for _ in 0..n {
                        match lib {
                            "tether" => {
                                tether::mask::apply_mask(black_box(&mut buf[..]), black_box(key))
                            }
                            "fastwebsockets" => {
                                fastwebsockets::unmask(black_box(&mut buf[..]), black_box(key))
                            }
                            _ => black_box(&mut buf[..]).copy_from_slice(black_box(&src[..])),
                        }
                    }
                    (n, n * size as u64)
                });
                report.push(Sample {
                    scenario: "mask".into(),
                    case: case.clone(),
                    lib: lib.into(),
                    rep,
                    value: m.mb_per_s() / 1e3,
                    extra: vec![("ns_per_op", m.ns_per_op())],
                });
            }
        }
    }
}
