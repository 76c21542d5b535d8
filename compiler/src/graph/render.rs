//! The graph as text (indented chains), JSON (`docs/graph.schema.json`),
//! Graphviz DOT and Mermaid.

use super::{Chain, Edge, EdgeKind, Graph, NodeKind, Tree, View, Witness};
use serde_json::{json, Value};
use std::fmt::Write;

/// One edge in words, from its source's side: `may do s3:GetObject on
/// aws.prod arn:…`, `authenticates as agent:x (GitHub Actions OIDC: …)`.
pub fn edge_words(graph: &Graph, edge: &Edge) -> String {
    let target = &graph.nodes[edge.to].id;
    let mut words = match edge.kind {
        EdgeKind::MayDo => {
            let mut words = format!("may do {} on {target}", edge.actions.join(", "));
            if !edge.names.is_empty() {
                let _ = write!(words, " named {}", edge.names.join(", "));
            }
            for condition in &edge.conditions {
                let _ = write!(words, " when {condition}");
            }
            if !edge.via.is_empty() {
                let _ = write!(words, " (via {})", edge.via.join(" > "));
            }
            // Not a grant of the source: a delegation's minting, an App's
            // installation.
            if edge.grant.is_none() && !edge.observed {
                let _ = write!(words, " ({})", edge.how);
            }
            words
        }
        kind if edge.providers.is_empty() => format!("{} {target} ({})", kind.words(), edge.how),
        kind => format!(
            "{} {target} ({}; credentials in {})",
            kind.words(),
            edge.how,
            edge.providers.join(", ")
        ),
    };
    // Said in brackets where it was not said above; the marker either way.
    if edge.observed && edge.kind == EdgeKind::MayDo {
        let _ = write!(words, " [{}]", edge.how);
    } else if edge.observed {
        words.push_str(" [observed only]");
    }
    if let Some(blocked) = &edge.blocked {
        let _ = write!(words, " [blocked: {blocked}]");
    }
    words
}

fn witness_words(witness: &Witness) -> String {
    let mut words = format!("{} on {}", witness.action, witness.resource);
    if let Some(name) = &witness.name {
        let _ = write!(words, " named {name}");
    }
    if let Some(namespace) = &witness.namespace {
        let _ = write!(words, " in namespace {namespace}");
    }
    words
}

/// Everything a node reaches, as an indented tree: each edge on a line,
/// each node's own edges under the line that first reaches it.
pub fn text_tree(graph: &Graph, tree: &Tree) -> String {
    let root = &graph.nodes[tree.root];
    let mut out = format!("{} ({})\n", root.id, root.kind.words());
    if tree.hops.is_empty() {
        out.push_str("  reaches nothing\n");
        return out;
    }
    // Whether a later sibling follows, at each depth, for the guides.
    let mut more = Vec::new();
    for (index, hop) in tree.hops.iter().enumerate() {
        let last = !tree.hops[index + 1..]
            .iter()
            .take_while(|h| h.depth >= hop.depth)
            .any(|h| h.depth == hop.depth);
        more.truncate(hop.depth - 1);
        let mut line = String::new();
        for &open in &more {
            line.push_str(if open { "│  " } else { "   " });
        }
        line.push_str(if last { "└─ " } else { "├─ " });
        more.push(!last);
        let edge = &graph.edges[hop.edge];
        line.push_str(&edge_words(graph, edge));
        let target = &graph.nodes[edge.to];
        if !hop.expanded && edge.open() && !graph.outgoing[edge.to].is_empty() {
            let _ = write!(line, " (its reach is shown where it is first reached)");
        }
        if target.kind == NodeKind::Agent {
            if let Some(state) = &target.state {
                let _ = write!(line, " [{state}]");
            }
        }
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// Chains, numbered, each with its hops and the request shown allowed.
pub fn text_chains(graph: &Graph, header: &str, chains: &[Chain], truncated: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{header}");
    if chains.is_empty() {
        out.push_str("  none\n");
        return out;
    }
    for (index, chain) in chains.iter().enumerate() {
        let mut names = Vec::new();
        if let Some(&first) = chain.edges.first() {
            names.push(graph.nodes[graph.edges[first].from].id.as_str());
        }
        names.extend(
            chain
                .edges
                .iter()
                .map(|&e| graph.nodes[graph.edges[e].to].id.as_str()),
        );
        let _ = writeln!(out, "\n{}. {}", index + 1, names.join(" → "));
        for &edge in &chain.edges {
            let edge = &graph.edges[edge];
            let _ = writeln!(
                out,
                "   {} {}",
                graph.nodes[edge.from].id,
                edge_words(graph, edge)
            );
        }
        if let Some(witness) = &chain.allowed {
            let _ = writeln!(out, "   allowed, for example: {}", witness_words(witness));
        }
        if let Some(note) = &chain.note {
            let _ = writeln!(out, "   note: {note}");
        }
    }
    if truncated {
        let _ = writeln!(
            out,
            "\n(only the first {} chains are listed)",
            super::MAX_CHAINS
        );
    }
    out
}

/// The view as JSON: the question, its nodes and edges (edges name their
/// nodes by id), and any chains (lists of indexes into `edges`).
pub fn json(graph: &Graph, view: &View, question: Value, chains: &[Chain]) -> Value {
    let position: std::collections::HashMap<usize, usize> = view
        .edges
        .iter()
        .enumerate()
        .map(|(at, &edge)| (edge, at))
        .collect();
    let nodes: Vec<Value> = view
        .nodes
        .iter()
        .map(|&n| serde_json::to_value(&graph.nodes[n]).unwrap_or(Value::Null))
        .collect();
    let edges: Vec<Value> = view
        .edges
        .iter()
        .map(|&e| {
            let edge = &graph.edges[e];
            let mut value = serde_json::to_value(edge).unwrap_or(Value::Null);
            value["from"] = json!(graph.nodes[edge.from].id);
            value["to"] = json!(graph.nodes[edge.to].id);
            value
        })
        .collect();
    let chains: Vec<Value> = chains
        .iter()
        .map(|chain| {
            let mut value = json!({
                "edges": chain.edges.iter().filter_map(|e| position.get(e)).collect::<Vec<_>>(),
            });
            if let Some(witness) = &chain.allowed {
                value["allowed"] = serde_json::to_value(witness).unwrap_or(Value::Null);
            }
            if let Some(note) = &chain.note {
                value["note"] = json!(note);
            }
            value
        })
        .collect();
    json!({
        "format_version": 1,
        "question": question,
        "nodes": nodes,
        "edges": edges,
        "chains": chains,
    })
}

/// A short label for an edge in a picture.
pub(crate) fn edge_label(edge: &Edge) -> String {
    let mut label = match edge.kind {
        EdgeKind::MayDo => {
            let mut actions = edge.actions.clone();
            if actions.len() > 3 {
                let more = actions.len() - 2;
                actions.truncate(2);
                actions.push(format!("+{more}"));
            }
            actions.join(", ")
        }
        EdgeKind::AuthenticatesAs => edge.how.clone(),
        EdgeKind::MayMintFor => "delegates".to_string(),
        EdgeKind::MayBecome => format!("may become: {}", edge.actions.join(", ")),
    };
    if edge.blocked.is_some() {
        label.push_str(" (blocked)");
    }
    if edge.observed {
        label.push_str(" (observed only)");
    }
    label
}

fn dot_quote(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The view as Graphviz DOT: workloads, agents and resources in ranks from
/// left to right; blocked edges dashed, observed-only ones bold orange, one
/// agent becoming another bold purple.
pub fn dot(graph: &Graph, view: &View) -> String {
    let mut out = String::from(
        "digraph writ {\n  rankdir=LR;\n  node [fontname=\"Helvetica\", fontsize=11];\n  edge [fontname=\"Helvetica\", fontsize=9];\n",
    );
    for &n in &view.nodes {
        let node = &graph.nodes[n];
        let (shape, fill) = match node.kind {
            NodeKind::Agent => ("box", "#dbeafe"),
            NodeKind::Resource => ("note", "#fef3c7"),
            _ => ("ellipse", "#dcfce7"),
        };
        let mut label = node.id.clone();
        if let Some(state) = &node.state {
            let _ = write!(label, "\n({state})");
        }
        let _ = writeln!(
            out,
            "  n{n} [label={}, shape={shape}, style=filled, fillcolor=\"{fill}\"];",
            dot_quote(&label)
        );
    }
    for &e in &view.edges {
        let edge = &graph.edges[e];
        let style = match (edge.open(), edge.observed) {
            (false, _) => "style=dashed",
            (true, true) => "style=bold, color=\"#ea580c\"",
            (true, false) if edge.kind == EdgeKind::MayBecome => "style=bold, color=\"#7c3aed\"",
            (true, false) => "style=solid",
        };
        let _ = writeln!(
            out,
            "  n{} -> n{} [label={}, {style}];",
            edge.from,
            edge.to,
            dot_quote(&edge_label(edge))
        );
    }
    out.push_str("}\n");
    out
}

/// Text for a Mermaid label: its quotes and brackets as entities.
pub fn mermaid_text(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        match c {
            '"' => out.push_str("#quot;"),
            '<' => out.push_str("#lt;"),
            '>' => out.push_str("#gt;"),
            '|' => out.push_str("#124;"),
            '`' => out.push_str("#96;"),
            '#' => out.push_str("#35;"),
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// The view as a Mermaid flowchart; blocked edges dotted, observed-only
/// ones thick.
pub fn mermaid(graph: &Graph, view: &View) -> String {
    let mut out = String::from("flowchart LR\n");
    for &n in &view.nodes {
        let node = &graph.nodes[n];
        let mut label = mermaid_text(&node.id);
        if let Some(state) = &node.state {
            let _ = write!(label, " ({state})");
        }
        let (open, close) = match node.kind {
            NodeKind::Agent => ("[\"", "\"]"),
            NodeKind::Resource => ("[/\"", "\"/]"),
            _ => ("([\"", "\"])"),
        };
        let _ = writeln!(out, "  n{n}{open}{label}{close}");
    }
    for &e in &view.edges {
        let edge = &graph.edges[e];
        let arrow = match (edge.open(), edge.observed) {
            (false, _) => "-.->",
            (true, true) => "==>",
            (true, false) => "-->",
        };
        let _ = writeln!(
            out,
            "  n{} {arrow}|\"{}\"| n{}",
            edge.from,
            mermaid_text(&edge_label(edge)),
            edge.to
        );
    }
    out
}
