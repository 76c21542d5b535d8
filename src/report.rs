//! Rendering diagnostics for people and for tools. The compiler's
//! diagnostics are plain data; here they become miette reports (`human`,
//! `plain`) or JSON.

use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, NamedSource, SourceSpan};
use serde::Serialize;
use std::fmt;
use writ_compiler::{Diagnostic, Label, Severity, SourceMap, Span};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// miette's graphical report; colour only on a terminal, never with NO_COLOR.
    Human,
    /// The same report without colour or box-drawing characters.
    Plain,
    /// A JSON array with one object per finding.
    Json,
}

/// One diagnostic with its source, as miette wants it. Labels in other files
/// than the primary one become related reports, each with its own source.
struct Report<'a> {
    diagnostic: &'a Diagnostic,
    message: String,
    source: NamedSource<String>,
    labels: Vec<(&'a Label, bool)>,
    related: Vec<Report<'a>>,
    show_code: bool,
}

impl<'a> Report<'a> {
    fn new(sources: &SourceMap, diagnostic: &'a Diagnostic) -> Report<'a> {
        let file = diagnostic.primary.span.file;
        let mut labels = vec![(&diagnostic.primary, true)];
        let mut elsewhere: Vec<&Label> = Vec::new();
        for label in &diagnostic.secondary {
            if label.span.file == file {
                labels.push((label, false));
            } else {
                elsewhere.push(label);
            }
        }
        let related = elsewhere
            .into_iter()
            .map(|label| Report {
                diagnostic,
                message: label.message.clone(),
                source: named_source(sources, label.span),
                labels: vec![(label, false)],
                related: Vec::new(),
                show_code: false,
            })
            .collect();
        Report {
            diagnostic,
            message: diagnostic.message.clone(),
            source: named_source(sources, diagnostic.primary.span),
            labels,
            related,
            show_code: true,
        }
    }
}

fn named_source(sources: &SourceMap, span: Span) -> NamedSource<String> {
    let file = sources.file(span.file);
    NamedSource::new(file.name.clone(), file.text.clone())
}

impl fmt::Debug for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Report<'_> {}

impl miette::Diagnostic for Report<'_> {
    fn code<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        self.show_code
            .then(|| Box::new(self.diagnostic.code.as_str()) as Box<dyn fmt::Display>)
    }

    fn severity(&self) -> Option<miette::Severity> {
        Some(match (self.show_code, self.diagnostic.severity) {
            (false, _) => miette::Severity::Advice,
            (true, Severity::Error) => miette::Severity::Error,
            (true, Severity::Warning) => miette::Severity::Warning,
        })
    }

    fn help<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        if !self.show_code {
            return None;
        }
        self.diagnostic
            .help
            .as_ref()
            .map(|help| Box::new(help) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        Some(&self.source)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        Some(Box::new(self.labels.iter().map(|(label, primary)| {
            let span = SourceSpan::from(label.span.range());
            let text = (!label.message.is_empty()).then(|| label.message.clone());
            if *primary {
                LabeledSpan::new_primary_with_span(text, span)
            } else {
                LabeledSpan::new_with_span(text, span)
            }
        })))
    }

    fn related<'b>(&'b self) -> Option<Box<dyn Iterator<Item = &'b dyn miette::Diagnostic> + 'b>> {
        if self.related.is_empty() {
            return None;
        }
        Some(Box::new(
            self.related.iter().map(|r| r as &dyn miette::Diagnostic),
        ))
    }
}

/// Renders diagnostics as miette reports. `colour` picks the themed output;
/// `plain` output uses neither colour nor box drawing.
pub fn render_graphical(
    sources: &SourceMap,
    diagnostics: &[Diagnostic],
    plain: bool,
    colour: bool,
    width: usize,
) -> String {
    let theme = match (plain, colour) {
        (true, _) => GraphicalTheme::none(),
        (false, true) => GraphicalTheme::unicode(),
        (false, false) => GraphicalTheme::unicode_nocolor(),
    };
    let handler = GraphicalReportHandler::new_themed(theme)
        .with_width(width)
        .with_links(false);
    let mut out = String::new();
    for diagnostic in diagnostics {
        let report = Report::new(sources, diagnostic);
        if handler.render_report(&mut out, &report).is_err() {
            // Rendering into a String cannot fail; keep the finding regardless.
            out.push_str(&format!("{}: {}\n", diagnostic.code, diagnostic.message));
        }
        out.push('\n');
    }
    out
}

/// The `plain` report at a fixed width: what the golden tests snapshot.
pub fn render_plain(sources: &SourceMap, diagnostics: &[Diagnostic]) -> String {
    render_graphical(sources, diagnostics, true, false, 100)
}

#[derive(Serialize)]
struct JsonPosition<'a> {
    file: &'a str,
    line: usize,
    column: usize,
    end_line: usize,
    end_column: usize,
    span: JsonSpan,
}

#[derive(Serialize)]
struct JsonSpan {
    start: u32,
    end: u32,
}

#[derive(Serialize)]
struct JsonLabel<'a> {
    #[serde(flatten)]
    position: JsonPosition<'a>,
    message: &'a str,
    primary: bool,
}

#[derive(Serialize)]
struct JsonDiagnostic<'a> {
    code: &'static str,
    severity: Severity,
    message: &'a str,
    #[serde(flatten)]
    position: JsonPosition<'a>,
    labels: Vec<JsonLabel<'a>>,
    help: Option<&'a str>,
}

fn position(sources: &SourceMap, span: Span) -> JsonPosition<'_> {
    let file = sources.file(span.file);
    let (line, column) = file.line_column(span.start);
    let (end_line, end_column) = file.line_column(span.end);
    JsonPosition {
        file: &file.name,
        line,
        column,
        end_line,
        end_column,
        span: JsonSpan {
            start: span.start,
            end: span.end,
        },
    }
}

/// A JSON array, one object per finding (documented in docs/diagnostics.md).
pub fn render_json(sources: &SourceMap, diagnostics: &[Diagnostic]) -> String {
    let items: Vec<JsonDiagnostic> = diagnostics
        .iter()
        .map(|d| JsonDiagnostic {
            code: d.code.as_str(),
            severity: d.severity,
            message: &d.message,
            position: position(sources, d.primary.span),
            labels: std::iter::once((&d.primary, true))
                .chain(d.secondary.iter().map(|l| (l, false)))
                .map(|(label, primary)| JsonLabel {
                    position: position(sources, label.span),
                    message: &label.message,
                    primary,
                })
                .collect(),
            help: d.help.as_deref(),
        })
        .collect();
    let mut text = serde_json::to_string_pretty(&items).unwrap_or_else(|_| "[]".to_string());
    text.push('\n');
    text
}

/// "2 errors, 1 warning"
pub fn summary(diagnostics: &[Diagnostic]) -> String {
    let errors = diagnostics.iter().filter(|d| d.is_error()).count();
    let warnings = diagnostics.len() - errors;
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    format!(
        "{}, {}",
        plural(errors, "error"),
        plural(warnings, "warning")
    )
}
