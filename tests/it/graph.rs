//! `writ graph` and the access graph (issue 16): golden graphs of the
//! example and of the plan cases; every chain the graph reports is checked
//! with writ's evaluator, and `--from` and `--to` agree; the SVG and the
//! HTML page rendered by headless Chromium.

use crate::binary;
use crate::support::estate;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use writ_compiler::eval::{self, Request};
use writ_compiler::graph::{self, EdgeKind, Graph, NodeKind};
use writ_compiler::model::{Model, Placement};
use writ_compiler::SourceMap;

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/acme")
}

/// Every `.writ` file under a folder, in a stable order.
fn folder_sources(folder: &Path) -> SourceMap {
    fn collect(folder: &Path, out: &mut Vec<PathBuf>) {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(folder)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                collect(&path, out);
            } else if path.extension().is_some_and(|e| e == "writ") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    collect(folder, &mut files);
    let mut sources = SourceMap::new();
    for file in files {
        let name = file
            .strip_prefix(folder)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        sources.add(name, std::fs::read_to_string(&file).unwrap());
    }
    sources
}

fn model_of(sources: &SourceMap) -> Model {
    let checked = crate::support::check(sources);
    assert!(
        !checked.has_errors(),
        "{:#?}",
        checked
            .diagnostics
            .iter()
            .filter(|d| d.is_error())
            .collect::<Vec<_>>()
    );
    checked.model
}

/// The projects the properties are checked on: the example, each plan
/// case, and a generated estate.
fn corpus() -> Vec<(String, Model)> {
    let mut models = vec![
        ("example".to_string(), model_of(&folder_sources(&example()))),
        ("estate".to_string(), model_of(&estate::sources(40))),
    ];
    let plans = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/plans");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&plans)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    cases.sort();
    for case in cases {
        let Ok(text) = std::fs::read_to_string(case.join("main.writ")) else {
            continue;
        };
        let checked = crate::support::check(&crate::support::sources("main.writ", &text));
        if !checked.has_errors() {
            let name = case.file_name().unwrap().to_string_lossy().into_owned();
            models.push((name, checked.model));
        }
    }
    models
}

/// The checked model of one source file (without errors), and its graph.
fn graph_of(text: &str) -> (Model, Graph) {
    let model = model_of(&crate::support::sources("main.writ", text));
    let graph = Graph::build(&model, "acme");
    (model, graph)
}

/// The request a witness stands for, to the evaluator.
fn allowed(model: &Model, agent: usize, provider: usize, witness: &graph::Witness) -> bool {
    let placement = match &witness.namespace {
        Some(namespace) => Placement::Namespace(namespace.clone()),
        None => match model.providers[provider].kind {
            writ_compiler::facts::ProviderKind::Kubernetes => Placement::Cluster,
            _ => Placement::None,
        },
    };
    eval::evaluate(
        model,
        agent,
        &Request {
            provider,
            action: &witness.action,
            resource: &witness.resource,
            placement: &placement,
            name: witness.name.as_deref(),
            context: None,
        },
    )
    .is_allowed()
}

/// Every grant `--from` reports a workload reaches is allowed by the
/// evaluator for the agent the chain ends in, on the request it shows;
/// every chain `--to` reports for that resource starts somewhere whose
/// `--from` reaches it by the same edge, and the other way round; and no
/// chain crosses a blocked edge (a retired or frozen agent's).
#[test]
fn reported_reach_is_allowed_by_the_evaluator_and_from_and_to_agree() {
    let mut checked_edges = 0;
    for (name, model) in corpus() {
        let graph = Graph::build(&model, "acme");
        for (index, node) in graph.nodes.iter().enumerate() {
            if !(node.kind.is_workload() || node.kind == NodeKind::Agent) {
                continue;
            }
            let tree = graph.from(index);
            for hop in &tree.hops {
                let edge = &graph.edges[hop.edge];
                if !edge.open() {
                    assert!(!hop.expanded, "{name}: a blocked edge is crossed");
                    continue;
                }
                if edge.kind != EdgeKind::MayDo {
                    continue;
                }
                let provider = graph.nodes[edge.to].provider_id.unwrap();
                let agent = edge.from;
                // What GitHub keeps of a retired or frozen agent, and what
                // an App's installation adds, the evaluator does not say.
                if graph.nodes[agent].state.is_some()
                    || (edge.grant.is_none() && edge.witness.is_none())
                {
                    continue;
                }
                let witness = edge.witness.as_ref().unwrap_or_else(|| {
                    panic!(
                        "{name}: {} reaches {} with no request shown",
                        node.id, graph.nodes[edge.to].id
                    )
                });
                assert!(
                    allowed(&model, agent, provider, witness),
                    "{name}: {witness:?} through {} is denied by the evaluator",
                    graph.nodes[edge.to].id
                );
                checked_edges += 1;
                // `--to` the resource lists a chain from this workload
                // ending in this very edge (an agent is a start only when
                // nothing leads into it).
                if node.kind.is_workload() || graph.incoming[index].is_empty() {
                    let resource = &graph.nodes[edge.to];
                    let (pattern, placement) = resource.resource.clone().unwrap();
                    let query = to_query(&model, provider, &pattern, &placement);
                    let found = graph.to(&model, &query).unwrap();
                    assert!(
                        found.chains.iter().any(|chain| {
                            graph.edges[chain.edges[0]].from == index
                                && chain.edges.last() == Some(&hop.edge)
                        }) || found.truncated,
                        "{name}: `--from {}` reaches {} but `--to {query}` has no chain from it",
                        node.id,
                        resource.id
                    );
                }
            }
        }
        // The other way: each chain `--to` lists is in its start's reach.
        for node in graph.nodes.iter().filter(|n| n.kind == NodeKind::Resource) {
            let provider = node.provider_id.unwrap();
            let (pattern, placement) = node.resource.clone().unwrap();
            let query = to_query(&model, provider, &pattern, &placement);
            for chain in graph.to(&model, &query).unwrap().chains {
                let start = graph.edges[chain.edges[0]].from;
                let last = *chain.edges.last().unwrap();
                assert!(
                    graph.from(start).hops.iter().any(|h| h.edge == last),
                    "{name}: `--to {query}` lists a chain from {} that its `--from` does not reach",
                    graph.nodes[start].id
                );
                for &edge in &chain.edges {
                    assert!(
                        graph.edges[edge].open(),
                        "{name}: a chain crosses a blocked edge"
                    );
                }
                if let Some(witness) = &chain.allowed {
                    let (agent, _) = graph.edges[last].grant.unwrap();
                    assert!(
                        allowed(&model, agent, provider, witness),
                        "{name}: {witness:?}"
                    );
                }
            }
        }
    }
    assert!(
        checked_edges > 20,
        "only {checked_edges} edges were checked"
    );
    // The graph of identities alone (what plans build for their findings)
    // reaches the same agents from every workload as the whole graph.
    for (name, model) in corpus() {
        let whole = Graph::build(&model, "acme");
        let identities = Graph::identities(&model, "acme");
        for (index, node) in whole.nodes.iter().enumerate() {
            if !node.kind.is_workload() {
                continue;
            }
            let mut tree: Vec<String> = whole
                .from(index)
                .hops
                .iter()
                .filter(|h| whole.edges[h.edge].open())
                .map(|h| whole.edges[h.edge].to)
                .filter(|&n| whole.nodes[n].kind == NodeKind::Agent)
                .map(|n| whole.nodes[n].id.clone())
                .collect();
            tree.sort();
            tree.dedup();
            let other = identities.find(&node.id).unwrap();
            let mut fast: Vec<String> = identities
                .agents_reached(other)
                .iter()
                .map(|&a| identities.nodes[a].id.clone())
                .collect();
            fast.sort();
            assert_eq!(fast, tree, "{name}: {}", node.id);
        }
    }
}

/// A resource node as `--to` takes it.
fn to_query(model: &Model, provider: usize, pattern: &str, placement: &Placement) -> String {
    let provider = &model.providers[provider];
    match placement {
        Placement::Namespace(namespace) => {
            format!("k8s:{}/{pattern} in {namespace}", provider.name)
        }
        Placement::Cluster => format!("k8s:{}/{pattern} in cluster", provider.name),
        Placement::None => format!("{} {pattern}", provider.address()),
    }
}

/// What the graph says of the example, in words: the deploy workflow
/// reaches AWS only (its Kubernetes grants are the service account's),
/// the retired exporter reaches nothing, and the bot's delegate is reached
/// through delegation.
#[test]
fn the_example_graph_says_what_lowering_enforces() {
    let model = model_of(&folder_sources(&example()));
    let graph = Graph::build(&model, "acme");
    let repo = graph.find("github:acme/platform").unwrap();
    let reached: Vec<&str> = graph
        .from(repo)
        .hops
        .iter()
        .map(|h| graph.nodes[graph.edges[h.edge].to].id.as_str())
        .collect();
    assert!(reached.contains(&"agent:deployer"), "{reached:?}");
    assert!(
        reached.iter().all(|id| !id.starts_with("kubernetes.")),
        "a GitHub workflow holds no Kubernetes credentials: {reached:?}"
    );
    assert!(reached
        .iter()
        .any(|id| id.starts_with("aws.prod arn:aws:ecr")));
    // Retired: the trust is gone, and so is the reach.
    let lambda = graph.find("aws-service:lambda.amazonaws.com").unwrap();
    let legacy = graph.find("agent:legacy_exporter").unwrap();
    let tree = graph.from(lambda);
    let hop = tree
        .hops
        .iter()
        .find(|h| graph.edges[h.edge].to == legacy)
        .unwrap();
    assert!(!hop.expanded);
    let blocked = graph.edges[hop.edge].blocked.as_deref().unwrap();
    assert!(blocked.contains("expired on 2026-09-30"), "{blocked}");
    // Delegation: the bot's service account reaches the invoices through
    // its delegate as well as itself.
    let found = graph
        .to(&model, "arn:aws:s3:::acme-invoices/2026/01.pdf")
        .unwrap();
    let through_delegate = found
        .chains
        .iter()
        .any(|c| c.edges.len() == 3 && graph.edges[c.edges[1]].kind == EdgeKind::MayMintFor);
    assert!(through_delegate);
    assert!(found.chains.iter().all(|c| c.allowed.is_some()));
    // An ECR action does not reach a bucket, though its resource is `*`.
    assert!(found
        .chains
        .iter()
        .all(|c| !graph.nodes[graph.edges[c.edges[0]].from]
            .id
            .contains("acme/platform")));
}

/// Golden outputs of the example, through the binary: text, JSON, DOT and
/// Mermaid, for the README's two questions and the whole graph.
#[test]
fn golden_graphs_of_the_example() {
    let root = example();
    let run = |args: &[&str]| {
        let output = binary::writ(&root, args);
        assert!(
            output.status.success(),
            "{args:?}: {}",
            binary::text(&output)
        );
        String::from_utf8(output.stdout).unwrap()
    };
    insta::with_settings!({ snapshot_path => "../snapshots/graph", prepend_module_to_snapshot => false, omit_expression => true }, {
        insta::assert_snapshot!("from_text", run(&["graph", "--from", "github:acme/platform"]));
        insta::assert_snapshot!("to_text", run(&["graph", "--to", "arn:aws:s3:::acme-invoices/*"]));
        insta::assert_snapshot!("agent_text", run(&["graph", "--agent", "billing_bot"]));
        insta::assert_snapshot!("whole_text", run(&["graph"]));
        insta::assert_snapshot!("whole_json", run(&["graph", "--format", "json"]));
        insta::assert_snapshot!("whole_dot", run(&["graph", "--format", "dot"]));
        insta::assert_snapshot!("to_mermaid", run(&["graph", "--to", "arn:aws:s3:::acme-invoices/*", "--format", "mermaid"]));
    });
    // JSON chains name edges of the JSON's own list.
    let value: serde_json::Value = serde_json::from_str(&run(&[
        "graph",
        "--to",
        "arn:aws:s3:::acme-invoices/*",
        "--format",
        "json",
    ]))
    .unwrap();
    let edges = value["edges"].as_array().unwrap().len();
    for chain in value["chains"].as_array().unwrap() {
        for index in chain["edges"].as_array().unwrap() {
            assert!((index.as_u64().unwrap() as usize) < edges);
        }
    }
    assert_eq!(value["chains"].as_array().unwrap().len(), 4);
}

/// The DOT of each plan case, golden: the graph of every form the plan
/// cases hold.
#[test]
fn golden_graphs_of_the_plan_cases() {
    let mut shapes = BTreeMap::new();
    for (name, model) in corpus().into_iter().skip(2) {
        let graph = Graph::build(&model, "acme");
        shapes.insert(name, graph::dot(&graph, &graph.whole()));
    }
    assert!(shapes.len() > 10, "{}", shapes.len());
    let all: String = shapes
        .iter()
        .map(|(name, dot)| format!("// {name}\n{dot}"))
        .collect();
    insta::with_settings!({ snapshot_path => "../snapshots/graph", prepend_module_to_snapshot => false, omit_expression => true }, {
        insta::assert_snapshot!("plan_cases_dot", all);
    });
}

/// Headless Chromium, or `None` (the test skipped) where there is none,
/// unless `WRIT_REQUIRE_CHROMIUM` is set, as `.ci/run` sets it.
fn chromium() -> Option<PathBuf> {
    let found = ["chromium", "chromium-browser"].iter().find_map(|name| {
        std::env::var_os("PATH").and_then(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join(name))
                .find(|p| p.is_file())
        })
    });
    if found.is_none() {
        assert!(
            std::env::var_os("WRIT_REQUIRE_CHROMIUM").is_none(),
            "Chromium is required (WRIT_REQUIRE_CHROMIUM is set) but not on PATH"
        );
        eprintln!("skipping: no Chromium here");
    }
    found
}

/// Runs headless Chromium on a page: what it prints and logs.
fn headless(chromium: &Path, args: &[&str], page: &str) -> (String, String) {
    use std::io::Read;
    // A profile of its own (Chromium refuses one another instance holds),
    // under `target/`, removed after.
    static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let run = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let profile = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("chromium-profile-{run}"));
    let _ = std::fs::remove_dir_all(&profile);
    let mut child = std::process::Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(page)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("chromium runs");
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    // A Chromium that hangs fails the test rather than the CI run.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("Chromium did not finish within 120 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let (stdout, stderr) = (stdout.join().unwrap(), stderr.join().unwrap());
    let _ = std::fs::remove_dir_all(&profile);
    assert!(status.success(), "{stderr}");
    (stdout, stderr)
}

/// A file's address for the browser.
fn file_url(path: &Path) -> String {
    lsp_types::Url::from_file_path(path).unwrap().to_string()
}

/// The SVG and the HTML page of the example, opened in headless Chromium:
/// every node is drawn with its label, the page's script runs to its end
/// with nothing on the console, its filter dims what does not match, and a
/// screenshot is kept in `target/` as the test's artefact.
#[test]
fn the_svg_and_html_render_in_chromium() {
    let Some(chromium) = chromium() else {
        return;
    };
    let model = model_of(&folder_sources(&example()));
    let graph = Graph::build(&model, "acme");
    let folder = Path::new(env!("CARGO_TARGET_TMPDIR")).join("graph");
    std::fs::create_dir_all(&folder).unwrap();
    let html = folder.join("example.html");
    let svg = folder.join("example.svg");
    std::fs::write(
        &html,
        graph::html(&graph, &graph.whole(), "writ graph: acme"),
    )
    .unwrap();
    std::fs::write(&svg, graph::svg(&graph, &graph.whole())).unwrap();
    let url = |path: &Path| file_url(path);
    let labels = [
        "github:acme/platform",
        "agent:billing_bot",
        "agent:legacy_exporter (retired)",
        "aws.prod arn:aws:s3:::acme-invoices/*",
        "kubernetes.prod configmaps in namespace billing",
    ];
    let nodes = graph.nodes.len();
    let (dom, log) = headless(&chromium, &["--dump-dom"], &url(&html));
    for label in labels {
        assert!(
            dom.contains(&format!(">{label}</text>")),
            "{label} is not drawn"
        );
    }
    assert!(
        dom.contains(r#"data-ready="1""#),
        "the page's script did not finish: {log}"
    );
    assert!(
        dom.contains(&format!(r#"data-drawn="{nodes}""#)),
        "not every one of {nodes} nodes was drawn with its label"
    );
    assert!(dom.contains(&format!("{nodes} nodes, {} edges", graph.edges.len())));
    let console = |log: &str| {
        log.lines()
            .find(|line| line.contains("CONSOLE") || line.contains("Uncaught"))
            .map(str::to_string)
    };
    assert_eq!(console(&log), None);
    // The negative control: a page whose script fails is caught so.
    let broken = folder.join("broken.html");
    let text = std::fs::read_to_string(&html).unwrap();
    std::fs::write(
        &broken,
        text.replacen("(function () {", "(function () { null.x;", 1),
    )
    .unwrap();
    let (dom, log) = headless(&chromium, &["--dump-dom"], &url(&broken));
    assert!(
        console(&log).is_some_and(|line| line.contains("Uncaught")),
        "{log}"
    );
    assert!(!dom.contains(r#"data-ready="1""#));
    // Filtered from the address: billing's nodes stay, the rest dim.
    let (dom, _) = headless(
        &chromium,
        &["--dump-dom"],
        &format!("{}#filter=billing", url(&html)),
    );
    assert!(dom.contains("nodes match"), "the filter was not applied");
    assert!(dom.contains(r#"class="node workload dim" data-id="github:acme/platform""#));
    assert!(dom.contains(r#"class="node kind-agent" data-id="agent:billing_bot""#));
    // The SVG alone.
    let (dom, log) = headless(&chromium, &["--dump-dom"], &url(&svg));
    for label in labels {
        assert!(
            dom.contains(&format!(">{label}</text>")),
            "{label} is not in the SVG"
        );
    }
    assert!(!log.contains("error on line"), "{log}");
    // The artefact: a screenshot of the page.
    let shot = folder.join("example.png");
    let _ = std::fs::remove_file(&shot);
    headless(
        &chromium,
        &[
            "--hide-scrollbars",
            "--window-size=1600,1000",
            &format!("--screenshot={}", shot.display()),
        ],
        &url(&html),
    );
    let png = std::fs::read(&shot).expect("a screenshot");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 20_000,
        "{} bytes",
        png.len()
    );
}

/// Mermaid sources, rendered by Mermaid itself (npm `mermaid`, pinned;
/// `WRIT_REQUIRE_MERMAID` in `.ci/run`) in headless Chromium: for each, the
/// SVG's length and how many agent labels it draws, or Mermaid's error.
fn mermaid_render(chromium: &Path, sources: &[String]) -> Option<Vec<serde_json::Value>> {
    let package = crate::support::npm_package(
        "mermaid@11.4.1",
        "node_modules/mermaid/dist/mermaid.min.js",
        "WRIT_REQUIRE_MERMAID",
    )?;
    let script = package.join("node_modules/mermaid/dist/mermaid.min.js");
    let page = format!(
        r#"<!doctype html><html><body><pre id="results">pending</pre>
<script src="{}"></script>
<script>
mermaid.initialize({{startOnLoad: false}});
var sources = {};
(async function () {{
  var results = [];
  for (var i = 0; i < sources.length; i++) {{
    try {{
      var out = await mermaid.render("writ" + i, sources[i]);
      results.push({{ok: true, svg: out.svg.length, agents: (out.svg.match(/agent:[a-z_0-9]+/g) || []).length}});
    }} catch (e) {{
      results.push({{ok: false, error: String(e && e.message || e)}});
    }}
  }}
  document.getElementById("results").textContent = JSON.stringify(results);
}})();
</script></body></html>"#,
        file_url(&script),
        serde_json::to_string(sources).unwrap()
    );
    let folder = Path::new(env!("CARGO_TARGET_TMPDIR")).join("graph");
    std::fs::create_dir_all(&folder).unwrap();
    let file = folder.join("mermaid.html");
    std::fs::write(&file, page).unwrap();
    let (dom, _) = headless(
        chromium,
        &["--virtual-time-budget=20000", "--dump-dom"],
        &file_url(&file),
    );
    let start = dom.find(r#"<pre id="results">"#).unwrap() + r#"<pre id="results">"#.len();
    let end = start + dom[start..].find("</pre>").unwrap();
    let text = dom[start..end]
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&amp;", "&");
    Some(serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}")))
}

/// Every Mermaid picture writ writes parses and draws in Mermaid itself:
/// `writ graph --format mermaid` of the example, and the picture of access
/// changes in every golden markdown plan; a broken source is caught so.
#[test]
fn mermaid_pictures_draw_in_mermaid() {
    let Some(chromium) = chromium() else {
        return;
    };
    let root = example();
    let mut sources = Vec::new();
    for args in [
        &["graph", "--format", "mermaid"][..],
        &[
            "graph",
            "--format",
            "mermaid",
            "--from",
            "github:acme/platform",
        ][..],
        &[
            "graph",
            "--format",
            "mermaid",
            "--to",
            "arn:aws:s3:::acme-invoices/*",
        ][..],
    ] {
        let output = binary::writ(&root, args);
        assert!(output.status.success());
        sources.push(String::from_utf8(output.stdout).unwrap());
    }
    let plans = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots/plans");
    let mut names: Vec<PathBuf> = std::fs::read_dir(&plans)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("markdown@")
        })
        .collect();
    names.sort();
    for name in names {
        let text = std::fs::read_to_string(&name).unwrap();
        if let Some(start) = text.find("```mermaid\n") {
            let body = &text[start + "```mermaid\n".len()..];
            sources.push(body[..body.find("```").unwrap()].to_string());
        }
    }
    assert!(sources.len() > 10, "{}", sources.len());
    sources.push("flowchart LR\n  a[\"x\"] -->|broken| \n".to_string());
    let Some(results) = mermaid_render(&chromium, &sources) else {
        return;
    };
    assert_eq!(results.len(), sources.len());
    let (broken, drawn) = results.split_last().unwrap();
    for (result, source) in drawn.iter().zip(&sources) {
        assert_eq!(result["ok"], true, "{result}\n{source}");
        assert!(result["agents"].as_u64().unwrap() > 0, "{result}\n{source}");
    }
    assert_eq!(broken["ok"], false, "{broken}");
}

/// Questions writ cannot answer get a clear error, not an empty answer.
#[test]
fn unknown_nodes_and_unreadable_resources_are_errors() {
    let root = example();
    let output = binary::writ(&root, &["graph", "--from", "github:acme/platfrm"]);
    assert!(!output.status.success());
    assert!(
        binary::text(&output).contains("did you mean `github:acme/platform`"),
        "{}",
        binary::text(&output)
    );
    let output = binary::writ(&root, &["graph", "--to", "k8s:prod/Secrets!"]);
    assert!(!output.status.success());
    assert!(binary::text(&output).contains("not a Kubernetes resource"));
    let output = binary::writ(&root, &["graph", "--to", "k8s:staging/secrets"]);
    assert!(binary::text(&output).contains("no provider `kubernetes.staging`"));
    let output = binary::writ(&root, &["graph", "--agent", "biling_bot"]);
    assert!(binary::text(&output).contains("did you mean `billing_bot`"));
}

/// The example's snapshot with RBAC the source does not declare: a
/// ClusterRoleBinding of a secret reader to the deployer's service
/// account, a RoleBinding to every service account of `billing` (a group),
/// and one to a ClusterRole that was not observed.
fn snapshot_with_foreign_rbac() -> PathBuf {
    use serde_json::{json, Value};
    let mut snapshot: Value =
        serde_json::from_str(&std::fs::read_to_string(example().join("snapshot.json")).unwrap())
            .unwrap();
    // Objects as the Kubernetes provider records them: a namespace's, or
    // the cluster's (`None`).
    let object = |kind: &str,
                  plural: &str,
                  namespace: Option<&str>,
                  name: &str,
                  mut attributes: Value| {
        let address = match namespace {
            Some(ns) => format!("kubernetes.prod/namespaces/{ns}/{plural}/{name}"),
            None => format!("kubernetes.prod/{plural}/{name}"),
        };
        attributes["name"] = json!(name);
        if let Some(ns) = namespace {
            attributes["namespace"] = json!(ns);
        }
        attributes["labels"] = json!({});
        attributes["annotations"] = json!({});
        attributes["uid"] = json!(format!("uid-{address}"));
        json!({"address": address, "provider": "kubernetes.prod", "kind": kind, "attributes": attributes})
    };
    let role = |namespace: Option<&str>, name: &str, rules: Value| match namespace {
        Some(_) => object(
            "kubernetes_role",
            "roles",
            namespace,
            name,
            json!({"rules": rules}),
        ),
        None => object(
            "kubernetes_cluster_role",
            "clusterroles",
            None,
            name,
            json!({"rules": rules}),
        ),
    };
    let binding = |namespace: Option<&str>,
                   name: &str,
                   role_kind: &str,
                   role: &str,
                   subjects: Value| {
        let attributes = json!({
            "role_ref": {"api_group": "rbac.authorization.k8s.io", "kind": role_kind, "name": role},
            "subjects": subjects,
        });
        match namespace {
            Some(_) => object(
                "kubernetes_role_binding",
                "rolebindings",
                namespace,
                name,
                attributes,
            ),
            None => object(
                "kubernetes_cluster_role_binding",
                "clusterrolebindings",
                None,
                name,
                attributes,
            ),
        }
    };
    let added = [
        binding(
            None,
            "ops-secret-reader",
            "ClusterRole",
            "secret-reader",
            json!([{"kind": "ServiceAccount", "name": "deployer", "namespace": "services"}]),
        ),
        role(
            None,
            "secret-reader",
            json!([{"api_groups": [""], "resources": ["secrets"], "verbs": ["get", "list"]}]),
        ),
        binding(
            Some("billing"),
            "billing-extra",
            "Role",
            "billing-extra",
            json!([{"kind": "Group", "name": "system:serviceaccounts:billing"}]),
        ),
        role(
            Some("billing"),
            "billing-extra",
            json!([{"api_groups": [""], "resources": ["configmaps"], "resource_names": ["billing-config"], "verbs": ["get"]}]),
        ),
        // The bot holds this in its own namespace; bound cluster-wide, it
        // holds it in every one.
        binding(
            None,
            "config-everywhere",
            "ClusterRole",
            "config-reader",
            json!([{"kind": "ServiceAccount", "name": "billing-bot", "namespace": "billing"}]),
        ),
        role(
            None,
            "config-reader",
            json!([{"api_groups": [""], "resources": ["configmaps"], "resource_names": ["billing-config"], "verbs": ["get"]}]),
        ),
        // A subject without a namespace is in the RoleBinding's.
        binding(
            Some("services"),
            "deployer-logs",
            "Role",
            "logs",
            json!([{"kind": "ServiceAccount", "name": "deployer"}]),
        ),
        role(
            Some("services"),
            "logs",
            json!([{"api_groups": [""], "resources": ["pods/log"], "verbs": ["get"]}]),
        ),
        binding(
            None,
            "break-glass",
            "ClusterRole",
            "cluster-admin",
            json!([{"kind": "User", "name": "system:serviceaccount:observability:log-shipper"}]),
        ),
        // Every cluster's: each identity may ask what it may do itself.
        // Nothing to draw.
        binding(
            None,
            "system:basic-user",
            "ClusterRole",
            "system:basic-user",
            json!([{"kind": "Group", "name": "system:authenticated", "apiGroup": "rbac.authorization.k8s.io"}]),
        ),
        role(
            None,
            "system:basic-user",
            json!([{"api_groups": ["authorization.k8s.io"], "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"], "verbs": ["create"]}, {"api_groups": ["authentication.k8s.io"], "resources": ["selfsubjectreviews"], "verbs": ["create"]}]),
        ),
    ];
    snapshot["providers"]["kubernetes.prod"]["resources"]
        .as_array_mut()
        .unwrap()
        .extend(added);
    let file = Path::new(env!("CARGO_TARGET_TMPDIR")).join("graph-foreign-rbac.json");
    std::fs::write(&file, serde_json::to_string_pretty(&snapshot).unwrap()).unwrap();
    file
}

/// With a snapshot, RBAC bound outside the source to an agent's service
/// account is drawn as observed-only access, and `--to` finds it; what the
/// source already grants (the bot's config map) is not repeated; without
/// the snapshot none of it is there.
#[test]
fn rbac_outside_the_source_is_drawn_from_the_observed_state() {
    let root = example();
    let snapshot = snapshot_with_foreign_rbac();
    let snapshot = snapshot.to_str().unwrap();
    let run = |args: &[&str]| {
        let output = binary::writ(&root, args);
        assert!(
            output.status.success(),
            "{args:?}: {}",
            binary::text(&output)
        );
        (
            String::from_utf8(output.stdout).unwrap(),
            String::from_utf8(output.stderr).unwrap(),
        )
    };
    let query = "k8s:prod/secrets in services";
    let (without, _) = run(&["graph", "--to", query]);
    assert!(without.starts_with("nothing reaches"), "{without}");
    let (with, said) = run(&["graph", "--snapshot", snapshot, "--to", query]);
    // And the example's own: four statements of its roles' policies are not yet as
    // the source says (see the IAM test below).
    assert!(
        // Seven more: a secret of `acme/platform` that may hold a key of
        // IAM user `ci-legacy`, that user's own policy and group, role
        // `jenkins-deployer`'s trust of that user and of the platform's
        // workflows, and two statements of writ's roles' trust the source
        // no longer writes (not applied yet).
        said.contains("16 links of access the source does not declare"),
        "{said}"
    );
    assert!(with.starts_with("4 chains reach"), "{with}");
    assert!(with.contains("k8s:prod/services/deployer may do get, list on kubernetes.prod secrets in cluster [observed: ClusterRoleBinding ops-secret-reader"), "{with}");
    assert!(
        with.contains("cluster-admin (not in the source); the role was not observed"),
        "{with}"
    );
    // A group of every service account in `billing`: the delegate gains
    // the config map, which the bot already has.
    let (reader, _) = run(&[
        "graph",
        "--snapshot",
        snapshot,
        "--from",
        "k8s:prod/billing/invoice-reader",
    ]);
    assert!(reader.contains("may do get on kubernetes.prod configmaps in namespace billing named billing-config [observed"), "{reader}");
    let (bot, _) = run(&[
        "graph",
        "--snapshot",
        snapshot,
        "--from",
        "k8s:prod/billing/billing-bot",
    ]);
    // Not its own (it has it), but through the delegate it mints.
    assert!(
        bot.contains("─ may do get on kubernetes.prod configmaps in namespace billing named billing-config\n"),
        "{bot}"
    );
    assert!(
        bot.contains("─ may do get on kubernetes.prod configmaps in namespace billing named billing-config [observed: RoleBinding billing/billing-extra"),
        "{bot}"
    );
    // JSON marks them, and still matches the schema (checked in schemas).
    let (json, _) = run(&["graph", "--snapshot", snapshot, "--format", "json"]);
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    let observed = value["edges"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["observed"] == true)
        .count();
    // From each service account, and from the agent that is it; the
    // example's four in AWS; and its chain outside writ: a secret that may
    // hold IAM user `ci-legacy`'s key, and role `jenkins-deployer`'s trust
    // of that user and of the platform's workflows, with what the role
    // may do (five statements drawn), with the user's own policy and
    // group; and two trust statements of writ's roles not yet as the
    // source says.
    assert_eq!(observed, 26);
    let (bot, _) = run(&["graph", "--snapshot", snapshot, "--agent", "billing_bot"]);
    assert!(bot.contains("configmaps in cluster named billing-config [observed: ClusterRoleBinding config-everywhere"), "{bot}");
    let (deployer, _) = run(&[
        "graph",
        "--snapshot",
        snapshot,
        "--from",
        "k8s:prod/services/deployer",
    ]);
    assert!(
        deployer.contains(
            "pods/log in namespace services [observed: RoleBinding services/deployer-logs"
        ),
        "{deployer}"
    );
    // `writ drift` lists them too, with the guardrail each would break:
    // the example denies secrets in kube-system, which a cluster-wide
    // reader of secrets reaches.
    let drift = binary::writ(
        &root,
        &["drift", "--snapshot", snapshot, "--format", "json"],
    );
    let value: serde_json::Value = serde_json::from_slice(&drift.stdout).unwrap();
    let undeclared: Vec<&serde_json::Value> = value["undeclared_access"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["resource"].as_str().unwrap().starts_with("kubernetes."))
        .collect();
    assert_eq!(undeclared.len(), 5, "{undeclared:#?}");
    let secrets = undeclared
        .iter()
        .find(|u| u["resource"] == "kubernetes.prod secrets in cluster")
        .unwrap();
    assert_eq!(secrets["workload"], "k8s:prod/services/deployer");
    assert_eq!(
        secrets["guardrails"],
        serde_json::json!(["no_kube_system_secrets"])
    );
    let config = undeclared
        .iter()
        .find(|u| u["how"].as_str().unwrap().contains("billing-extra"))
        .unwrap();
    assert!(config.get("guardrails").is_none(), "{config}");
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/graph.schema.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(
        schema["$defs"]["edge"]["properties"]["observed"]["const"],
        true
    );
}

/// The example's recorded state, to change for a test.
fn example_snapshot() -> Value {
    serde_json::from_str(&std::fs::read_to_string(example().join("snapshot.json")).unwrap())
        .unwrap()
}

/// A snapshot written where a test's run of writ reads it.
fn write_snapshot(name: &str, snapshot: &Value) -> PathBuf {
    let file = std::env::temp_dir().join(format!("{name}-{}.json", std::process::id()));
    std::fs::write(&file, serde_json::to_string_pretty(snapshot).unwrap()).unwrap();
    file
}

/// `writ drift --format json` on the example, against a snapshot.
fn drift_json(snapshot: &str) -> Value {
    let drift = binary::writ(
        &example(),
        &["drift", "--snapshot", snapshot, "--format", "json"],
    );
    serde_json::from_slice(&drift.stdout).unwrap_or_else(|_| panic!("{}", binary::text(&drift)))
}

/// The IAM policies of the project's AWS roles, beyond what lowering
/// writes, drawn and listed from the observed state: the example's own
/// (three roles whose `writ-access` is not yet as the source says), and a
/// policy and an attached policy put on `billing_bot`'s role by hand; not
/// what the role's own unconditional denies take away, nor another
/// project's role.
#[test]
fn iam_policies_beyond_the_source_are_drawn_from_the_observed_state() {
    let root = example();
    let mut snapshot = example_snapshot();
    let resources = snapshot["providers"]["aws.prod"]["resources"]
        .as_array_mut()
        .unwrap();
    let role = resources
        .iter_mut()
        .find(|r| r["address"] == "aws.prod/role/billing_bot")
        .unwrap();
    role["attributes"]["attached_policies"] =
        json!(["arn:aws:iam::aws:policy/AdministratorAccess"]);
    let policy = |role: &str, name: &str, statements: Value| {
        json!({
            "address": format!("aws.prod/role/{role}/policy/{name}"),
            "provider": "aws.prod",
            "kind": "aws_role_policy",
            "attributes": {"name": name, "role": role, "policy": {"Version": "2012-10-17", "Statement": statements}},
        })
    };
    resources.push(policy(
        "billing_bot",
        "hand-made",
        json!([
            // Wider than the grant's `s3:GetObject`: more access.
            {"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::acme-invoices/*"},
            // Already granted: nothing more.
            {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::acme-invoices"},
            // Taken away by the role's own unconditional deny.
            {"Effect": "Allow", "Action": "s3:DeleteBucket", "Resource": "arn:aws:s3:::acme-invoices"},
            {"Effect": "Deny", "Action": "s3:Delete*", "Resource": "*"},
            // Everything but IAM.
            {"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"},
            {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": "*", "Condition": {"Bool": {"aws:SecureTransport": "true"}}},
        ]),
    ));
    // Another project's role for an agent of the same name: not this
    // project's access.
    resources.push(json!({
        "address": "aws.prod/role/other-billing",
        "provider": "aws.prod",
        "kind": "aws_role",
        "attributes": {"name": "other-billing", "path": "/writ/other/", "max_session_duration": 3600,
            "assume_role_policy": {"Version": "2012-10-17", "Statement": []},
            "tags": {"writ:project": "other", "writ:agent": "billing_bot"}},
    }));
    resources.push(policy(
        "other-billing",
        "writ-access",
        json!([{"Effect": "Allow", "Action": "*", "Resource": "*"}]),
    ));
    let file = write_snapshot("writ-iam-observed", &snapshot);
    let file = file.to_str().unwrap();
    let value = drift_json(file);
    let undeclared: Vec<(String, String, Vec<String>, String)> = value["undeclared_access"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| {
            u["resource"].as_str().unwrap().starts_with("aws.")
                && u["workload"].as_str().unwrap().starts_with("agent:")
        })
        .map(|u| {
            (
                u["workload"].as_str().unwrap().to_string(),
                u["resource"].as_str().unwrap().to_string(),
                u["actions"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|a| a.as_str().unwrap().to_string())
                    .collect(),
                u["how"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let found = |agent: &str, resource: &str, actions: &[&str]| {
        undeclared.iter().find(|(w, r, a, _)| {
            w == &format!("agent:{agent}") && r == &format!("aws.prod {resource}") && a == actions
        })
    };
    // The example's own: writ's policies not yet as the source says.
    let pending = found(
        "audit_reader",
        "arn:aws:access-analyzer:us-east-1:123456789012:analyzer/acme",
        &["access-analyzer:UpdateFindings"],
    )
    .unwrap_or_else(|| panic!("{undeclared:#?}"));
    assert!(
        pending
            .3
            .contains("writ-access of role audit_reader (writ's, not as the source says"),
        "{pending:?}"
    );
    let retired = found(
        "legacy_exporter",
        "arn:aws:s3:::acme-invoices/*",
        &["s3:GetObject"],
    )
    .unwrap();
    assert!(
        retired
            .3
            .ends_with("the role's own policy denies everything from 2027-09-30T00:00:00Z"),
        "{retired:?}"
    );
    assert!(found(
        "report_mailer",
        "arn:aws:ses:us-east-1:123456789012:identity/acme.example",
        &["ses:SendBulkEmail"]
    )
    .is_some());
    // The source grants it in one region only; the role, in every one.
    assert!(found(
        "billing_bot",
        "arn:aws:s3:::acme-reports/*",
        &["s3:PutObject"]
    )
    .is_some());
    // Put on billing_bot's role by hand.
    let wider = found("billing_bot", "arn:aws:s3:::acme-invoices/*", &["s3:*"])
        .unwrap_or_else(|| panic!("{undeclared:#?}"));
    assert!(
        wider.3.contains(
            "inline policy hand-made of role billing_bot (put on writ's role outside writ)"
        ),
        "{wider:?}"
    );
    let not_action = undeclared
        .iter()
        .find(|u| u.3.contains("`NotAction`"))
        .unwrap();
    assert_eq!(
        (not_action.1.as_str(), &not_action.2[..]),
        ("aws.prod *", &["*".to_string()][..])
    );
    let conditional = found("billing_bot", "*", &["sqs:SendMessage"]).unwrap();
    assert!(
        conditional
            .3
            .contains("with conditions writ did not evaluate"),
        "{conditional:?}"
    );
    let attached = undeclared
        .iter()
        .find(|u| u.3.contains("AdministratorAccess"))
        .unwrap();
    assert!(
        attached.3.contains("what it allows was not read"),
        "{attached:?}"
    );
    // Nothing else: not the granted `s3:ListBucket`, not the denied
    // `s3:DeleteBucket`, not the other project's role.
    assert_eq!(undeclared.len(), 8, "{undeclared:#?}");
    assert!(!undeclared
        .iter()
        .any(|u| u.2.contains(&"s3:DeleteBucket".to_string()) || u.3.contains("other-billing")));
    // `--detailed-exitcode` says access drifted.
    let code = binary::writ(&root, &["drift", "--snapshot", file, "--detailed-exitcode"]);
    assert_eq!(code.status.code(), Some(2), "{}", binary::text(&code));
    // A plan from the snapshot says so too (it checks the source again
    // for it, having freed the model to read the snapshot), in JSON as
    // `drift` does, and in text.
    let plan = binary::writ(&root, &["plan", "--snapshot", file, "--format", "json"]);
    let value: Value =
        serde_json::from_slice(&plan.stdout).unwrap_or_else(|_| panic!("{}", binary::text(&plan)));
    let in_plan = value["undeclared_access"].as_array().unwrap();
    // And the example's links to IAM user `ci-legacy` (and what its own
    // policy and group give it) and role `jenkins-deployer`, outside writ,
    // and two trust statements of writ's roles not yet as the source says.
    assert_eq!(in_plan.len(), 15, "{in_plan:#?}");
    assert!(in_plan
        .iter()
        .any(|u| u["how"].as_str().unwrap().contains("hand-made")));
    let text = binary::writ(&root, &["plan", "--snapshot", file]);
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(
        text.contains("Access the source does not declare (15 links):\n  ! agent:"),
        "{text}"
    );
    // The graph draws them from the agent.
    let graph = binary::writ(
        &root,
        &["graph", "--snapshot", file, "--agent", "billing_bot"],
    );
    let text = String::from_utf8(graph.stdout).unwrap();
    assert!(text.contains("may do s3:* on aws.prod arn:aws:s3:::acme-invoices/* [observed: inline policy hand-made"), "{text}");
    let _ = std::fs::remove_file(file);
}

/// A deploy key that may push to a repository whose workflows run as an
/// agent can act as that agent: drawn from the observed state as a
/// workload, listed by drift and plans; a read-only key is not.
#[test]
fn a_deploy_key_that_may_push_acts_as_the_agents_its_repository_runs_as() {
    let root = example();
    let mut snapshot = example_snapshot();
    let key = |id: u64, title: &str, read_only: bool| {
        json!({
            "address": format!("github.acme/repos/acme/platform/keys/{id}"),
            "provider": "github.acme",
            "kind": "github_deploy_key",
            "attributes": {"repository": "acme/platform", "id": id, "title": title,
                "read_only": read_only, "created": "2024-01-02T00:00:00Z", "last_used": null},
        })
    };
    snapshot["providers"]["github.acme"]["resources"]
        .as_array_mut()
        .unwrap()
        .extend([key(101, "old ci push", false), key(102, "mirror", true)]);
    let file = write_snapshot("writ-deploy-key", &snapshot);
    let file = file.to_str().unwrap();
    let value = drift_json(file);
    let keys: Vec<&Value> = value["undeclared_access"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| {
            u["workload"]
                .as_str()
                .unwrap()
                .starts_with("github-deploy-key:")
        })
        .collect();
    // The agent the repository's workflows run as, and what only the
    // observed state lets them reach (a secret's IAM user key, a role
    // outside writ that admits them): a push changes what they run.
    let reached: Vec<&str> = keys
        .iter()
        .map(|k| k["resource"].as_str().unwrap())
        .collect();
    assert_eq!(
        reached,
        [
            "agent:deployer",
            "aws-user:prod/machines/ci-legacy",
            "aws-role:aws.prod/jenkins-deployer"
        ],
        "{keys:#?}"
    );
    let keys: Vec<&Value> = keys
        .into_iter()
        .filter(|k| k["resource"] == "agent:deployer")
        .collect();
    assert_eq!(keys[0]["workload"], "github-deploy-key:acme/platform/101");
    assert!(
        keys[0]
            .get("actions")
            .is_none_or(|a| a.as_array().unwrap().is_empty()),
        "{keys:#?}"
    );
    assert!(
        keys[0]["how"]
            .as_str()
            .unwrap()
            .contains("deploy key `old ci push` may push to `acme/platform`"),
        "{keys:#?}"
    );
    let text = binary::writ(&root, &["drift", "--snapshot", file]);
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(
        text.contains(
            "! github-deploy-key:acme/platform/101 may act as agent:deployer (observed: deploy key"
        ),
        "{text}"
    );
    // Its blast radius is the workflows': what the deployer holds in the
    // providers their trust gives.
    let from = binary::writ(
        &root,
        &[
            "graph",
            "--snapshot",
            file,
            "--from",
            "github-deploy-key:acme/platform/101",
        ],
    );
    let from = String::from_utf8(from.stdout).unwrap();
    assert!(from.starts_with("github-deploy-key:acme/platform/101 (GitHub deploy key)\n├─ authenticates as agent:deployer"), "{from}");
    assert!(
        from.contains("authenticates as aws-user:prod/machines/ci-legacy"),
        "{from}"
    );
    assert!(
        from.contains("may do ecr:GetAuthorizationToken on aws.prod *"),
        "{from}"
    );
    // The read-only key reaches nothing.
    let mirror = binary::writ(
        &root,
        &[
            "graph",
            "--snapshot",
            file,
            "--from",
            "github-deploy-key:acme/platform/102",
        ],
    );
    assert!(!mirror.status.success(), "{}", binary::text(&mirror));
    let _ = std::fs::remove_file(file);
}

/// GCP bindings that name an agent's service account beyond the source:
/// one no grant covers, and writ's own with its condition changed; not one
/// an unconditional grant already covers.
#[test]
fn gcp_bindings_beyond_the_source_are_drawn_from_the_observed_state() {
    let mut snapshot = example_snapshot();
    let loader = "serviceAccount:writ-warehouse-loader@acme-analytics.iam.gserviceaccount.com";
    let resources = snapshot["providers"]["gcp.analytics"]["resources"]
        .as_array_mut()
        .unwrap();
    for policy in resources.iter_mut() {
        match policy["attributes"]["resource"].as_str() {
            // Someone made the loader a BigQuery admin of the project, and
            // edited writ's every-bucket binding to the whole project.
            Some("projects/acme-analytics") => {
                policy["attributes"]["bindings"][0]["condition"]["expression"] =
                    json!("request.time < timestamp(\"2027-06-30T00:00:00Z\")");
                let bindings = policy["attributes"]["bindings"].as_array_mut().unwrap();
                bindings.push(json!({"role": "roles/bigquery.admin", "members": [loader]}));
            }
            // A viewer of the events bucket's objects without a condition:
            // the source's every-bucket grant already is.
            Some("projects/_/buckets/acme-events") => {
                let bindings = policy["attributes"]["bindings"].as_array_mut().unwrap();
                bindings.push(json!({"role": "roles/storage.objectViewer", "members": [loader]}));
            }
            _ => {}
        }
    }
    let file = write_snapshot("writ-gcp-observed", &snapshot);
    let file = file.to_str().unwrap();
    let value = drift_json(file);
    let gcp: Vec<&Value> = value["undeclared_access"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["resource"].as_str().unwrap().starts_with("gcp."))
        .collect();
    assert_eq!(gcp.len(), 2, "{gcp:#?}");
    let admin = gcp
        .iter()
        .find(|u| u["actions"] == json!(["roles/bigquery.admin"]))
        .unwrap_or_else(|| panic!("{gcp:#?}"));
    assert_eq!(admin["workload"], "agent:warehouse_loader");
    assert_eq!(admin["resource"], "gcp.analytics projects/acme-analytics");
    assert!(
        admin["how"]
            .as_str()
            .unwrap()
            .starts_with("observed: a binding not in the source"),
        "{admin}"
    );
    let edited = gcp
        .iter()
        .find(|u| u["actions"] == json!(["roles/storage.objectViewer"]))
        .unwrap_or_else(|| panic!("{gcp:#?}"));
    assert_eq!(edited["resource"], "gcp.analytics projects/acme-analytics");
    assert!(
        edited["how"]
            .as_str()
            .unwrap()
            .contains("its condition not as the source says"),
        "{edited}"
    );
    let _ = std::fs::remove_file(file);
}

/// A role writ does not own whose trust names an agent's role: the agent
/// may become it, and reach what it may do; one that trusts the account's
/// root is reached only by an agent whose grants allow assuming it.
#[test]
fn roles_outside_writ_that_trust_an_agent_are_chains_from_it() {
    let root = example();
    let mut snapshot = example_snapshot();
    let role = |name: &str, principal: &str| {
        json!({
            "address": format!("aws.prod/role/{name}"),
            "provider": "aws.prod",
            "kind": "aws_role",
            "attributes": {"name": name, "path": "/", "max_session_duration": 3600, "tags": {},
                "assume_role_policy": {"Version": "2012-10-17", "Statement": [
                    {"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"AWS": principal}}]}},
        })
    };
    let resources = snapshot["providers"]["aws.prod"]["resources"]
        .as_array_mut()
        .unwrap();
    resources.push(role(
        "data-admin",
        "arn:aws:iam::123456789012:role/writ/acme/billing_bot",
    ));
    resources.push(json!({
        "address": "aws.prod/role/data-admin/policy/all-data",
        "provider": "aws.prod",
        "kind": "aws_role_policy",
        "attributes": {"name": "all-data", "role": "data-admin", "policy": {"Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}},
    }));
    resources.push(role("ops", "arn:aws:iam::123456789012:root"));
    let file = write_snapshot("writ-trust-observed", &snapshot);
    let file = file.to_str().unwrap();
    let value = drift_json(file);
    let roles: Vec<&Value> = value["undeclared_access"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| {
            u["resource"].as_str().unwrap().starts_with("aws-role:")
                && u["workload"].as_str().unwrap().starts_with("agent:")
        })
        .collect();
    assert_eq!(roles.len(), 1, "{roles:#?}");
    assert_eq!(roles[0]["workload"], "agent:billing_bot");
    assert_eq!(roles[0]["resource"], "aws-role:aws.prod/data-admin");
    assert!(
        roles[0]["how"]
            .as_str()
            .unwrap()
            .contains("the trust of role data-admin (not writ's) names the agent's role"),
        "{roles:#?}"
    );
    // From the bot's pods: through its role, into the other, and what
    // that one may do.
    let from = binary::writ(
        &root,
        &[
            "graph",
            "--snapshot",
            file,
            "--from",
            "k8s:prod/billing/billing-bot",
        ],
    );
    let from = String::from_utf8(from.stdout).unwrap();
    assert!(
        from.contains(
            "may become aws-role:aws.prod/data-admin (observed: the trust of role data-admin (not writ's) names the agent's role; credentials in aws.prod) [observed only]\n"
        ),
        "{from}"
    );
    assert!(
        from.contains(
            "may do s3:* on aws.prod * [observed: inline policy all-data of role data-admin]"
        ),
        "{from}"
    );
    assert!(!from.contains("aws-role:aws.prod/ops"), "{from}");
    // `--to` finds the chain into it.
    let to = binary::writ(
        &root,
        &[
            "graph",
            "--snapshot",
            file,
            "--to",
            "arn:aws:s3:::anything/x",
        ],
    );
    let to = String::from_utf8(to.stdout).unwrap();
    assert!(to.contains("aws-role:aws.prod/data-admin"), "{to}");
    let _ = std::fs::remove_file(file);
}

/// The cases at the edge of what the observed state can hold: a path of
/// the API server bound to an agent's service account (but not the
/// discovery every cluster gives), and writ's binding whose role is gone
/// (unknown access, which a plan from a snapshot must check the source
/// again to find).
#[test]
fn non_resource_paths_and_a_missing_role_are_undeclared_access() {
    let root = example();
    let mut snapshot = example_snapshot();
    let resources = snapshot["providers"]["kubernetes.prod"]["resources"]
        .as_array_mut()
        .unwrap();
    resources.retain(|r| r["address"] != "kubernetes.prod/namespaces/services/roles/writ-deployer");
    resources.push(json!({
        "address": "kubernetes.prod/clusterroles/debug-paths",
        "provider": "kubernetes.prod",
        "kind": "kubernetes_cluster_role",
        "attributes": {"name": "debug-paths", "rules": [
            {"non_resource_urls": ["/debug/pprof/*", "/healthz", "/version"], "verbs": ["get"]}]},
    }));
    resources.push(json!({
        "address": "kubernetes.prod/clusterrolebindings/debug-paths",
        "provider": "kubernetes.prod",
        "kind": "kubernetes_cluster_role_binding",
        "attributes": {"name": "debug-paths",
            "role_ref": {"api_group": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "debug-paths"},
            "subjects": [{"kind": "ServiceAccount", "name": "billing-bot", "namespace": "billing"}]},
    }));
    let file =
        std::env::temp_dir().join(format!("writ-edges-observed-{}.json", std::process::id()));
    std::fs::write(&file, serde_json::to_string_pretty(&snapshot).unwrap()).unwrap();
    let file = file.to_str().unwrap();
    let plan = binary::writ(&root, &["plan", "--snapshot", file, "--format", "json"]);
    let value: Value =
        serde_json::from_slice(&plan.stdout).unwrap_or_else(|_| panic!("{}", binary::text(&plan)));
    let kubernetes: Vec<(&str, &str, String)> = value["undeclared_access"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["resource"].as_str().unwrap().starts_with("kubernetes."))
        .map(|u| {
            (
                u["workload"].as_str().unwrap(),
                u["resource"].as_str().unwrap(),
                u["how"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(kubernetes.len(), 2, "{kubernetes:#?}");
    assert!(
        kubernetes
            .iter()
            .any(|(w, r, how)| *w == "k8s:prod/billing/billing-bot"
                && *r == "kubernetes.prod /debug/pprof/* in cluster"
                && how.contains("a path of the API server")),
        "{kubernetes:#?}"
    );
    assert!(
        kubernetes
            .iter()
            .any(|(w, r, how)| *w == "k8s:prod/services/deployer"
                && *r == "kubernetes.prod *.* in namespace services"
                && how.contains("the role was not observed")),
        "{kubernetes:#?}"
    );
    // The role gone and nothing else: the binding is as writ made it, and
    // the plan still checks the source again to find it.
    let mut only = example_snapshot();
    only["providers"]["kubernetes.prod"]["resources"]
        .as_array_mut()
        .unwrap()
        .retain(|r| r["address"] != "kubernetes.prod/namespaces/services/roles/writ-deployer");
    std::fs::write(file, serde_json::to_string_pretty(&only).unwrap()).unwrap();
    let plan = binary::writ(&root, &["plan", "--snapshot", file, "--format", "json"]);
    let value: Value =
        serde_json::from_slice(&plan.stdout).unwrap_or_else(|_| panic!("{}", binary::text(&plan)));
    assert!(
        value["undeclared_access"]
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["workload"] == "k8s:prod/services/deployer"),
        "{value:#}"
    );
    let _ = std::fs::remove_file(file);
}

const GITHUB_APP: &str = r#"provider aws prod {
  account = "123456789012"
}

provider github acme {
  org = "acme"
}

/// Writes the docs.
agent docs_bot {
  owner = "team-docs"
  ttl = 1h
  runs_on github.acme app "acme-bots"
  github.acme allow contents:write on "acme/docs"
}

/// Triages issues; runs as the same App.
agent triage_bot {
  owner = "team-docs"
  ttl = 1h
  runs_on github.acme app "acme-bots"
  github.acme allow issues:write on "acme/platform"
}

/// Frozen: AWS denies it everything, GitHub keeps what it has.
agent old_bot {
  owner = "team-docs"
  ttl = 1h
  frozen = true
  runs_on github.acme repo "acme/old" workflow ".github/workflows/x.yml" ref "refs/heads/main"
  aws.prod allow s3:GetObject on "arn:aws:s3:::old/*"
  github.acme allow contents:read on "acme/old"
}
"#;

/// An App's installation token holds every permission of the App's agents
/// on every repository of theirs, so each agent running as the App reaches
/// what the others were granted; a frozen agent's AWS access is blocked,
/// its GitHub access is not (GitHub does not revoke it by the source).
#[test]
fn app_installations_and_frozen_agents_are_drawn_as_the_providers_hold_them() {
    let (model, graph) = graph_of(GITHUB_APP);
    let docs = graph.find("agent:docs_bot").unwrap();
    let reached: Vec<String> = graph
        .from(docs)
        .hops
        .iter()
        .map(|h| graph::render_edge(&graph, &graph.edges[h.edge]))
        .collect();
    assert!(
        reached.iter().any(|r| r
            .starts_with("may do contents:write, issues:write on github.acme acme/platform")
            && r.contains("installation token")),
        "{reached:#?}"
    );
    // Through the App, `--to` the other agent's repository finds both: the
    // triage bot by its grant and by the installation, the docs bot by the
    // installation.
    let found = graph.to(&model, "github.acme acme/platform").unwrap();
    let starts: Vec<&str> = found
        .chains
        .iter()
        .map(|c| graph.nodes[graph.edges[c.edges[0]].from].id.as_str())
        .collect();
    assert_eq!(starts, ["github-app:acme-bots"; 3], "{found:#?}");
    // Frozen: the workflow reaches the repository, not the bucket.
    let old = graph.find("github:acme/old").unwrap();
    let tree = graph.from(old);
    let words: Vec<String> = tree
        .hops
        .iter()
        .filter(|h| graph.edges[h.edge].open())
        .map(|h| graph::render_edge(&graph, &graph.edges[h.edge]))
        .collect();
    assert!(
        words
            .iter()
            .any(|w| w.contains("contents:read on github.acme acme/old")),
        "{words:#?}"
    );
    assert!(
        words.iter().all(|w| !w.contains("arn:aws:s3:::old")),
        "{words:#?}"
    );
    assert!(graph
        .to(&model, "arn:aws:s3:::old/x")
        .unwrap()
        .chains
        .is_empty());
    // GitHub reads names without case.
    assert_eq!(graph.named("github:ACME/Old"), Ok(old));
}

/// A `--to` writ cannot read is an error, not "nothing reaches".
#[test]
fn a_resource_writ_cannot_read_is_an_error() {
    let model = model_of(&folder_sources(&example()));
    let graph = Graph::build(&model, "acme");
    for (query, said) in [
        ("secrets", "is not a resource writ can read"),
        (
            "aws.prd arn:aws:s3:::acme-invoices/x",
            "did you mean `aws.prod`",
        ),
        ("k8s:prod/secrets in ", "not a Kubernetes resource"),
        (
            "k8s:prod/secrets in two words",
            "after `in`, a namespace or `cluster`",
        ),
    ] {
        let error = graph.to(&model, query).unwrap_err();
        assert!(error.contains(said), "{query}: {error}");
    }
}

/// `writ check --graph` says which workload acts as too many agents, by
/// `[graph] max_identities` in writ.toml (default 3); plain `check` does
/// not; a plan does, on standard error.
#[test]
fn check_graph_reports_wide_reach_by_the_configured_limit() {
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("graph-wide-reach");
    let _ = std::fs::remove_dir_all(&root);
    crate::support::copy_tree(&example(), &root);
    // The example's Lambda service is trusted by two agents in force.
    let output = binary::writ(&root, &["check", "--graph"]);
    assert!(
        !binary::text(&output).contains("wide_reach"),
        "{}",
        binary::text(&output)
    );
    let config = std::fs::read_to_string(root.join("writ.toml")).unwrap();
    std::fs::write(
        root.join("writ.toml"),
        format!("{config}\n[graph]\nmax_identities = 1\n"),
    )
    .unwrap();
    let output = binary::writ(&root, &["check", "--graph", "--format", "json"]);
    let text = binary::text(&output);
    assert!(output.status.success(), "{text}");
    assert!(
        text.contains("`aws-service:lambda.amazonaws.com` can act as 2 agents (audit_reader, report_mailer), more than `[graph] max_identities` (1) allows"),
        "{text}"
    );
    assert!(!binary::text(&binary::writ(&root, &["check"])).contains("wide_reach"));
    assert!(
        !binary::writ(&root, &["check", "--graph", "--deny-warnings"])
            .status
            .success()
    );
    let plan = binary::writ(&root, &["plan", "--snapshot", "snapshot.json"]);
    assert!(
        binary::text(&plan).contains("writ::wide_reach"),
        "{}",
        binary::text(&plan)
    );
    // A key `[graph]` does not have is an error that names it.
    std::fs::write(
        root.join("writ.toml"),
        format!("{config}\n[graph]\nmax_identity = 1\n"),
    )
    .unwrap();
    let output = binary::writ(&root, &["check", "--graph"]);
    assert!(!output.status.success());
    assert!(
        binary::text(&output).contains("max_identity"),
        "{}",
        binary::text(&output)
    );
    let _ = std::fs::remove_dir_all(&root);
}

const TAKEOVER: &str = r#"provider aws prod {
  account = "123456789012"
}

provider kubernetes prod {
  cluster = "prod"
  oidc_issuer = "https://oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE"
}

provider github acme {
  org = "acme"
}

/// Rolls out the apps namespace: may change a deployment, and so which
/// service account its pods run as.
agent ops {
  owner = "team-ops"
  ttl = 1h
  runs_on kubernetes.prod namespace "apps" service_account "ops"
  kubernetes.prod allow patch on "deployments.apps" in namespace "apps"
}

/// Holds the payments bucket, through IRSA.
agent payments {
  owner = "team-pay"
  ttl = 1h
  runs_on kubernetes.prod namespace "apps" service_account "payments"
  runs_on github.acme repo "acme/payments" workflow ".github/workflows/release.yml" environment "production"
  aws.prod allow s3:GetObject on "arn:aws:s3:::payments/*"
}

/// Maintains the repositories' workflows.
agent workflow_bot {
  owner = "team-ops"
  ttl = 1h
  runs_on github.acme app "acme-workflows"
  github.acme allow contents:write, workflows:write on "acme/payments"
}

/// Frozen: AWS and the cluster deny it, but GitHub keeps its grants.
agent old_pusher {
  owner = "team-ops"
  ttl = 1h
  frozen = true
  runs_on github.acme app "acme-old"
  github.acme allow contents:write on "acme/payments"
}

/// Reads the apps namespace only: becomes no one.
agent viewer {
  owner = "team-ops"
  ttl = 1h
  runs_on kubernetes.prod namespace "apps" service_account "viewer"
  kubernetes.prod allow get, list on "deployments.apps" in namespace "apps"
}
"#;

/// A grant that lets an agent become another is a chain into it: the
/// operator that may patch a deployment in the namespace of the payments
/// agent's service account reaches the payments bucket through it (IRSA),
/// and so does the App that may push a workflow to the payments
/// repository; a read-only agent does not.
#[test]
fn grants_that_let_an_agent_become_another_are_chains_into_it() {
    let (model, graph) = graph_of(TAKEOVER);
    let found = graph.to(&model, "arn:aws:s3:::payments/2026.csv").unwrap();
    let chains: Vec<String> = found
        .chains
        .iter()
        .map(|c| {
            let mut ids = vec![graph.nodes[graph.edges[c.edges[0]].from].id.clone()];
            ids.extend(
                c.edges
                    .iter()
                    .map(|&e| graph.nodes[graph.edges[e].to].id.clone()),
            );
            ids.join(" → ")
        })
        .collect();
    for want in [
        "k8s:prod/apps/payments → agent:payments → aws.prod arn:aws:s3:::payments/*",
        "github:acme/payments → agent:payments → aws.prod arn:aws:s3:::payments/*",
        "k8s:prod/apps/ops → agent:ops → agent:payments → aws.prod arn:aws:s3:::payments/*",
        "github-app:acme-workflows → agent:workflow_bot → agent:payments → aws.prod arn:aws:s3:::payments/*",
        "github-app:acme-old → agent:old_pusher → agent:payments → aws.prod arn:aws:s3:::payments/*",
    ] {
        assert!(chains.iter().any(|c| c == want), "no `{want}` in {chains:#?}");
    }
    assert!(chains.iter().all(|c| !c.contains("viewer")), "{chains:#?}");
    // Each way in is a request the evaluator allows (but the frozen agent's
    // GitHub access: GitHub keeps it, while the evaluator denies a frozen
    // agent everything).
    for edge in graph
        .edges
        .iter()
        .filter(|e| e.kind == EdgeKind::MayBecome && graph.nodes[e.from].state.is_none())
    {
        let witness = edge.witness.as_ref().unwrap();
        let (provider, _) = edge.mints[0];
        assert!(allowed(&model, edge.from, provider, witness), "{witness:?}");
    }
    // The operator's service account can act as every agent whose
    // service account is in its namespace: itself, payments, the viewer.
    let ops = graph.find("k8s:prod/apps/ops").unwrap();
    let names: Vec<&str> = graph
        .agents_reached(ops)
        .iter()
        .map(|&a| graph.nodes[a].id.as_str())
        .collect();
    assert_eq!(names.len(), 3, "{names:?}");
    assert!(names.contains(&"agent:viewer"));
}

/// The example's estate outside writ: an Actions secret of `acme/platform`
/// named like the key of IAM user `ci-legacy`, and role `jenkins-deployer`
/// whose trust names that user and the platform's main branch. Both are
/// chains from the repository, marked observed, and in the undeclared
/// access of drift; a role that trusts GitHub's issuer with no `sub`, or a
/// cluster's service account, is drawn from every repository or from that
/// account.
#[test]
fn a_key_in_a_secret_and_web_identity_trust_outside_writ_are_chains() {
    let root = example();
    let snapshot = example().join("snapshot.json");
    let snapshot = snapshot.to_str().unwrap();
    let from = binary::writ(
        &root,
        &[
            "graph",
            "--snapshot",
            snapshot,
            "--from",
            "github:acme/platform",
        ],
    );
    let text = String::from_utf8(from.stdout).unwrap();
    for expected in [
        "└─ authenticates as aws-user:prod/machines/ci-legacy (observed: Actions secret `CI_LEGACY_AWS_SECRET_ACCESS_KEY` of `acme/platform` may hold a key of IAM user `ci-legacy` (its name is in the secret's)",
        "may become aws-role:aws.prod/jenkins-deployer (observed: the trust of role jenkins-deployer (not writ's) names the IAM user; credentials in aws.prod) [observed only]",
        "authenticates as aws-role:aws.prod/jenkins-deployer (observed: the trust of role jenkins-deployer (not writ's) admits web identities of `arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com` with subject `repo:acme/platform:ref:refs/heads/main`",
        "may do s3:GetObject, s3:PutObject on aws.prod arn:aws:s3:::acme-artifacts/* [observed: inline policy deploy of role jenkins-deployer; with conditions writ did not evaluate]",
    ] {
        assert!(text.contains(expected), "no `{expected}` in:\n{text}");
    }
    // Without the snapshot, none of it.
    let bare = binary::writ(&root, &["graph", "--from", "github:acme/platform"]);
    assert!(!String::from_utf8_lossy(&bare.stdout).contains("ci-legacy"));
    let value = drift_json(snapshot);
    let links: Vec<(&str, &str)> = value["undeclared_access"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                u["workload"].as_str().unwrap(),
                u["resource"].as_str().unwrap(),
            )
        })
        .collect();
    for link in [
        ("github:acme/platform", "aws-user:prod/machines/ci-legacy"),
        (
            "aws-user:prod/machines/ci-legacy",
            "aws-role:aws.prod/jenkins-deployer",
        ),
        ("github:acme/platform", "aws-role:aws.prod/jenkins-deployer"),
    ] {
        assert!(links.contains(&link), "no {link:?} in {links:?}");
    }

    let mut wide = example_snapshot();
    let role = |name: &str, federated: &str, condition: Value| {
        json!({
            "address": format!("aws.prod/role/{name}"),
            "provider": "aws.prod",
            "kind": "aws_role",
            "attributes": {"name": name, "path": "/", "max_session_duration": 3600, "tags": {},
                "assume_role_policy": {"Version": "2012-10-17", "Statement": [
                    {"Effect": "Allow", "Action": "sts:AssumeRoleWithWebIdentity",
                     "Principal": {"Federated": format!("arn:aws:iam::123456789012:oidc-provider/{federated}")},
                     "Condition": condition}]}},
        })
    };
    let resources = wide["providers"]["aws.prod"]["resources"]
        .as_array_mut()
        .unwrap();
    resources.push(role(
        "anyone-on-github",
        "token.actions.githubusercontent.com",
        json!({"StringEquals": {"token.actions.githubusercontent.com:aud": "sts.amazonaws.com"}}),
    ));
    resources.push(role(
        "irsa-exporter",
        "oidc.eks.us-east-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE",
        json!({"StringEquals": {"oidc.eks.us-east-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE:sub": "system:serviceaccount:billing:legacy-exporter"}}),
    ));
    let file = write_snapshot("web-identity-trust", &wide);
    let value = drift_json(file.to_str().unwrap());
    let links: Vec<(&str, &str)> = value["undeclared_access"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                u["workload"].as_str().unwrap(),
                u["resource"].as_str().unwrap(),
            )
        })
        .collect();
    assert!(
        links.contains(&("github:*", "aws-role:aws.prod/anyone-on-github")),
        "{links:?}"
    );
    assert!(
        links.contains(&(
            "k8s:prod/billing/legacy-exporter",
            "aws-role:aws.prod/irsa-exporter"
        )),
        "{links:?}"
    );
    let _ = std::fs::remove_file(file);
}

/// A writ role's trust widened by hand: a statement lowering does not
/// write lets an AWS service, an IAM user, another role, the account and
/// a repository's workflows act as the agent, each drawn as observed, and
/// in drift's undeclared access.
#[test]
fn trust_in_a_writ_role_widened_by_hand_is_drawn() {
    let mut snapshot = example_snapshot();
    let resources = snapshot["providers"]["aws.prod"]["resources"]
        .as_array_mut()
        .unwrap();
    let role = resources
        .iter_mut()
        .find(|r| r["address"] == "aws.prod/role/report_mailer")
        .unwrap();
    let statements = role["attributes"]["assume_role_policy"]["Statement"]
        .as_array_mut()
        .unwrap();
    statements.push(json!({"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {
        "Service": "ec2.amazonaws.com",
        "AWS": ["arn:aws:iam::123456789012:user/intern", "arn:aws:iam::123456789012:role/ops-admin",
                "arn:aws:iam::999999999999:root", "arn:aws:iam::123456789012:role/writ/acme/billing_bot"]}}));
    statements.push(json!({"Effect": "Allow", "Action": "sts:AssumeRoleWithWebIdentity",
        "Principal": {"Federated": "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"},
        "Condition": {"StringLike": {"token.actions.githubusercontent.com:sub": "repo:acme/sandbox:*"}}}));
    let file = write_snapshot("widened-trust", &snapshot);
    let value = drift_json(file.to_str().unwrap());
    let links: Vec<(&str, &str)> = value["undeclared_access"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                u["workload"].as_str().unwrap(),
                u["resource"].as_str().unwrap(),
            )
        })
        .collect();
    for link in [
        ("aws-service:ec2.amazonaws.com", "agent:report_mailer"),
        ("aws-user:prod/intern", "agent:report_mailer"),
        ("aws-role:aws.prod/ops-admin", "agent:report_mailer"),
        ("aws-role:999999999999/*", "agent:report_mailer"),
        ("agent:billing_bot", "agent:report_mailer"),
        ("github:acme/sandbox", "agent:report_mailer"),
    ] {
        assert!(links.contains(&link), "no {link:?} in {links:?}");
    }
    // A chain from the repository to what the mailer may do.
    let graph = binary::writ(
        &example(),
        &[
            "graph",
            "--snapshot",
            file.to_str().unwrap(),
            "--from",
            "github:acme/sandbox",
        ],
    );
    let text = String::from_utf8(graph.stdout).unwrap();
    assert!(
        text.contains("authenticates as agent:report_mailer (observed: a statement of role report_mailer's trust that lowering does not write"),
        "{text}"
    );
    assert!(text.contains("may do ses:SendEmail"), "{text}");
    let _ = std::fs::remove_file(file);
}

/// An agent that runs as an IAM user whose key a GitHub secret may hold:
/// the repository reaches the agent through the user, and the user's own
/// policy too. Web identities a role outside writ trusts with no subject,
/// with a negated subject, or from an issuer writ cannot read are drawn as
/// reaching it from everyone they may admit.
#[test]
fn a_secret_reaches_the_agent_that_runs_as_its_user_and_loose_web_trust_is_drawn_wide() {
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("graph-user-agent");
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(
        root.join("main.writ"),
        r#"provider aws prod {
  account = "123456789012"
}

provider github acme {
  org = "acme"
}

provider kubernetes prod {
  cluster = "prod"
  oidc_issuer = "https://oidc.example.com/id/ABC"
}

agent legacy_ci {
  owner = "team-ci"
  ttl = 1h
  runs_on aws.prod user "machines/ci-legacy"
  aws.prod allow s3:GetObject on "arn:aws:s3:::acme-builds/*"
}
"#,
    )
    .unwrap();
    let role = |name: &str, statement: Value| {
        json!({"address": format!("aws.prod/role/{name}"), "provider": "aws.prod", "kind": "aws_role",
            "attributes": {"name": name, "path": "/", "max_session_duration": 3600, "tags": {},
                "assume_role_policy": {"Version": "2012-10-17", "Statement": [statement]}}})
    };
    let web = |federated: &str, condition: Value| {
        json!({"Effect": "Allow", "Action": "sts:AssumeRoleWithWebIdentity",
            "Principal": {"Federated": format!("arn:aws:iam::123456789012:{federated}")}, "Condition": condition})
    };
    let snapshot = json!({"format_version": 1, "providers": {
        "aws.prod": {"resources": [
            {"address": "aws.prod/user/ci-legacy", "provider": "aws.prod", "kind": "aws_user",
             "attributes": {"name": "ci-legacy", "path": "/machines/", "created": "2020-09-01",
               "policies": {"direct": {"Version": "2012-10-17", "Statement": [
                 {"Effect": "Allow", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::acme-releases/*"}]}}}},
            role("cluster-wide", web("oidc-provider/oidc.example.com/id/ABC",
                json!({"StringEquals": {"oidc.example.com/id/ABC:aud": "sts.amazonaws.com"}}))),
            role("not-prod", web("oidc-provider/token.actions.githubusercontent.com",
                json!({"StringNotLike": {"token.actions.githubusercontent.com:sub": "repo:acme/prod:*"}}))),
            role("gitlab", web("oidc-provider/gitlab.example.com",
                json!({"StringEquals": {"gitlab.example.com:sub": "project_path:acme/app:ref_type:branch:ref:main"}}))),
        ]},
        "github.acme": {"resources": [
            {"address": "github.acme/repos/acme/app/actions/secrets/CI_LEGACY_AWS_SECRET_ACCESS_KEY", "provider": "github.acme",
             "kind": "github_actions_secret",
             "attributes": {"repository": "acme/app", "name": "CI_LEGACY_AWS_SECRET_ACCESS_KEY", "created": "2021-01-01T00:00:00Z"}},
        ]},
    }});
    let file = root.join("snapshot.json");
    std::fs::write(&file, snapshot.to_string()).unwrap();
    let file = file.to_str().unwrap();
    let from = binary::writ(
        &root,
        &["graph", "--snapshot", file, "--from", "github:acme/app"],
    );
    let text = String::from_utf8(from.stdout).unwrap();
    for expected in [
        "authenticates as aws-user:prod/machines/ci-legacy (observed: Actions secret `CI_LEGACY_AWS_SECRET_ACCESS_KEY` of `acme/app`",
        "authenticates as agent:legacy_ci (long-lived access key",
        "may do s3:GetObject on aws.prod arn:aws:s3:::acme-builds/*",
        "may do s3:PutObject on aws.prod arn:aws:s3:::acme-releases/* [observed: inline policy direct of IAM user ci-legacy]",
    ] {
        assert!(text.contains(expected), "no `{expected}` in:\n{text}");
    }
    let drift = binary::writ(&root, &["drift", "--snapshot", file, "--format", "json"]);
    let value: Value = serde_json::from_slice(&drift.stdout)
        .unwrap_or_else(|_| panic!("{}", binary::text(&drift)));
    let links: Vec<(&str, &str)> = value["undeclared_access"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                u["workload"].as_str().unwrap(),
                u["resource"].as_str().unwrap(),
            )
        })
        .collect();
    for link in [
        ("github:acme/app", "aws-user:prod/machines/ci-legacy"),
        ("k8s:prod/*/*", "aws-role:aws.prod/cluster-wide"),
        ("github:*", "aws-role:aws.prod/not-prod"),
        (
            "web-identity:arn:aws:iam::123456789012:oidc-provider/gitlab.example.com",
            "aws-role:aws.prod/gitlab",
        ),
    ] {
        assert!(links.contains(&link), "no {link:?} in {links:?}");
    }
}
