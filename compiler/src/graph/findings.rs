//! Findings on the graph (`writ check --graph`, and plans): a workload that
//! can act as more agents than the project allows (`writ::wide_reach`), and
//! agents that can become one another (`writ::trust_cycle`).

use super::{EdgeKind, Graph, Held, NodeKind};
use crate::diagnostic::{Code, Diagnostic, Label};
use std::collections::{HashMap, VecDeque};

/// The findings of a graph built from the source: its trust cycles, and
/// each workload that can act as more than `max_identities` agents
/// (directly, through delegates, or by becoming others), pointing at the
/// `runs_on` lines that trust it.
pub fn findings(graph: &Graph, max_identities: usize) -> Vec<Diagnostic> {
    let mut found = trust_cycles(graph);
    for (index, node) in graph.nodes.iter().enumerate() {
        if !node.kind.is_workload() {
            continue;
        }
        let agents = graph.agents_reached(index);
        if agents.len() <= max_identities {
            continue;
        }
        let mut spans: Vec<_> = graph.outgoing[index]
            .iter()
            .map(|&e| &graph.edges[e])
            .filter(|e| e.kind == EdgeKind::AuthenticatesAs && e.open())
            .filter_map(|e| e.span)
            .collect();
        spans.sort_by_key(|s| (s.file, s.start));
        let Some((&first, others)) = spans.split_first() else {
            continue;
        };
        let mut names: Vec<&str> = agents
            .iter()
            .map(|&a| graph.nodes[a].id.trim_start_matches("agent:"))
            .collect();
        names.sort_unstable();
        let shown = match names.len() {
            n if n > 6 => format!("{}, and {} more", names[..6].join(", "), n - 6),
            _ => names.join(", "),
        };
        let mut diagnostic = Diagnostic::new(
            Code::WideReach,
            format!(
                "`{}` can act as {} agents ({shown}), more than `[graph] max_identities` ({max_identities}) allows",
                node.id,
                agents.len()
            ),
            Label::new(first, "this workload is trusted here"),
        )
        .with_help(
            "a compromise of one of its workloads reaches every one of them: give each agent a workload of its own (a service account, a workflow pinned to an environment), or raise `max_identities` under `[graph]` in writ.toml",
        );
        for &span in others.iter().take(8) {
            diagnostic = diagnostic.with_label(span, "and here");
        }
        found.push(diagnostic);
    }
    found
}

/// Agents that can become one another, round a cycle of grants: each
/// holds what all of them hold, whatever the source gives it alone
/// (`writ::trust_cycle`). One finding per cycle, at the grant that lets
/// the first agent (by name) become the next, the others as labels.
pub fn trust_cycles(graph: &Graph) -> Vec<Diagnostic> {
    let agents: Vec<usize> = (0..graph.nodes.len())
        .filter(|&n| graph.nodes[n].kind == NodeKind::Agent)
        .collect();
    // Which agents each reaches by `may become` alone.
    let becomes = |from: usize| -> Vec<usize> {
        let mut seen = vec![from];
        let mut queue = VecDeque::from([from]);
        while let Some(at) = queue.pop_front() {
            for &edge in &graph.outgoing[at] {
                let e = &graph.edges[edge];
                if e.kind == EdgeKind::MayBecome && e.open() && !seen.contains(&e.to) {
                    seen.push(e.to);
                    queue.push_back(e.to);
                }
            }
        }
        seen
    };
    let reach: HashMap<usize, Vec<usize>> = agents
        .iter()
        .filter(|&&a| {
            graph.outgoing[a]
                .iter()
                .any(|&e| graph.edges[e].kind == EdgeKind::MayBecome)
        })
        .map(|&a| (a, becomes(a)))
        .collect();
    let mut found = Vec::new();
    let mut reported: Vec<usize> = Vec::new();
    let mut starts: Vec<&usize> = reach.keys().collect();
    starts.sort_by_key(|&&a| &graph.nodes[a].id);
    for &start in starts {
        if reported.contains(&start) {
            continue;
        }
        // The agents both reachable from `start` and reaching it back.
        let mut cycle: Vec<usize> = reach[&start]
            .iter()
            .copied()
            .filter(|&other| {
                other == start || reach.get(&other).is_some_and(|r| r.contains(&start))
            })
            .collect();
        if cycle.len() < 2 {
            continue;
        }
        cycle.sort_by_key(|&a| &graph.nodes[a].id);
        reported.extend(&cycle);
        let edges: Vec<&super::Edge> = cycle
            .iter()
            .flat_map(|&a| graph.outgoing[a].iter().map(|&e| &graph.edges[e]))
            .filter(|e| e.kind == EdgeKind::MayBecome && cycle.contains(&e.to))
            .collect();
        let Some(first) = edges.iter().find_map(|e| e.span.map(|s| (s, e))) else {
            continue;
        };
        let names: Vec<&str> = cycle
            .iter()
            .map(|&a| graph.nodes[a].id.trim_start_matches("agent:"))
            .collect();
        let mut diagnostic = Diagnostic::new(
            Code::TrustCycle,
            format!(
                "{} can become one another: each holds what all of them hold",
                names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
            ),
            Label::new(
                first.0,
                format!(
                    "lets `{}` become `{}`",
                    graph.nodes[first.1.from].id.trim_start_matches("agent:"),
                    graph.nodes[first.1.to].id.trim_start_matches("agent:")
                ),
            ),
        )
        .with_help("narrow the grants that let an agent become another (`writ graph --agent NAME` shows them), or merge the agents if they are one");
        // One label a grant, however many of the cycle's agents it lets
        // its holder become.
        let mut labelled = vec![first.0];
        for edge in edges.iter() {
            if labelled.len() > 8 {
                break;
            }
            if let Some(span) = edge.span.filter(|s| !labelled.contains(s)) {
                labelled.push(span);
                diagnostic = diagnostic.with_label(
                    span,
                    format!(
                        "lets `{}` become `{}`",
                        graph.nodes[edge.from].id.trim_start_matches("agent:"),
                        graph.nodes[edge.to].id.trim_start_matches("agent:")
                    ),
                );
            }
        }
        found.push(diagnostic);
    }
    found
}

impl Graph {
    /// The agents a workload can act as, through open edges (its own
    /// trust, delegation, and one agent becoming another), as `from` would
    /// reach them, walking only what leads to agents.
    pub fn agents_reached(&self, node: usize) -> Vec<usize> {
        let mut held: HashMap<usize, Held> = HashMap::new();
        held.insert(node, self.start(node));
        let mut queue = VecDeque::from([node]);
        while let Some(at) = queue.pop_front() {
            let have = held.get(&at).cloned().unwrap_or_default();
            for &edge in &self.outgoing[at] {
                if self.edges[edge].kind == EdgeKind::MayDo {
                    continue;
                }
                let Some(got) = self.cross(edge, &have) else {
                    continue;
                };
                let target = self.edges[edge].to;
                if target == node {
                    continue;
                }
                let entry = held.entry(target).or_default();
                let fresh = entry.is_empty() && !got.is_empty();
                if fresh || !got.is_subset(entry) {
                    entry.extend(got);
                    queue.push_back(target);
                }
            }
        }
        let mut agents: Vec<usize> = held
            .into_keys()
            .filter(|&n| n != node && self.nodes[n].kind == NodeKind::Agent)
            .collect();
        agents.sort_unstable();
        agents
    }
}
