//! Rendering diagnostics for people and for tools. The compiler's
//! diagnostics are plain data; here they become miette reports (`human`,
//! `plain`) or JSON.

use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, SourceSpan};
use serde::Serialize;
use std::fmt;
use writ_compiler::{Diagnostic, Label, Severity, SourceFile, SourceMap, Span};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// For people: each finding with its source lines marked (colour as
    /// `--color` says).
    #[value(alias = "human")]
    Text,
    /// The same report in plain words, without colour or box drawing (for
    /// logs and screen readers).
    Plain,
    /// A JSON array with one object per finding.
    Json,
    /// GitHub Actions workflow commands (`::error file=…::…`), so findings
    /// appear as annotations on the pull request's changed lines.
    Github,
}

/// One diagnostic with its source, as miette wants it. Labels in other files
/// than the primary one become related reports, each with its own source.
struct Report<'a> {
    diagnostic: &'a Diagnostic,
    message: String,
    source: Excerpt<'a>,
    labels: Vec<(&'a Label, bool)>,
    related: Vec<Report<'a>>,
    show_code: bool,
}

impl<'a> Report<'a> {
    fn new(sources: &'a SourceMap, diagnostic: &'a Diagnostic) -> Report<'a> {
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
                source: Excerpt(sources.file(label.span.file)),
                labels: vec![(label, false)],
                related: Vec::new(),
                show_code: false,
            })
            .collect();
        Report {
            diagnostic,
            message: diagnostic.message.clone(),
            source: Excerpt(sources.file(diagnostic.primary.span.file)),
            labels,
            related,
            show_code: true,
        }
    }
}

/// A file as miette reads it, through its line index: the lines around a
/// span cost those lines, not every line above them (a project with
/// thousands of findings rendered each one from the top of its file).
struct Excerpt<'a>(&'a SourceFile);

impl miette::SourceCode for Excerpt<'_> {
    fn read_span<'b>(
        &'b self,
        span: &SourceSpan,
        context_lines_before: usize,
        context_lines_after: usize,
    ) -> Result<Box<dyn miette::SpanContents<'b> + 'b>, miette::MietteError> {
        let file = self.0;
        if file.has_lone_carriage_return() {
            // A line break to miette, not to the line index: read as miette
            // reads the whole file.
            let inner = <[u8] as miette::SourceCode>::read_span(
                file.text.as_bytes(),
                span,
                context_lines_before,
                context_lines_after,
            )?;
            return Ok(Box::new(miette::MietteSpanContents::new_named(
                file.name.clone(),
                inner.data(),
                *inner.span(),
                inner.line(),
                inner.column(),
                inner.line_count(),
            )));
        }
        // From one line more than asked above the span, miette's own
        // reading of the rest gives what it gives for the whole file; its
        // positions are then moved back to the file's.
        let (start, line) = file.line_start_above(
            u32::try_from(span.offset()).unwrap_or(u32::MAX),
            context_lines_before + 1,
        );
        let rest = &file.text.as_bytes()[start..];
        let within = SourceSpan::new((span.offset().saturating_sub(start)).into(), span.len());
        let inner = <[u8] as miette::SourceCode>::read_span(
            rest,
            &within,
            context_lines_before,
            context_lines_after,
        )?;
        Ok(Box::new(miette::MietteSpanContents::new_named(
            file.name.clone(),
            inner.data(),
            SourceSpan::new((inner.span().offset() + start).into(), inner.span().len()),
            inner.line() + line,
            inner.column(),
            inner.line_count() + line,
        )))
    }
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
    let mut out = Vec::new();
    // Writing into memory cannot fail.
    let _ = write_graphical(&mut out, sources, diagnostics, plain, colour, width);
    String::from_utf8_lossy(&out).into_owned()
}

/// [`render_graphical`], written report by report: a project with tens of
/// thousands of findings is never held as one text.
pub fn write_graphical(
    out: &mut dyn std::io::Write,
    sources: &SourceMap,
    diagnostics: &[Diagnostic],
    plain: bool,
    colour: bool,
    width: usize,
) -> std::io::Result<()> {
    let theme = match (plain, colour) {
        (true, _) => GraphicalTheme::none(),
        (false, true) => GraphicalTheme::unicode(),
        (false, false) => GraphicalTheme::unicode_nocolor(),
    };
    let handler = GraphicalReportHandler::new_themed(theme)
        .with_width(width)
        .with_links(false);
    let mut text = String::new();
    for diagnostic in diagnostics {
        text.clear();
        let report = Report::new(sources, diagnostic);
        if handler.render_report(&mut text, &report).is_err() {
            // Rendering into a String cannot fail; keep the finding regardless.
            text.push_str(&format!("{}: {}\n", diagnostic.code, diagnostic.message));
        }
        text.push('\n');
        out.write_all(text.as_bytes())?;
    }
    Ok(())
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

/// A workflow command's message, escaped as the Actions runner reads it.
pub fn escape_data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// A workflow command's property value: as a message, and `:` and `,`.
pub fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

/// The findings as GitHub Actions workflow commands, one line each:
/// `::error file=F,line=L,col=C,endLine=L,endColumn=C,title=writ::CODE::message`
/// (the title's colons escaped, as properties need).
/// File names are made relative to `workspace` (the checkout,
/// `GITHUB_WORKSPACE`) when they lie under it, as annotations need.
pub fn render_github(
    sources: &SourceMap,
    diagnostics: &[Diagnostic],
    workspace: Option<&std::path::Path>,
) -> String {
    let mut out = String::new();
    for diagnostic in diagnostics {
        let position = position(sources, diagnostic.primary.span);
        let path = std::path::Path::new(position.file);
        let file = workspace
            .and_then(|root| path.strip_prefix(root).ok())
            .unwrap_or(path)
            .to_string_lossy()
            .into_owned();
        let command = match diagnostic.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let mut message = diagnostic.message.clone();
        if !diagnostic.primary.message.is_empty() {
            message.push_str(&format!(" ({})", diagnostic.primary.message));
        }
        if let Some(help) = &diagnostic.help {
            message.push_str(&format!("\nhelp: {help}"));
        }
        out.push_str(&format!(
            "::{command} file={},line={},col={},endLine={},endColumn={},title={}::{}\n",
            escape_property(&file),
            position.line,
            position.column,
            position.end_line,
            position.end_column,
            escape_property(diagnostic.code.as_str()),
            escape_data(&message),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_special_character_is_escaped() {
        let nasty = "100% sure, a:b\r\nnext line";
        assert_eq!(escape_data(nasty), "100%25 sure, a:b%0D%0Anext line");
        assert_eq!(
            escape_property(nasty),
            "100%25 sure%2C a%3Ab%0D%0Anext line"
        );
        // `%` first, so that escapes are not escaped twice.
        assert_eq!(escape_data("%0A"), "%250A");
        assert_eq!(escape_property("writ::x"), "writ%3A%3Ax");
    }

    #[test]
    fn findings_become_one_command_each_with_a_position() {
        let mut sources = SourceMap::new();
        sources.add(
            "/work/repo/infra/main.writ",
            "agent a {\n  owner = \"t\"\n  ttl = 1h\n  aws.prod allow s3:GetObject on \"*\"\n}\n"
                .to_string(),
        );
        let checked = writ_compiler::check(
            &sources,
            &writ_compiler::CheckOptions {
                today: writ_compiler::values::Date {
                    year: 2026,
                    month: 11,
                    day: 28,
                },
            },
        );
        assert!(!checked.diagnostics.is_empty());
        let text = render_github(
            &sources,
            &checked.diagnostics,
            Some(std::path::Path::new("/work/repo")),
        );
        assert_eq!(text.lines().count(), checked.diagnostics.len(), "{text}");
        for line in text.lines() {
            assert!(
                line.starts_with("::error file=infra/main.writ,line=")
                    || line.starts_with("::warning file=infra/main.writ,line="),
                "{line}"
            );
            assert!(line.contains(",title=writ%3A%3A"), "{line}");
            let message = line.splitn(3, "::").nth(2).unwrap();
            assert!(!message.contains('\n') && !message.is_empty(), "{line}");
        }
    }
}

#[cfg(test)]
mod excerpt_tests {
    use super::*;
    use miette::SourceCode;

    /// The excerpt reads every span exactly as miette reads the whole file.
    #[test]
    fn an_excerpt_reads_every_span_as_the_whole_file_does() {
        for text in [
            "agent a {\n  ttl = 1h\r\n\n  owner = \"é\"\n}\nlast line without end",
            "agent a {\r  ttl = 1h\r\n\n  owner = \"é\"\r}\nlast\r",
        ] {
            reads_as_the_whole_file(text);
        }
    }

    fn reads_as_the_whole_file(text: &str) {
        let file = SourceFile::new("main.writ", text);
        let excerpt = Excerpt(&file);
        let whole = miette::NamedSource::new("main.writ", text.to_string());
        for offset in 0..=text.len() {
            for len in 0..=(text.len() - offset).min(14) {
                let span = SourceSpan::new(offset.into(), len);
                for (before, after) in [(0, 0), (1, 1), (2, 3), (5, 0)] {
                    let ours = excerpt.read_span(&span, before, after);
                    let theirs = whole.read_span(&span, before, after);
                    match (ours, theirs) {
                        (Ok(ours), Ok(theirs)) => {
                            let what = format!("{offset}+{len} ({before}, {after})");
                            assert_eq!(ours.data(), theirs.data(), "{what}");
                            assert_eq!(ours.span(), theirs.span(), "{what}");
                            assert_eq!(ours.line(), theirs.line(), "{what}");
                            assert_eq!(ours.column(), theirs.column(), "{what}");
                            assert_eq!(ours.line_count(), theirs.line_count(), "{what}");
                            assert_eq!(ours.name(), theirs.name(), "{what}");
                        }
                        (Err(_), Err(_)) => {}
                        (ours, theirs) => panic!(
                            "{offset}+{len}: ours {:?}, miette's {:?}",
                            ours.is_ok(),
                            theirs.is_ok()
                        ),
                    }
                }
            }
        }
    }
}
