//! How long parsing, resolving and checking take as projects grow.
//! Goal (issue 2): 100k lines in under 1 s on one core in release, and cost
//! growing linearly (10× the input, at most 11× the time).
//!
//! Run: `cargo bench --bench check`

// A benchmark stops at the first thing that is not as it expects.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "common/estate.rs"]
mod estate;

use divan::Bencher;
use writ_compiler::values::Date;
use writ_compiler::{CheckOptions, SourceMap};

fn main() {
    divan::main();
}

const OPTIONS: CheckOptions = CheckOptions {
    today: Date {
        year: 2026,
        month: 11,
        day: 28,
    },
};

/// A project of about `lines` lines (32 lines a team).
fn project(lines: usize) -> SourceMap {
    estate::sources(lines.div_ceil(32))
}

#[divan::bench(args = [1_000, 10_000, 100_000], sample_count = 10)]
fn parse_and_check(bencher: Bencher, lines: usize) {
    let sources = project(lines);
    let checked = writ_compiler::check(&sources, &OPTIONS);
    assert!(!checked.has_errors(), "{:?}", checked.diagnostics.first());
    bencher
        .counter(divan::counter::ItemsCount::new(lines))
        .bench(|| writ_compiler::check(&sources, &OPTIONS));
}

#[divan::bench(args = [1_000, 10_000, 100_000], sample_count = 10)]
fn parse_only(bencher: Bencher, lines: usize) {
    let sources = project(lines);
    bencher.bench(|| {
        sources
            .files()
            .filter(|(id, file)| writ_compiler::syntax::parse_file(*id, &file.text).is_ok())
            .count()
    });
}
