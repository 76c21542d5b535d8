//! The pipeline every command shares: load the project, check it, lower it,
//! and plan it against what the providers hold; diagnostics printed on the
//! way. Pure steps are the compiler's; this module reads the project and
//! the date, and prints.

use crate::clock;
use crate::error::CliError;
use crate::project::{self, Project};
use crate::report::{self, Format};
use crate::term;
use std::io::Write;
use std::path::Path;
use writ_compiler::lower::Desired;
use writ_compiler::model::Model;
use writ_compiler::plan::{Identity, Origin, Plan, PlanOptions, Unfinished};
use writ_compiler::resource::Resource;
use writ_compiler::{CheckOptions, Checked, Diagnostic};

pub fn load(path: &Path) -> Result<Project, CliError> {
    let project = project::load(path)?;
    // Found above the folder given: say which project this is.
    if path.is_dir() && project.root != path {
        eprintln!(
            "project `{}` in `{}` (the nearest folder with a writ.toml)",
            project.name,
            project.root.display()
        );
    }
    Ok(project)
}

/// Prints findings in the format asked for.
pub fn print_diagnostics(
    out: &mut impl Write,
    project: &Project,
    diagnostics: &[Diagnostic],
    format: Format,
) -> Result<(), CliError> {
    let text = match format {
        Format::Json => report::render_json(&project.sources, diagnostics),
        Format::Plain => report::render_plain(&project.sources, diagnostics),
        Format::Github => {
            report::render_github(&project.sources, diagnostics, term::workspace().as_deref())
        }
        Format::Text => return write_findings(out, project, diagnostics, term::colour()),
    };
    out.write_all(text.as_bytes())?;
    Ok(())
}

/// Findings as the terminal shows them, written report by report.
fn write_findings(
    out: &mut dyn Write,
    project: &Project,
    diagnostics: &[Diagnostic],
    colour: bool,
) -> Result<(), CliError> {
    let mut buffered = std::io::BufWriter::new(out);
    report::write_graphical(
        &mut buffered,
        &project.sources,
        diagnostics,
        false,
        colour,
        term::width(),
    )?;
    buffered.flush()?;
    Ok(())
}

/// Leaves what a command built to the end of the process: freeing a large
/// estate's model, source and objects one allocation at a time costs a
/// tenth of its plan, for memory the process is about to give back whole.
/// Only for what a command holds as it returns.
pub fn leave<T>(built: T) {
    std::mem::forget(built);
}

/// The project checked (as of today), and, when it has no errors, its
/// providers checked against writ.toml.
pub fn checked(project: &Project) -> Result<Checked, CliError> {
    let checked = source_checked(project)?;
    // Only a source without errors declares all its providers.
    if !checked.has_errors() {
        providers_configured(project, &checked)?;
    }
    Ok(checked)
}

/// The project's source checked (as of today), writ.toml left aside.
pub fn source_checked(project: &Project) -> Result<Checked, CliError> {
    // Files are parsed on as many threads as the machine runs at once
    // (each file alone; the result is the same on one).
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    Ok(writ_compiler::check_with(
        &project.sources,
        &CheckOptions {
            today: clock::today()?,
        },
        threads,
    ))
}

/// Do writ.toml's provider sections match the providers the source
/// declares?
pub fn providers_configured(project: &Project, checked: &Checked) -> Result<(), CliError> {
    let declared: Vec<String> = checked
        .model
        .providers
        .iter()
        .map(|p| p.address())
        .collect();
    project.config.check_providers(&declared)?;
    Ok(())
}

/// Findings on the way to a plan, on standard error whatever the plan's
/// format (standard output is the plan's alone): in the terminal's layout,
/// and in GitHub Actions also as annotations (the runner reads workflow
/// commands on standard error).
pub fn show_findings(project: &Project, diagnostics: &[Diagnostic]) -> Result<(), CliError> {
    write_findings(
        &mut std::io::stderr().lock(),
        project,
        diagnostics,
        term::colour_stderr(),
    )?;
    if term::in_actions() {
        let commands =
            report::render_github(&project.sources, diagnostics, term::workspace().as_deref());
        eprint!("{commands}");
    }
    Ok(())
}

/// Checks and lowers a project; on errors, prints them and returns `None`.
/// Findings, errors and warnings alike, go to standard error.
pub fn desired_state(project: &Project) -> Result<Option<(Model, Desired)>, CliError> {
    let checked = checked(project)?;
    if checked.has_errors() {
        show_findings(project, &checked.diagnostics)?;
        eprintln!(
            "no plan: the source has errors ({})",
            report::summary(&checked.diagnostics)
        );
        return Ok(None);
    }
    // The syntax trees are not needed to lower: freed first, a large
    // estate's model and objects fit where they were.
    let writ_compiler::Checked {
        model,
        files,
        diagnostics,
    } = checked;
    drop(files);
    // The graph's findings first: its graph is freed before lowering, so
    // that the two are never held at once.
    let graph_found = graph_findings(project, &model);
    let desired = writ_compiler::lower::lower(&model, &project.name);
    let mut findings = diagnostics;
    findings.extend(desired.diagnostics.iter().cloned());
    findings.extend(graph_found);
    writ_compiler::diagnostic::sort_in_source_order(&mut findings);
    if desired.diagnostics.iter().any(Diagnostic::is_error) {
        show_findings(project, &findings)?;
        eprintln!(
            "no plan: the source has errors ({})",
            report::summary(&findings)
        );
        return Ok(None);
    }
    if !findings.is_empty() {
        show_findings(project, &findings)?;
    }
    Ok(Some((model, desired)))
}

/// Access the observed state holds and the source does not declare (see
/// [`writ_compiler::graph::Graph::observe`]), with the model when the
/// caller still holds it; without, the source is checked again only when
/// the observed state can hold such access (a plan from a snapshot frees
/// the model before reading it).
pub fn undeclared_access(
    project: &Project,
    model: Option<&Model>,
    desired: &Desired,
    observed: &[Resource],
) -> Result<Vec<writ_compiler::graph::Undeclared>, CliError> {
    let checked;
    let model = match model {
        Some(model) => model,
        None if !writ_compiler::graph::may_hold_undeclared(desired, observed) => {
            return Ok(Vec::new())
        }
        None => {
            // The model only: the syntax trees are freed at once.
            checked = self::checked(project)?.model;
            &checked
        }
    };
    let mut graph = writ_compiler::graph::Graph::identities(model, &project.name);
    graph.observe(model, desired, observed);
    Ok(graph.undeclared(model))
}

/// The access graph's findings on a checked model (`writ check --graph`,
/// and every plan): `[graph] max_identities` from writ.toml.
pub fn graph_findings(project: &Project, model: &Model) -> Vec<Diagnostic> {
    let graph = writ_compiler::graph::Graph::identities(model, &project.name);
    writ_compiler::graph::findings(&graph, project.config.graph.max_identities())
}

/// The plan of `desired` against `observed`, stamped with how it was made:
/// `identities` are the live providers' (`None` for a snapshot). The trust
/// of GitHub workflows is first bound to the repositories observed (their
/// ids and subject templates: see [`writ_compiler::lower::github`]).
pub fn make_plan(
    project: &Project,
    desired: &mut Desired,
    observed: &[Resource],
    identities: Option<&[Identity]>,
    unfinished: Vec<Unfinished>,
    snapshot: Option<&Path>,
) -> Result<Plan, CliError> {
    let options = PlanOptions {
        today: clock::today()?,
        max_key_age_days: project.config.max_key_age_days()?,
    };
    let binding = writ_compiler::lower::bind(desired, observed);
    let mut plan = writ_compiler::plan::plan(desired, observed, &options);
    plan.notes.extend(binding);
    plan.identities = identities.map(<[Identity]>::to_vec).unwrap_or_default();
    plan.note_unfinished(unfinished);
    plan.origin = Some(Origin {
        writ_version: env!("CARGO_PKG_VERSION").to_string(),
        source_digest: source_digest(project),
        observed: if identities.is_some() {
            "live"
        } else {
            "snapshot"
        }
        .to_string(),
        snapshot: snapshot.map(project::shown),
    });
    Ok(plan)
}

/// A digest of every source file, path and text, in the project's order.
fn source_digest(project: &Project) -> String {
    let mut digest = writ_compiler::policy::Digester::new();
    for (_, file) in project.sources.files() {
        digest.bytes(file.name.as_bytes());
        digest.bytes(&[0]);
        digest.bytes(file.text.as_bytes());
        digest.bytes(&[0]);
    }
    digest.finish()
}
