//! Diffing and rendering plans for a large estate.
//! Goals: 10k agents with 1% changed planned in under 100 ms on one core in
//! release, and the markdown and JSON renderings under 1 s (issue 3); the
//! diff growing linearly, 100k agents in under 1 s and at most 11 times the
//! 10k figure (issue 10).
//!
//! Run: `cargo bench --bench plan`

// A benchmark stops at the first thing that is not as it expects.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use divan::Bencher;
use writ_compiler::lower::{self, Desired};
use writ_compiler::plan::{self, Plan, PlanOptions};
use writ_compiler::resource::Resource;
use writ_compiler::values::Date;
use writ_compiler::{CheckOptions, SourceMap};

fn main() {
    divan::main();
}

const TODAY: Date = Date {
    year: 2026,
    month: 11,
    day: 28,
};

/// `agents` agents, each with a role trusted by a Lambda and two grants.
fn desired(agents: usize, variant: usize) -> Desired {
    let mut text = String::from("provider aws prod {\n  account = \"123456789012\"\n}\n");
    for i in 0..agents {
        // Every hundredth agent differs between the two variants.
        let extra = if variant == 1 && i % 100 == 0 {
            ", s3:PutObject"
        } else {
            ""
        };
        text.push_str(&format!(
            "agent a{i} {{\n  owner = \"team-{}\"\n  ttl = 1h\n  runs_on aws.prod service \"lambda.amazonaws.com\"\n  aws.prod allow s3:GetObject{extra} on \"arn:aws:s3:::bucket-{i}/*\"\n  aws.prod allow s3:ListBucket on \"arn:aws:s3:::bucket-{i}\"\n}}\n",
            i % 50
        ));
    }
    let mut sources = SourceMap::new();
    sources.add("estate.writ", text);
    let checked = writ_compiler::check(&sources, &CheckOptions { today: TODAY });
    assert!(!checked.has_errors());
    lower::lower(&checked.model, "bench")
}

struct Estate {
    desired: Desired,
    observed: Vec<Resource>,
}

fn estate(agents: usize) -> Estate {
    Estate {
        desired: desired(agents, 1),
        observed: desired(agents, 0).resources,
    }
}

fn make_plan(estate: &Estate) -> Plan {
    plan::plan(
        &estate.desired,
        &estate.observed,
        &PlanOptions {
            today: TODAY,
            max_key_age_days: None,
        },
    )
}

#[divan::bench(args = [1_000, 10_000, 100_000], sample_count = 10)]
fn diff(bencher: Bencher, agents: usize) {
    let estate = estate(agents);
    assert_eq!(make_plan(&estate).changes.len(), agents / 100 * 2);
    bencher.bench(|| make_plan(&estate));
}

#[divan::bench(args = [10_000], sample_count = 10)]
fn render_text(bencher: Bencher, agents: usize) {
    let plan = make_plan(&estate(agents));
    bencher.bench(|| writ::render::text(&plan, false));
}

#[divan::bench(args = [10_000], sample_count = 10)]
fn render_markdown(bencher: Bencher, agents: usize) {
    let plan = make_plan(&estate(agents));
    bencher.bench(|| writ::render::markdown(&plan));
}

#[divan::bench(args = [10_000], sample_count = 10)]
fn render_json(bencher: Bencher, agents: usize) {
    let plan = make_plan(&estate(agents));
    bencher.bench(|| writ::render::json(&plan));
}
