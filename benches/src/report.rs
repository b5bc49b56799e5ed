//! Samples, paired ratios and the three outputs: a Markdown table, one JSON line per sample and
//! one summary line per scenario.

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// One measurement of one library in one repetition of one cell.
#[derive(Clone, Debug)]
pub struct Sample {
    /// Scenario family: `decode`, `encode`, `mask`, `echo`, `memory`, `handshake`.
    pub scenario: String,
    /// The cell inside the scenario, e.g. `bin-1KiB` or `n100-16KiB-k1`.
    pub case: String,
    pub lib: String,
    pub rep: usize,
    /// The primary metric; ratios are taken on it.
    pub value: f64,
    /// Further numbers reported beside it (ns/msg, MB/s, p50, ...).
    pub extra: Vec<(&'static str, f64)>,
}

/// How a cell's primary metric is read.
#[derive(Clone, Debug)]
pub struct CellSpec {
    pub scenario: String,
    pub case: String,
    /// Name of the primary metric, e.g. `msg_per_cpu_s`.
    pub metric: &'static str,
    pub higher_is_better: bool,
    /// Libraries shown but never counted as the best peer (a different contract, a physical
    /// limit, another adapter of tether).
    pub reference_only: Vec<String>,
}

/// Outside references: servers that are not Rust libraries (Bun, uWebSockets inside), shown in
/// every cell they run in but never counted as tether's best peer, which is a Rust library.
pub const OUTSIDE_REFERENCES: [&str; 1] = ["bun"];

impl CellSpec {
    /// Whether `lib` is shown only, never the best peer: the cell's own references or an
    /// outside one.
    pub fn is_reference(&self, lib: &str) -> bool {
        self.reference_only.iter().any(|r| r == lib) || OUTSIDE_REFERENCES.contains(&lib)
    }
}

#[derive(Default)]
pub struct Report {
    pub cells: Vec<CellSpec>,
    pub samples: Vec<Sample>,
}

pub fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Whether `lib` is tether itself (the core or one of its adapters).
pub fn is_tether(lib: &str) -> bool {
    lib == "tether" || lib.starts_with("tether-") || lib.starts_with("tether ")
}

fn better(spec: &CellSpec, a: f64, b: f64) -> bool {
    if spec.higher_is_better { a > b } else { a < b }
}

/// Per-library summary of one cell.
pub struct LibRow {
    pub lib: String,
    pub value: f64,
    pub extra: Vec<(&'static str, f64)>,
    /// Median over repetitions of value / best value of the same repetition.
    pub vs_best: f64,
    pub reps: usize,
}

pub struct CellSummary {
    pub rows: Vec<LibRow>,
    /// The `bench ...` line, when tether and at least one peer were measured.
    pub line: Option<String>,
}

impl Report {
    pub fn add_cell(&mut self, spec: CellSpec) {
        if !self
            .cells
            .iter()
            .any(|c| c.scenario == spec.scenario && c.case == spec.case)
        {
            self.cells.push(spec);
        }
    }

    pub fn push(&mut self, s: Sample) {
        println!("{}", json_line(&s));
        self.samples.push(s);
    }

    fn cell_samples<'a>(&'a self, spec: &'a CellSpec) -> impl Iterator<Item = &'a Sample> + 'a {
        self.samples
            .iter()
            .filter(move |s| s.scenario == spec.scenario && s.case == spec.case)
    }

    pub fn summarize(&self, spec: &CellSpec) -> CellSummary {
        // rep -> lib -> value
        let mut by_rep: BTreeMap<usize, BTreeMap<&str, f64>> = BTreeMap::new();
        let mut libs: Vec<&str> = Vec::new();
        for s in self.cell_samples(spec) {
            by_rep.entry(s.rep).or_default().insert(&s.lib, s.value);
            if !libs.contains(&s.lib.as_str()) {
                libs.push(&s.lib);
            }
        }
        let counted = |lib: &str| !spec.is_reference(lib);
        let mut rows = Vec::new();
        for lib in &libs {
            let mut values = Vec::new();
            let mut ratios = Vec::new();
            for rep in by_rep.values() {
                let Some(&v) = rep.get(lib) else { continue };
                values.push(v);
                let best = rep
                    .iter()
                    .filter(|(l, _)| counted(l))
                    .map(|(_, v)| *v)
                    .fold(None, |acc: Option<f64>, v| match acc {
                        Some(a) if !better(spec, v, a) => Some(a),
                        _ => Some(v),
                    });
                if let Some(best) = best {
                    ratios.push(v / best);
                }
            }
            let mut extra: Vec<(&'static str, f64)> = Vec::new();
            let lib_samples: Vec<&Sample> =
                self.cell_samples(spec).filter(|s| s.lib == *lib).collect();
            if let Some(first) = lib_samples.first() {
                for (k, _) in &first.extra {
                    let mut xs: Vec<f64> = lib_samples
                        .iter()
                        .filter_map(|s| s.extra.iter().find(|(kk, _)| kk == k).map(|(_, v)| *v))
                        .collect();
                    extra.push((k, median(&mut xs)));
                }
            }
            let reps = values.len();
            rows.push(LibRow {
                lib: lib.to_string(),
                value: median(&mut values),
                extra,
                vs_best: median(&mut ratios),
                reps,
            });
        }
        // The summary line: tether (the core, or the first tether row) against the best peer.
        let tether = rows
            .iter()
            .find(|r| r.lib == "tether")
            .or_else(|| rows.iter().find(|r| is_tether(&r.lib)));
        let best_peer = rows
            .iter()
            .filter(|r| !is_tether(&r.lib) && counted(&r.lib))
            .fold(None::<&LibRow>, |acc, r| match acc {
                Some(a) if !better(spec, r.value, a.value) => Some(a),
                _ => Some(r),
            });
        let line = match (tether, best_peer) {
            (Some(t), Some(p)) => {
                let mut paired = Vec::new();
                for rep in by_rep.values() {
                    if let (Some(x), Some(y)) = (rep.get(t.lib.as_str()), rep.get(p.lib.as_str())) {
                        paired.push(x / y);
                    }
                }
                Some(format!(
                    "bench {}/{}.{} tether={} best_peer={}:{} ratio={:.3}",
                    spec.scenario,
                    spec.case,
                    spec.metric,
                    fmt_num(t.value),
                    p.lib,
                    fmt_num(p.value),
                    median(&mut paired)
                ))
            }
            _ => None,
        };
        CellSummary { rows, line }
    }

    /// The Markdown table (one section per scenario) followed by the summary lines.
    pub fn markdown(&self, header: &str) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "{header}\n");
        let mut scenario = "";
        let mut lines = Vec::new();
        for spec in &self.cells {
            if self.cell_samples(spec).next().is_none() {
                continue;
            }
            let sum = self.summarize(spec);
            if spec.scenario != scenario {
                scenario = &spec.scenario;
                let extra_keys: Vec<&str> = sum.rows[0].extra.iter().map(|(k, _)| *k).collect();
                let _ = writeln!(out, "\n### {scenario}\n");
                let _ = write!(
                    out,
                    "| case | library | {} (median) | vs best (median of paired) |",
                    spec.metric
                );
                for k in &extra_keys {
                    let _ = write!(out, " {k} |");
                }
                let _ = write!(out, " reps |\n|---|---|---:|---:|");
                for _ in &extra_keys {
                    let _ = write!(out, "---:|");
                }
                let _ = writeln!(out, "---:|");
            }
            for r in &sum.rows {
                let mark = if spec.is_reference(&r.lib) {
                    " (ref)"
                } else {
                    ""
                };
                let _ = write!(
                    out,
                    "| {} | {}{} | {} | {:.3} |",
                    spec.case,
                    r.lib,
                    mark,
                    fmt_num(r.value),
                    r.vs_best
                );
                for (_, v) in &r.extra {
                    let _ = write!(out, " {} |", fmt_num(*v));
                }
                let _ = writeln!(out, " {} |", r.reps);
            }
            if let Some(l) = sum.line {
                lines.push(l);
            }
        }
        let _ = writeln!(out, "\n```text");
        for l in &lines {
            let _ = writeln!(out, "{l}");
        }
        let _ = writeln!(out, "```");
        out
    }

    pub fn jsonl(&self) -> String {
        let mut out = String::new();
        for s in &self.samples {
            let _ = writeln!(out, "{}", json_line(s));
        }
        out
    }
}

/// Three significant digits, without exponent noise for the usual ranges.
pub fn fmt_num(v: f64) -> String {
    if !v.is_finite() {
        return "-".into();
    }
    let a = v.abs();
    if a >= 100.0 {
        format!("{:.0}", v)
    } else if a >= 10.0 {
        format!("{:.1}", v)
    } else if a >= 1.0 {
        format!("{:.2}", v)
    } else {
        format!("{:.3}", v)
    }
}

fn json_num(v: f64) -> String {
    if v.is_finite() {
        format!("{v}")
    } else {
        "null".into()
    }
}

fn json_str(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

pub fn json_line(s: &Sample) -> String {
    let mut o = format!(
        "{{\"scenario\":{},\"case\":{},\"lib\":{},\"rep\":{},\"value\":{}",
        json_str(&s.scenario),
        json_str(&s.case),
        json_str(&s.lib),
        s.rep,
        json_num(s.value)
    );
    for (k, v) in &s.extra {
        let _ = write!(o, ",{}:{}", json_str(k), json_num(*v));
    }
    o.push('}');
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(scenario: &str, case: &str, metric: &'static str, higher: bool) -> CellSpec {
        CellSpec {
            scenario: scenario.into(),
            case: case.into(),
            metric,
            higher_is_better: higher,
            reference_only: vec![],
        }
    }

    fn report(spec: &CellSpec, samples: &[(&str, usize, f64)]) -> Report {
        let mut r = Report::default();
        r.add_cell(spec.clone());
        for &(lib, rep, value) in samples {
            r.push(Sample {
                scenario: spec.scenario.clone(),
                case: spec.case.clone(),
                lib: lib.into(),
                rep,
                value,
                extra: vec![],
            });
        }
        r
    }

    /// The line other tools parse: `bench <scenario>/<case>.<metric> tether=<x>
    /// best_peer=<name>:<y> ratio=<r>`, where the best peer is the one with the best median and
    /// the ratio is the median of the per-repetition ratios against that peer (paired), not the
    /// ratio of the medians.
    #[test]
    fn the_summary_line_keeps_its_form_and_pairs_repetitions() {
        let s = spec("decode", "bin-16B", "msg_per_cpu_s", true);
        let r = report(
            &s,
            &[
                ("tether", 0, 10.0),
                ("fast", 0, 20.0),
                ("slow", 0, 5.0),
                ("tether", 1, 60.0),
                ("fast", 1, 20.0),
                ("slow", 1, 10.0),
                ("tether", 2, 12.0),
                ("fast", 2, 24.0),
                ("slow", 2, 6.0),
            ],
        );
        let line = r.summarize(&s).line.expect("a summary line");
        // Paired: 10/20, 60/20, 12/24 -> median 0.5 (the medians' ratio would be 12/20 = 0.6).
        assert_eq!(
            line,
            "bench decode/bin-16B.msg_per_cpu_s tether=12.0 best_peer=fast:20.0 ratio=0.500"
        );
        assert!(
            r.markdown("# run").contains(&line),
            "the table ends with the lines"
        );
    }

    /// Lower is better for memory; an outside reference (Bun) is shown but is never the best
    /// peer, even when it is the best; "tether" is the first tether row (an adapter).
    #[test]
    fn lower_is_better_and_references_never_count() {
        let s = spec("memory", "idle-10000", "bytes_per_conn", false);
        let r = report(
            &s,
            &[
                ("tether-tokio", 0, 2000.0),
                ("tether-smol", 0, 1800.0),
                ("fastwebsockets", 0, 7000.0),
                ("yawc", 0, 12000.0),
                ("bun", 0, 1000.0),
            ],
        );
        let sum = r.summarize(&s);
        assert_eq!(
            sum.line.as_deref(),
            Some(
                "bench memory/idle-10000.bytes_per_conn tether=2000 best_peer=fastwebsockets:7000 ratio=0.286"
            )
        );
        let bun = sum.rows.iter().find(|row| row.lib == "bun").unwrap();
        assert!(
            (bun.vs_best - 1000.0 / 1800.0).abs() < 1e-9,
            "{}",
            bun.vs_best
        );
        assert!(r.markdown("# run").contains("| bun (ref) |"));
    }
}
