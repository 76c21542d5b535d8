//! `writ graph`: who can reach what, through which chain (docs/graph.md).
//! Built from the checked source (each grant with a request writ's
//! evaluator allows), and with `--snapshot` or `--live`, what the observed
//! state holds beyond it.

use crate::error::{CliError, Outcome};
use crate::live::{self, Scope};
use crate::pipeline::{checked, load, show_findings};
use crate::report;
use serde_json::json;
use std::io::Write;
use std::path::Path;
use writ_compiler::graph::{self, Chain, Graph, NodeKind};
use writ_provider_core::Retrier;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GraphFormat {
    /// Indented chains, for people.
    Text,
    /// One JSON object (docs/graph.schema.json).
    Json,
    /// Graphviz DOT source.
    Dot,
    /// A Mermaid flowchart (GitHub draws it in markdown).
    Mermaid,
    /// An SVG picture, laid out by writ.
    Svg,
    /// One self-contained HTML page: the picture, with search and filtering.
    Html,
}

/// What `writ graph` was asked.
pub struct Asked<'a> {
    /// Add what this recorded state holds and the source does not.
    pub snapshot: Option<&'a Path>,
    /// ...or what the live providers hold.
    pub live: bool,
    pub from: Option<&'a str>,
    pub to: Option<&'a str>,
    pub agent: Option<&'a str>,
    pub format: GraphFormat,
}

pub fn run(out: &mut impl Write, path: &Path, asked: Asked) -> Outcome {
    let project = load(path)?;
    let checked = checked(&project)?;
    if checked.has_errors() {
        show_findings(&project, &checked.diagnostics)?;
        return Err(format!(
            "no graph: the source has errors ({}); `writ check` lists them",
            report::summary(&checked.diagnostics)
        )
        .into());
    }
    let model = &checked.model;
    let mut graph = Graph::build(model, &project.name);
    let observed = match (asked.snapshot, asked.live) {
        (Some(file), _) => Some(live::snapshot_state(file, &Scope::new(model, &[])?, &[])?),
        (None, true) => Some(live::observe(
            &project,
            model,
            &Scope::new(model, &[])?,
            &Retrier::default_policy(),
        )?),
        (None, false) => None,
    };
    if let Some(observed) = observed {
        let desired = writ_compiler::lower::lower(model, &project.name);
        let added = graph.observe(model, &desired, &observed.resources);
        let source = match &observed.snapshot {
            Some(file) => format!("the snapshot `{}`", file.display()),
            None => "the live providers".to_string(),
        };
        eprintln!(
            "{source}: {} the source does not declare",
            match added {
                0 => "no access".to_string(),
                1 => "1 link of access".to_string(),
                n => format!("{n} links of access"),
            }
        );
    }
    let title = format!("writ graph: {}", project.name);
    let (question, view, chains, text) = if let Some(from) = asked.from {
        let start = graph.named(from).map_err(CliError::Message)?;
        let tree = graph.from(start);
        let text = graph::text_tree(&graph, &tree);
        (
            json!({"from": graph.nodes[start].id}),
            tree.view(&graph),
            Vec::new(),
            text,
        )
    } else if let Some(to) = asked.to {
        let found = graph.to(model, to).map_err(CliError::Message)?;
        let header = match found.chains.len() {
            0 => format!("nothing reaches {to}"),
            1 => format!("1 chain reaches {to}:"),
            n => format!("{n} chains reach {to}, fewest hops first:"),
        };
        let text = graph::text_chains(&graph, &header, &found.chains, found.truncated);
        let view = found.view(&graph);
        (json!({"to": to}), view, found.chains, text)
    } else if let Some(agent) = asked.agent {
        let node = graph
            .find(&format!("agent:{}", agent.trim_start_matches("agent:")))
            .ok_or_else(|| CliError::Message(agent_missing(&graph, agent)))?;
        let (paths, truncated, tree) = graph.around(node);
        let chains: Vec<Chain> = paths
            .into_iter()
            .map(|edges| Chain {
                edges,
                allowed: None,
                note: None,
            })
            .collect();
        let id = &graph.nodes[node].id;
        let header = match chains.len() {
            0 => format!(
                "nothing open leads into {id}: no workload or parent it is reached from now"
            ),
            _ => format!("what reaches {id}:"),
        };
        let mut text = graph::text_chains(&graph, &header, &chains, truncated);
        text.push_str(&format!("\nwhat {id} reaches:\n"));
        text.push_str(&graph::text_tree(&graph, &tree));
        let mut view = tree.view(&graph);
        for chain in &chains {
            for &edge in &chain.edges {
                if !view.edges.contains(&edge) {
                    view.edges.push(edge);
                    let from = graph.edges[edge].from;
                    if !view.nodes.contains(&from) {
                        view.nodes.push(from);
                    }
                }
            }
        }
        (json!({"agent": id}), view, chains, text)
    } else {
        (json!({}), graph.whole(), Vec::new(), whole_text(&graph))
    };
    match asked.format {
        GraphFormat::Text => out.write_all(text.as_bytes())?,
        GraphFormat::Json => {
            let value = graph::json(&graph, &view, question, &chains);
            let text = serde_json::to_string_pretty(&value)
                .map_err(|error| CliError::Message(format!("the graph as JSON: {error}")))?;
            writeln!(out, "{text}")?;
        }
        GraphFormat::Dot => out.write_all(graph::dot(&graph, &view).as_bytes())?,
        GraphFormat::Mermaid => out.write_all(graph::mermaid(&graph, &view).as_bytes())?,
        GraphFormat::Svg => out.write_all(graph::svg(&graph, &view).as_bytes())?,
        GraphFormat::Html => out.write_all(graph::html(&graph, &view, &title).as_bytes())?,
    }
    Ok(0)
}

/// No agent of that name: the closest, or some that exist.
fn agent_missing(graph: &Graph, agent: &str) -> String {
    let agents = graph.nodes.iter().filter(|n| n.kind == NodeKind::Agent);
    let names: Vec<&str> = agents.map(|n| n.id.trim_start_matches("agent:")).collect();
    match writ_compiler::suggest::closest(agent, names.iter().copied()) {
        Some(closest) => format!("no agent named `{agent}`; did you mean `{closest}`?"),
        None => format!("no agent named `{agent}`"),
    }
}

/// The whole graph as text: from each place requests start (a workload, or
/// an agent nothing authenticates as), everything it reaches.
fn whole_text(graph: &Graph) -> String {
    let mut roots: Vec<usize> = (0..graph.nodes.len())
        .filter(|&n| {
            let kind = graph.nodes[n].kind;
            kind.is_workload() || (kind == NodeKind::Agent && graph.incoming[n].is_empty())
        })
        .collect();
    roots.sort_by(|&a, &b| graph.nodes[a].id.cmp(&graph.nodes[b].id));
    let mut text = String::new();
    for (index, root) in roots.into_iter().enumerate() {
        if index > 0 {
            text.push('\n');
        }
        text.push_str(&graph::text_tree(graph, &graph.from(root)));
    }
    if text.is_empty() {
        text.push_str("the project declares no agents\n");
    }
    text
}
