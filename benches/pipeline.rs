//! The whole pipeline, as a user runs it: read and check the source, lower
//! it, read the snapshot, plan, render. On generated estates of 1,000,
//! 10,000 and 100,000 agents, each with a snapshot of exactly what its
//! source lowers to (so the plan is empty, the common case on a pull
//! request that changes nothing here).
//!
//! Goals (issue 20): 10,000 agents end to end (check, snapshot, plan, text)
//! in under 1 s and 300 MiB peak; 100,000 in under 10 s and 3 GiB; each
//! step linear (10 times the estate, at most 11 times the time).
//!
//! Run: `cargo bench --bench pipeline`. First, the end-to-end figures of
//! the real binary (`writ check`, `writ plan --snapshot`: wall time and
//! peak resident memory, the best of three); then each step in-process,
//! with the most memory it held at once (divan's allocation profiler).
//! `WRIT_BENCH_AGENTS=10000` limits both to one size; `WRIT_BENCH_KEEP=1`
//! keeps the generated estates (in the temporary folder) for profiling.

// A benchmark stops at the first thing that is not as it expects.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "common/child.rs"]
mod child;
#[path = "common/estate.rs"]
mod estate;

use divan::Bencher;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;
use writ_compiler::lower::Desired;
use writ_compiler::plan::{Plan, PlanOptions};
use writ_compiler::resource::Resource;
use writ_compiler::snapshot::Snapshot;
use writ_compiler::values::Date;
use writ_compiler::{CheckOptions, Checked, SourceMap};

#[global_allocator]
static ALLOC: divan::AllocProfiler = divan::AllocProfiler::system();

const TODAY: Date = Date {
    year: 2026,
    month: 11,
    day: 28,
};

const SIZES: [usize; 3] = [1_000, 10_000, 100_000];

fn sizes() -> Vec<usize> {
    match std::env::var("WRIT_BENCH_AGENTS") {
        Ok(only) => vec![only.parse().expect("WRIT_BENCH_AGENTS is a number")],
        Err(_) => SIZES.to_vec(),
    }
}

fn main() {
    // The generator's own process (see `end_to_end`).
    if let Ok(agents) = std::env::var("WRIT_BENCH_GENERATE") {
        let estate = write_estate(agents.parse().expect("a number of agents"));
        println!(
            "{} {} {}",
            estate.lines, estate.objects, estate.snapshot_bytes
        );
        return;
    }
    // `cargo test --benches` and `--list` only check that it runs.
    let quick = std::env::args().any(|a| a == "--test" || a == "--list");
    if !quick {
        end_to_end();
    }
    divan::main();
}

/// An estate on disk: its folder (source and `writ.toml`) and snapshot.
struct OnDisk {
    folder: PathBuf,
    snapshot: PathBuf,
    lines: usize,
    snapshot_bytes: usize,
    objects: usize,
}

fn estate_folder(agents: usize) -> PathBuf {
    std::env::temp_dir().join(format!("writ-bench-pipeline-{agents}"))
}

fn snapshot_file(agents: usize) -> PathBuf {
    std::env::temp_dir().join(format!("writ-bench-pipeline-{agents}.json"))
}

fn write_estate(agents: usize) -> OnDisk {
    let folder = estate_folder(agents);
    let _ = std::fs::remove_dir_all(&folder);
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join("writ.toml"), "[project]\nname = \"bench\"\n").unwrap();
    let mut lines = 0;
    for (name, text) in estate::files(agents / 2) {
        lines += text.lines().count();
        std::fs::write(folder.join(name), text).unwrap();
    }
    let observed = estate::applied(lowered(&checked(&estate::sources(agents / 2))));
    let objects = observed.len();
    let text = Snapshot::from_resources(observed).to_json();
    let snapshot = snapshot_file(agents);
    std::fs::write(&snapshot, &text).unwrap();
    OnDisk {
        folder,
        snapshot,
        lines,
        snapshot_bytes: text.len(),
        objects,
    }
}

/// This process's resident memory now (bytes).
fn resident() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn best_of_three(args: &[&std::ffi::OsStr]) -> (Duration, u64) {
    child::best_of_three(|| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_writ"));
        command.args(args);
        command
    })
}

fn end_to_end() {
    println!("end to end, the release binary (best of three; peak resident memory):");
    println!(
        "{:>8} {:>9} {:>8} {:>10} {:>14} {:>14}",
        "agents", "lines", "objects", "snapshot", "writ check", "writ plan"
    );
    for agents in sizes() {
        // A child starts as a copy of this process (`vfork`), and Linux
        // counts this process's peak in the child's: the estate is made in
        // a process of its own, so that this one stays small.
        let made = std::process::Command::new(std::env::current_exe().unwrap())
            .env("WRIT_BENCH_GENERATE", agents.to_string())
            .output()
            .unwrap();
        assert!(
            made.status.success(),
            "{}",
            String::from_utf8_lossy(&made.stderr)
        );
        let figures: Vec<usize> = String::from_utf8_lossy(&made.stdout)
            .split_whitespace()
            .map(|n| n.parse().unwrap())
            .collect();
        let estate = OnDisk {
            folder: estate_folder(agents),
            snapshot: snapshot_file(agents),
            lines: figures[0],
            objects: figures[1],
            snapshot_bytes: figures[2],
        };
        assert!(
            resident() < 64 << 20,
            "this process holds {} MiB: the peaks would be its",
            resident() >> 20
        );
        let folder = estate.folder.as_os_str();
        let check = best_of_three(&["check".as_ref(), folder]);
        let plan = best_of_three(&[
            "plan".as_ref(),
            folder,
            "--snapshot".as_ref(),
            estate.snapshot.as_os_str(),
        ]);
        let show = |(wall, rss): (Duration, u64)| {
            format!("{:.2} s {:>4} MiB", wall.as_secs_f64(), rss >> 20)
        };
        println!(
            "{agents:>8} {:>9} {:>8} {:>7} MB {:>14} {:>14}",
            estate.lines,
            estate.objects,
            estate.snapshot_bytes / 1_000_000,
            show(check),
            show(plan)
        );
        if std::env::var_os("WRIT_BENCH_KEEP").is_some() {
            println!(
                "         kept: {} and {}",
                estate.folder.display(),
                estate.snapshot.display()
            );
        } else {
            let _ = std::fs::remove_dir_all(&estate.folder);
            let _ = std::fs::remove_file(&estate.snapshot);
        }
    }
    println!();
}

fn checked(sources: &SourceMap) -> Checked {
    let checked = writ_compiler::check(sources, &CheckOptions { today: TODAY });
    assert!(!checked.has_errors(), "{:?}", checked.diagnostics.first());
    checked
}

fn lowered(checked: &Checked) -> Desired {
    let desired = writ_compiler::lower::lower(&checked.model, "bench");
    assert!(
        !desired.diagnostics.iter().any(|d| d.is_error()),
        "{:?}",
        desired.diagnostics.first()
    );
    desired
}

fn plan_of(desired: &Desired, observed: &[Resource]) -> Plan {
    writ_compiler::plan::plan(
        desired,
        observed,
        &PlanOptions {
            today: TODAY,
            max_key_age_days: None,
        },
    )
}

/// Each size's inputs, made once for every step's benchmark.
struct Inputs {
    sources: SourceMap,
    checked: Checked,
    desired: Desired,
    snapshot: String,
    observed: Vec<Resource>,
    plan: Plan,
}

fn inputs(agents: usize) -> &'static Inputs {
    static MADE: OnceLock<std::sync::Mutex<Vec<(usize, &'static Inputs)>>> = OnceLock::new();
    let made = MADE.get_or_init(Default::default);
    let mut made = made.lock().unwrap();
    if let Some((_, inputs)) = made.iter().find(|(n, _)| *n == agents) {
        return inputs;
    }
    let sources = estate::sources(agents / 2);
    let checked = checked(&sources);
    let desired = lowered(&checked);
    let snapshot = Snapshot::from_resources(estate::applied(desired.clone())).to_json();
    // As `writ plan` reads it: sharing what is as the source wants.
    let observed: Vec<Resource> = Snapshot::parse_sharing(&snapshot, &desired.resources)
        .unwrap()
        .into_resources()
        .collect();
    let plan = plan_of(&desired, &observed);
    assert!(!plan.has_changes(), "{:?}", plan.changes.first());
    let inputs: &'static Inputs = Box::leak(Box::new(Inputs {
        sources,
        checked,
        desired,
        snapshot,
        observed,
        plan,
    }));
    made.push((agents, inputs));
    inputs
}

fn args() -> Vec<usize> {
    sizes()
}

#[divan::bench(args = args(), sample_count = 5)]
fn check(bencher: Bencher, agents: usize) {
    let inputs = inputs(agents);
    // As the binary does on this machine: files parsed on two threads.
    bencher.bench(|| writ_compiler::check_with(&inputs.sources, &CheckOptions { today: TODAY }, 2));
}

#[divan::bench(args = args(), sample_count = 5)]
fn lower(bencher: Bencher, agents: usize) {
    let inputs = inputs(agents);
    bencher.bench(|| writ_compiler::lower::lower(&inputs.checked.model, "bench"));
}

#[divan::bench(args = args(), sample_count = 5)]
fn snapshot_read(bencher: Bencher, agents: usize) {
    let inputs = inputs(agents);
    bencher.bench(|| Snapshot::parse_sharing(&inputs.snapshot, &inputs.desired.resources).unwrap());
}

#[divan::bench(args = args(), sample_count = 5)]
fn plan(bencher: Bencher, agents: usize) {
    let inputs = inputs(agents);
    bencher.bench(|| plan_of(&inputs.desired, &inputs.observed));
}

#[divan::bench(args = args(), sample_count = 5)]
fn render_text(bencher: Bencher, agents: usize) {
    let inputs = inputs(agents);
    bencher.bench(|| writ::render::text(&inputs.plan, false));
}

#[divan::bench(args = args(), sample_count = 5)]
fn render_markdown(bencher: Bencher, agents: usize) {
    let inputs = inputs(agents);
    bencher.bench(|| writ::render::markdown(&inputs.plan));
}

#[divan::bench(args = args(), sample_count = 5)]
fn render_json(bencher: Bencher, agents: usize) {
    let inputs = inputs(agents);
    bencher.bench(|| writ::render::json(&inputs.plan));
}
