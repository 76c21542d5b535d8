//! `writ init`: a new project: `writ.toml`, a providers file, one example
//! agent with comments, a `.gitignore` entry for the plan file, and the
//! two GitHub Actions workflows (plan on pull requests, apply on merge).
//! On a terminal it asks the project's name and its providers; otherwise
//! it asks nothing and takes the defaults. It never writes over a file.

use crate::error::{CliError, Outcome};
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

/// The example workflows, as `examples/github-actions/` keeps them.
const PLAN_WORKFLOW: &str = include_str!("../../examples/github-actions/writ-plan.yml");
const APPLY_WORKFLOW: &str = include_str!("../../examples/github-actions/writ-apply.yml");

/// The provider kinds a project may start with.
const KINDS: &[&str] = &["aws", "kubernetes", "github", "gcp"];

pub fn run(out: &mut impl Write, path: &Path, name: Option<&str>, providers: &[String]) -> Outcome {
    std::fs::create_dir_all(path)
        .map_err(|e| CliError::Message(format!("cannot make `{}`: {e}", path.display())))?;
    let folder = std::fs::canonicalize(path)
        .map_err(|e| CliError::Message(format!("cannot read `{}`: {e}", path.display())))?;
    let default_name = folder
        .file_name()
        .map(|n| project_name(&n.to_string_lossy()))
        .unwrap_or_else(|| "project".to_string());
    let asking = name.is_none() && providers.is_empty() && std::io::stdin().is_terminal();
    let (name, kinds) = if asking {
        let name = ask(&format!("Project name [{default_name}]: "))?;
        let name = match name.trim() {
            "" => default_name,
            given => project_name(given),
        };
        let kinds = ask("Providers (aws, kubernetes, github, gcp) [aws]: ")?;
        (name, kinds_of(&kinds)?)
    } else {
        (
            name.map(project_name).unwrap_or(default_name),
            kinds_of(&providers.join(","))?,
        )
    };
    let mut files: Vec<(PathBuf, String)> = vec![
        (path.join("writ.toml"), settings(&name, &kinds)),
        (path.join("providers.writ"), provider_source(&kinds)),
        (
            path.join("agents.writ"),
            agent_source(&kinds, crate::clock::today()?),
        ),
    ];
    // The workflows and the ignore file live at the repository's root.
    let (root, within) = repository_root(&folder);
    let project_path = match within.as_os_str().is_empty() {
        true => ".".to_string(),
        false => within.to_string_lossy().replace('\\', "/"),
    };
    let workflows = root.join(".github").join("workflows");
    files.push((
        workflows.join("writ-plan.yml"),
        workflow(PLAN_WORKFLOW, &project_path, &kinds),
    ));
    files.push((
        workflows.join("writ-apply.yml"),
        workflow(APPLY_WORKFLOW, &project_path, &kinds),
    ));
    let mut made = 0;
    for (file, text) in &files {
        if file.exists() {
            writeln!(out, "kept {} (it exists)", shown(file))?;
            continue;
        }
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent).map_err(|e| {
                CliError::Message(format!("cannot make `{}`: {e}", parent.display()))
            })?;
        }
        std::fs::write(file, text)
            .map_err(|e| CliError::Message(format!("cannot write `{}`: {e}", file.display())))?;
        writeln!(out, "wrote {}", shown(file))?;
        made += 1;
    }
    // The plan file a workflow (or a person) writes is not source.
    let ignore = root.join(".gitignore");
    // The workflows write it at the repository's root.
    let entry = "/writ-plan.json".to_string();
    let existing = match std::fs::read(&ignore) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => {
            return Err(CliError::Message(format!(
                "cannot read `{}`: {e}",
                ignore.display()
            )))
        }
    };
    if !existing
        .lines()
        .any(|l| l.trim() == entry || l.trim() == "writ-plan.json")
    {
        // Appended: what the file holds is never written again.
        let mut text = String::new();
        if !existing.is_empty() && !existing.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&format!(
            "# writ's plan files: made by each run, not source\n{entry}\n"
        ));
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&ignore)
            .and_then(|mut file| file.write_all(text.as_bytes()))
            .map_err(|e| CliError::Message(format!("cannot write `{}`: {e}", ignore.display())))?;
        writeln!(out, "added `{entry}` to {}", shown(&ignore))?;
    }
    writeln!(
        out,
        "\n{} project `{name}` in {}. Next: put your account's id (and the others' settings) in providers.writ, then\n\n  writ check {}\n  writ plan {}",
        if made > 0 { "Made" } else { "Nothing new for" },
        shown(path),
        shown(path),
        shown(path)
    )?;
    Ok(0)
}

fn shown(path: &Path) -> String {
    path.display().to_string()
}

fn ask(question: &str) -> Result<String, CliError> {
    eprint!("{question}");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| CliError::Message(format!("cannot read the answer: {e}")))?;
    Ok(line)
}

/// A name writ marks objects with: lower case letters, digits and `-`.
fn project_name(text: &str) -> String {
    let name: String = text
        .trim()
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    // writ.toml takes names of at most 64 characters.
    let name: String = name.trim_matches('-').chars().take(64).collect();
    let name = name.trim_end_matches('-').to_string();
    if name.is_empty() {
        "project".to_string()
    } else {
        name
    }
}

/// The provider kinds in a comma- or space-separated answer (`aws` when
/// none), or which one writ does not know.
fn kinds_of(answer: &str) -> Result<Vec<&'static str>, CliError> {
    let mut kinds = Vec::new();
    for word in answer
        .split([',', ' '])
        .map(str::trim)
        .filter(|w| !w.is_empty())
    {
        let word = word.to_ascii_lowercase();
        let Some(kind) = KINDS.iter().find(|k| **k == word) else {
            return Err(format!(
                "`{word}` is not a provider writ knows: {}",
                KINDS.join(", ")
            )
            .into());
        };
        if !kinds.contains(kind) {
            kinds.push(*kind);
        }
    }
    if kinds.is_empty() {
        kinds.push("aws");
    }
    Ok(kinds)
}

fn settings(name: &str, kinds: &[&str]) -> String {
    let mut text = format!(
        "# writ's settings for this project (docs/cli.md).\n\n# The project's name marks every object writ makes in the providers:\n# choose it once, and keep it.\n[project]\nname = \"{name}\"\n\n# How to reach each provider the source declares, for `writ plan --live`\n# and `writ apply`. Credentials come from each provider's own chain, never\n# from this file.\n"
    );
    for kind in kinds {
        text.push_str(match *kind {
            "aws" => "\n[provider.aws.prod]\nregion = \"us-east-1\"\n# profile = \"prod\"\n",
            "kubernetes" => "\n[provider.kubernetes.prod]\n# The kubeconfig context (the workflows make it with\n# `aws eks update-kubeconfig --alias prod-eks`).\ncontext = \"prod-eks\"\n",
            "github" => "\n# GitHub is read live only with this section (docs/github.md).\n# [provider.github.main]\n# token_env = \"GITHUB_TOKEN\"\n",
            _ => "\n# GCP is read live only with this section (docs/gcp.md).\n# [provider.gcp.main]\n",
        });
    }
    text
}

fn provider_source(kinds: &[&str]) -> String {
    let mut text = String::from("// The systems this project's machine identities live in: each is\n// referred to elsewhere as `kind.name` (`aws.prod`).\n");
    for kind in kinds {
        text.push('\n');
        text.push_str(match *kind {
            "aws" => "/// The production AWS account: put its 12-digit id here.\nprovider aws prod {\n  account = \"123456789012\"\n}\n",
            "kubernetes" => "/// The production cluster (its name, as the workflows' `aws eks\n/// update-kubeconfig --name` gives it). With `oidc_issuer` (the\n/// cluster's OIDC issuer URL), AWS roles can trust its service accounts.\nprovider kubernetes prod {\n  cluster = \"prod-eks\"\n}\n",
            "github" => "/// The GitHub organisation whose workflows and Apps act as agents.\nprovider github main {\n  org = \"your-org\"\n}\n",
            _ => "/// A GCP project.\nprovider gcp main {\n  project = \"your-project\"\n}\n",
        });
    }
    text
}

fn agent_source(kinds: &[&str], today: writ_compiler::values::Date) -> String {
    // Half a year from today, on the first of the month.
    let (mut year, mut month) = (today.year, today.month + 6);
    if month > 12 {
        month -= 12;
        year += 1;
    }
    let expires = format!("{year:04}-{month:02}-01");
    let (runs_on, grant) = match kinds.first().copied().unwrap_or("aws") {
        "kubernetes" => (
            "runs_on kubernetes.prod namespace \"reports\" service_account \"nightly-report\"",
            "kubernetes.prod allow get on \"configmaps\" named \"report-settings\" in namespace \"reports\"",
        ),
        "github" => (
            "runs_on github.main repo \"your-org/reports\" ref \"refs/heads/main\"",
            "github.main allow contents:read on \"your-org/reports\"",
        ),
        "gcp" => (
            "runs_on gcp.main workload_pool \"your-project.svc.id.goog\" subject \"reports/nightly-report\"",
            "gcp.main allow roles/storage.objectViewer on \"projects/_/buckets/example-reports\"",
        ),
        _ => (
            "runs_on aws.prod service \"lambda.amazonaws.com\"",
            "aws.prod allow s3:GetObject on \"arn:aws:s3:::example-reports/*\"",
        ),
    };
    format!(
        "/// An example agent: a nightly job that reads its reports. Make it\n/// yours, or delete this file, once you have written your own.\nagent nightly_report {{\n  // Who answers for it.\n  owner = \"team-platform\"\n  // How long each credential it is given may live.\n  ttl = 1h\n  // When its access ends, whatever else happens.\n  expires = {expires}\n  // Where it runs: what may act as it.\n  {runs_on}\n  // What it may do: one grant a line.\n  {grant}\n}}\n"
    )
}

/// The repository's root (the nearest folder at or above `folder` that
/// holds `.git`, or `folder` itself) and the project's folder within it.
fn repository_root(folder: &Path) -> (PathBuf, PathBuf) {
    let mut current = Some(folder);
    while let Some(dir) = current {
        if dir.join(".git").exists() {
            let within = folder
                .strip_prefix(dir)
                .unwrap_or(Path::new(""))
                .to_path_buf();
            return (dir.to_path_buf(), within);
        }
        current = dir.parent();
    }
    (folder.to_path_buf(), PathBuf::new())
}

/// An example workflow for a project at `project` (from the repository's
/// root), without the cluster's credentials when there is no cluster.
fn workflow(text: &str, project: &str, kinds: &[&str]) -> String {
    let paths = match project {
        "." => "[\"**.writ\", \"writ.toml\"]".to_string(),
        within => format!("[\"{within}/**\"]"),
    };
    let mut out = String::new();
    let mut skip = 0;
    for line in text.lines() {
        if skip > 0 {
            skip -= 1;
            continue;
        }
        if !kinds.contains(&"kubernetes")
            && line
                .trim_start()
                .starts_with("- name: Kubernetes credentials")
        {
            // The step's `run:` line goes with it.
            skip = 1;
            continue;
        }
        // AWS credentials, for AWS and for EKS: with neither, not the step
        // (and its `with:` and two settings).
        if !kinds.contains(&"aws")
            && !kinds.contains(&"kubernetes")
            && line
                .trim_start()
                .starts_with("- uses: aws-actions/configure-aws-credentials")
        {
            skip = 3;
            continue;
        }
        let line = line
            .replace("[\"infra/**\"]", &paths)
            .replace(" infra ", &format!(" {project} "));
        out.push_str(&line);
        out.push('\n');
    }
    out
}
