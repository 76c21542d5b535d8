//! The graph drawn by writ itself, with no program at run time: a layered
//! layout (workloads, then agents by delegation depth, then resources,
//! from left to right; each column ordered by the barycentre of its
//! neighbours, swept both ways), as SVG, and as one self-contained HTML
//! page with search and filtering (no network).

use super::render::{edge_label, edge_words};
use super::{EdgeKind, Graph, NodeKind, View};
use std::fmt::Write;

/// Where each node of a view is drawn.
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    /// By the view's node order: x, y (top left), width, height.
    pub boxes: Vec<(f64, f64, f64, f64)>,
    pub width: f64,
    pub height: f64,
}

const ROW: f64 = 44.0;
const BOX_HEIGHT: f64 = 28.0;
const GAP: f64 = 140.0;
const MARGIN: f64 = 20.0;
const CHAR: f64 = 6.6;
/// Labels longer than this are cut (the whole id is the node's title).
const LABEL: usize = 64;

fn label(text: &str) -> String {
    if text.chars().count() <= LABEL {
        return text.to_string();
    }
    let cut: String = text.chars().take(LABEL - 1).collect();
    format!("{cut}…")
}

/// Lays out a view: columns by kind and delegation depth, rows by
/// barycentre.
pub fn layout(graph: &Graph, view: &View) -> Layout {
    let at = view.positions();
    // Agents: one column per delegation depth within the view.
    let mut depth = vec![0usize; view.nodes.len()];
    for _ in 0..view.nodes.len().min(64) {
        let mut changed = false;
        for &e in &view.edges {
            let edge = &graph.edges[e];
            if edge.kind != EdgeKind::MayMintFor {
                continue;
            }
            if let (Some(&from), Some(&to)) = (at.get(&edge.from), at.get(&edge.to)) {
                if depth[to] < depth[from] + 1 && depth[from] + 1 < 64 {
                    depth[to] = depth[from] + 1;
                    changed = true;
                }
            }
        }
        if !changed {
            break;
        }
    }
    let agent_columns = view
        .nodes
        .iter()
        .enumerate()
        .filter(|(_, &n)| graph.nodes[n].kind == NodeKind::Agent)
        .map(|(i, _)| depth[i] + 1)
        .max()
        .unwrap_or(1);
    let column: Vec<usize> = view
        .nodes
        .iter()
        .enumerate()
        .map(|(i, &n)| match graph.nodes[n].kind {
            NodeKind::Agent => 1 + depth[i],
            NodeKind::Resource => 1 + agent_columns,
            _ => 0,
        })
        .collect();
    let columns = 2 + agent_columns;
    let mut rows: Vec<Vec<usize>> = vec![Vec::new(); columns];
    for (i, &c) in column.iter().enumerate() {
        rows[c].push(i);
    }
    for row in &mut rows {
        row.sort_by(|&a, &b| {
            graph.nodes[view.nodes[a]]
                .id
                .cmp(&graph.nodes[view.nodes[b]].id)
        });
    }
    // Neighbours within the view, by view index.
    let mut neighbours: Vec<Vec<usize>> = vec![Vec::new(); view.nodes.len()];
    for &e in &view.edges {
        let edge = &graph.edges[e];
        if let (Some(&a), Some(&b)) = (at.get(&edge.from), at.get(&edge.to)) {
            neighbours[a].push(b);
            neighbours[b].push(a);
        }
    }
    let mut position = vec![0.0f64; view.nodes.len()];
    let place = |rows: &Vec<Vec<usize>>, position: &mut Vec<f64>| {
        for row in rows {
            for (index, &i) in row.iter().enumerate() {
                position[i] = index as f64;
            }
        }
    };
    place(&rows, &mut position);
    for sweep in 0..4 {
        let order: Vec<usize> = if sweep % 2 == 0 {
            (1..columns).collect()
        } else {
            (0..columns.saturating_sub(1)).rev().collect()
        };
        for c in order {
            let mut keyed: Vec<(f64, usize)> = rows[c]
                .iter()
                .map(|&i| {
                    let near: Vec<f64> = neighbours[i]
                        .iter()
                        .filter(|&&j| column[j] != c)
                        .map(|&j| position[j])
                        .collect();
                    let key = if near.is_empty() {
                        position[i]
                    } else {
                        near.iter().sum::<f64>() / near.len() as f64
                    };
                    (key, i)
                })
                .collect();
            keyed.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            rows[c] = keyed.into_iter().map(|(_, i)| i).collect();
            for (index, &i) in rows[c].iter().enumerate() {
                position[i] = index as f64;
            }
        }
    }
    let width_of = |i: usize| -> f64 {
        let node = &graph.nodes[view.nodes[i]];
        let mut chars = label(&node.id).chars().count();
        if let Some(state) = &node.state {
            chars += state.len() + 3;
        }
        chars as f64 * CHAR + 20.0
    };
    let tallest = rows.iter().map(Vec::len).max().unwrap_or(0) as f64;
    let mut boxes = vec![(0.0, 0.0, 0.0, 0.0); view.nodes.len()];
    let mut x = MARGIN;
    for row in &rows {
        if row.is_empty() {
            continue;
        }
        let widest = row.iter().map(|&i| width_of(i)).fold(0.0, f64::max);
        // Each column centred on the tallest.
        let top = MARGIN + (tallest - row.len() as f64) * ROW / 2.0;
        for (index, &i) in row.iter().enumerate() {
            boxes[i] = (x, top + index as f64 * ROW, width_of(i), BOX_HEIGHT);
        }
        x += widest + GAP;
    }
    Layout {
        boxes,
        width: (x - GAP + MARGIN).max(2.0 * MARGIN),
        height: (tallest * ROW + 2.0 * MARGIN).max(2.0 * MARGIN),
    }
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Not allowed in XML 1.0 at all.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// The view as a standalone SVG document.
pub fn svg(graph: &Graph, view: &View) -> String {
    let layout = layout(graph, view);
    let at = view.positions();
    let mut out = String::new();
    let _ = writeln!(
        out,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{w:.0}" height="{h:.0}" viewBox="0 0 {w:.0} {h:.0}" font-family="Helvetica, Arial, sans-serif" font-size="11">"##,
        w = layout.width,
        h = layout.height
    );
    out.push_str(
        r##"<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#64748b"/></marker></defs>
<style>
.node rect{stroke:#475569;stroke-width:1}
.kind-agent rect{fill:#dbeafe}.kind-resource rect{fill:#fef3c7}.workload rect{fill:#dcfce7}
.state rect{fill:#e5e7eb;stroke-dasharray:4 2}
.edge path{fill:none;stroke:#64748b;stroke-width:1.2}
.edge.blocked path{stroke:#dc2626;stroke-dasharray:5 3}
.edge.observed path{stroke:#ea580c;stroke-width:2.4}
.edge.become path{stroke:#7c3aed;stroke-width:2}
.edge text{fill:#334155;font-size:9px;paint-order:stroke;stroke:#fff;stroke-width:3px}
.dim{opacity:.15}
</style>
"##,
    );
    let small = view.edges.len() <= 60;
    for &e in &view.edges {
        let edge = &graph.edges[e];
        let (Some(&a), Some(&b)) = (at.get(&edge.from), at.get(&edge.to)) else {
            continue;
        };
        let (ax, ay, aw, ah) = layout.boxes[a];
        let (bx, by, _, bh) = layout.boxes[b];
        let (x1, y1, x2, y2) = (ax + aw, ay + ah / 2.0, bx, by + bh / 2.0);
        let bend = ((x2 - x1).abs() / 2.0).max(40.0);
        let class = match (edge.open(), edge.observed) {
            (false, _) => "edge blocked",
            (true, true) => "edge observed",
            (true, false) if edge.kind == EdgeKind::MayBecome => "edge become",
            (true, false) => "edge",
        };
        let _ = write!(
            out,
            r#"<g class="{class}" data-from="{}" data-to="{}"><title>{}</title><path d="M {x1:.1} {y1:.1} C {:.1} {y1:.1}, {:.1} {y2:.1}, {x2:.1} {y2:.1}" marker-end="url(#arrow)"/>"#,
            escape(&graph.nodes[edge.from].id),
            escape(&graph.nodes[edge.to].id),
            escape(&format!(
                "{} {}",
                graph.nodes[edge.from].id,
                edge_words(graph, edge)
            )),
            x1 + bend,
            x2 - bend,
        );
        if small {
            let _ = write!(
                out,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
                (x1 + x2) / 2.0,
                (y1 + y2) / 2.0 - 3.0,
                escape(&label(&edge_label(edge)))
            );
        }
        out.push_str("</g>\n");
    }
    for (i, &n) in view.nodes.iter().enumerate() {
        let node = &graph.nodes[n];
        let (x, y, w, h) = layout.boxes[i];
        let kind = match node.kind {
            NodeKind::Agent => "kind-agent",
            NodeKind::Resource => "kind-resource",
            _ => "workload",
        };
        let state = if node.state.is_some() { " state" } else { "" };
        let mut text = label(&node.id);
        if let Some(s) = &node.state {
            let _ = write!(text, " ({s})");
        }
        let _ = writeln!(
            out,
            r#"<g class="node {kind}{state}" data-id="{id}"><title>{id} ({words})</title><rect x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{h:.1}" rx="5"/><text x="{:.1}" y="{:.1}">{}</text></g>"#,
            x + 10.0,
            y + h / 2.0 + 4.0,
            escape(&text),
            id = escape(&node.id),
            words = node.kind.words(),
        );
    }
    out.push_str("</svg>\n");
    out
}

/// The view as one HTML page: the SVG, a search box that dims what does
/// not match (and what is not next to it; `#filter=TEXT` in the address
/// fills it), and a switch for blocked edges. Everything is inline: it
/// opens with no network.
pub fn html(graph: &Graph, view: &View, title: &str) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<style>
body{{margin:0;font-family:Helvetica,Arial,sans-serif;color:#0f172a}}
header{{position:sticky;top:0;background:#f8fafc;border-bottom:1px solid #cbd5e1;padding:8px 12px;display:flex;gap:16px;align-items:center}}
header h1{{font-size:15px;margin:0}}
input[type=search]{{width:24em;padding:4px}}
main{{overflow:auto;padding:8px}}
#count{{color:#475569;font-size:13px}}
</style>
</head>
<body>
<header><h1>{title}</h1><input type="search" id="search" placeholder="Filter: part of a node's id" aria-label="Filter nodes"><label><input type="checkbox" id="blocked" checked> blocked edges</label><span id="count"></span></header>
<main>
"#,
        title = escape(title)
    );
    out.push_str(&svg(graph, view));
    out.push_str(
        r#"</main>
<script>
(function () {
  var nodes = Array.prototype.slice.call(document.querySelectorAll("g.node"));
  var edges = Array.prototype.slice.call(document.querySelectorAll("g.edge"));
  var search = document.getElementById("search");
  var blocked = document.getElementById("blocked");
  var count = document.getElementById("count");
  function update() {
    var term = search.value.trim().toLowerCase();
    var hit = {};
    nodes.forEach(function (n) {
      if (term && n.getAttribute("data-id").toLowerCase().indexOf(term) >= 0) { hit[n.getAttribute("data-id")] = true; }
    });
    var near = {};
    edges.forEach(function (e) {
      var from = e.getAttribute("data-from"), to = e.getAttribute("data-to");
      var shown = !term || hit[from] || hit[to];
      if (term && shown) { near[from] = true; near[to] = true; }
      e.classList.toggle("dim", !shown);
      e.style.display = (!blocked.checked && e.classList.contains("blocked")) ? "none" : "";
    });
    var matched = 0;
    nodes.forEach(function (n) {
      var id = n.getAttribute("data-id");
      if (hit[id]) { matched += 1; }
      n.classList.toggle("dim", !!term && !hit[id] && !near[id]);
    });
    count.textContent = term ? matched + " of " + nodes.length + " nodes match" : nodes.length + " nodes, " + edges.length + " edges";
  }
  search.addEventListener("input", update);
  blocked.addEventListener("change", update);
  // `page.html#filter=TEXT` opens filtered.
  var asked = /^#filter=(.*)$/.exec(location.hash);
  if (asked) {
    try { search.value = decodeURIComponent(asked[1]); } catch (e) { search.value = asked[1]; }
  }
  update();
  // For checks: how many nodes were drawn with their label, and that the
  // script ran to its end.
  var drawn = nodes.filter(function (n) {
    var box = n.querySelector("text").getBBox();
    return box.width > 0 && box.height > 0;
  }).length;
  document.body.setAttribute("data-drawn", String(drawn));
  document.body.setAttribute("data-ready", "1");
})();
</script>
</body>
</html>
"#,
    );
    out
}
