//! Findings on the graph (`writ check --graph`, and plans): a workload that
//! can act as more agents than the project allows (`writ::wide_reach`).

use super::{EdgeKind, Graph, Held, NodeKind};
use crate::diagnostic::{Code, Diagnostic, Label};
use std::collections::{HashMap, VecDeque};

/// The findings of a graph built from the source: each workload that can
/// act as more than `max_identities` agents (directly, or through their
/// delegates), pointing at the `runs_on` lines that trust it.
pub fn findings(graph: &Graph, max_identities: usize) -> Vec<Diagnostic> {
    let mut found = Vec::new();
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
