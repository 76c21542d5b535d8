//! The access graph (issue 16) of 10,000 agents with their workloads and
//! resources. Goals: built in under 100 ms; a `--to` query answered in
//! under 10 ms; the SVG of a 200-node neighbourhood laid out in under
//! 200 ms.
//!
//! Run: `cargo bench --bench graph`

// A benchmark stops at the first thing that is not as it expects.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "common/estate.rs"]
mod estate;

use divan::Bencher;
use std::sync::OnceLock;
use writ_compiler::graph::{Graph, View};
use writ_compiler::model::Model;
use writ_compiler::values::Date;
use writ_compiler::CheckOptions;

fn main() {
    divan::main();
}

/// 5,000 teams: 10,000 agents (half of them delegates), 5,000 service
/// accounts, 10,000 buckets' patterns.
fn model() -> &'static Model {
    static MODEL: OnceLock<Model> = OnceLock::new();
    MODEL.get_or_init(|| {
        let options = CheckOptions {
            today: Date {
                year: 2026,
                month: 11,
                day: 28,
            },
        };
        let checked = writ_compiler::check(&estate::sources(5_000), &options);
        assert!(!checked.has_errors(), "{:?}", checked.diagnostics.first());
        assert_eq!(checked.model.agents.len(), 10_000);
        checked.model
    })
}

fn graph() -> &'static Graph {
    static GRAPH: OnceLock<Graph> = OnceLock::new();
    GRAPH.get_or_init(|| Graph::build(model(), "bench"))
}

#[divan::bench(sample_count = 10)]
fn build(bencher: Bencher) {
    let model = model();
    bencher.bench(|| Graph::build(model, "bench"));
}

#[divan::bench(sample_count = 20)]
fn to_a_bucket(bencher: Bencher) {
    let (model, graph) = (model(), graph());
    bencher.bench(|| {
        let found = graph
            .to(model, "arn:aws:s3:::bucket-2500/report.csv")
            .unwrap();
        // The team's agent, and its delegate directly and through it.
        assert_eq!(found.chains.len(), 2, "{:?}", found.chains);
        found
    });
}

#[divan::bench(sample_count = 20)]
fn svg_of_200_nodes(bencher: Bencher) {
    let graph = graph();
    // The first teams' part of the graph, edge by edge, to 200 nodes.
    let mut view = View::default();
    for edge in 0..graph.edges.len() {
        if view.nodes.len() >= 200 {
            break;
        }
        view.edges.push(edge);
        for node in [graph.edges[edge].from, graph.edges[edge].to] {
            if !view.nodes.contains(&node) {
                view.nodes.push(node);
            }
        }
    }
    assert!(view.nodes.len() >= 200);
    bencher.bench(|| writ_compiler::graph::svg(graph, &view));
}
