//! Loading a project from disk: every `.writ` file below a folder (or one
//! file), in a stable order, plus its optional `writ.toml`.

use crate::config::{self, Config};
use std::path::{Path, PathBuf};
use writ_compiler::SourceMap;

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read `{path}`: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "`{path}` is not UTF-8 text (invalid byte at offset {offset}); .writ files must be UTF-8"
    )]
    NotUtf8 { path: PathBuf, offset: usize },
    #[error("`{0}` is not a `.writ` file or a folder")]
    NotWrit(PathBuf),
    #[error("no `.writ` files found under `{0}`, nor a `writ.toml` above it: a project is a folder of `.writ` files (with its settings in `writ.toml`); run writ inside it, or give its path")]
    Empty(PathBuf),
    #[error(transparent)]
    Config(#[from] config::ConfigError),
}

#[derive(Debug)]
pub struct Project {
    /// The folder (or, for a single file, its folder).
    pub root: PathBuf,
    pub name: String,
    pub sources: SourceMap,
    /// The path of each source, in the order of `sources`.
    pub paths: Vec<PathBuf>,
    pub config: Config,
}

/// The project a folder belongs to: the nearest folder at or above it
/// that holds a `writ.toml`, as cargo finds `Cargo.toml`; the folder itself
/// when none does. Written relative to `folder` as given (`..`, not an
/// absolute path), so that findings name files as the user would.
pub fn project_folder(folder: &Path) -> PathBuf {
    let mut current = folder.to_path_buf();
    // A bound, for a file system whose parents never end.
    for _ in 0..64 {
        if current.join("writ.toml").is_file() {
            return current;
        }
        let Ok(real) = std::fs::canonicalize(&current) else {
            break;
        };
        if real.parent().is_none() {
            break;
        }
        current = parent_of(&current);
    }
    folder.to_path_buf()
}

/// `a/b` → `a`, `a` → `.`, `.` → `..`, `..` → `../..`.
fn parent_of(path: &Path) -> PathBuf {
    match path.components().next_back() {
        Some(std::path::Component::Normal(_)) => match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
            _ => PathBuf::from("."),
        },
        Some(std::path::Component::CurDir) | None => PathBuf::from(".."),
        _ => path.join(".."),
    }
}

/// Loads the project at `path`: a folder (or the project above it; see
/// [`project_folder`]), or a single `.writ` file.
pub fn load(path: &Path) -> Result<Project, LoadError> {
    let metadata = std::fs::metadata(path).map_err(|source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let found;
    let path = if metadata.is_dir() {
        found = project_folder(path);
        found.as_path()
    } else {
        path
    };
    let (root, files) = if metadata.is_dir() {
        let mut files = Vec::new();
        collect(path, &mut files)?;
        files.sort();
        if files.is_empty() {
            return Err(LoadError::Empty(path.to_path_buf()));
        }
        (path.to_path_buf(), files)
    } else if path.extension().is_some_and(|e| e == "writ") {
        let root = path.parent().map(Path::to_path_buf).unwrap_or_default();
        (root, vec![path.to_path_buf()])
    } else {
        return Err(LoadError::NotWrit(path.to_path_buf()));
    };
    let mut sources = SourceMap::new();
    let here = std::env::current_dir().and_then(|d| d.canonicalize()).ok();
    for file in &files {
        let text = read_text(file)?;
        sources.add(display_path(file, here.as_deref()), text);
    }
    let config = if metadata.is_dir() {
        config::load(&root.join("writ.toml"))?
    } else {
        Config::default()
    };
    let name = config
        .project
        .name
        .clone()
        .or_else(|| folder_name(&root))
        .unwrap_or_else(|| "writ".to_string());
    Ok(Project {
        root,
        name,
        sources,
        paths: files,
        config,
    })
}

/// Reads a file as UTF-8 text, with a clear error for anything else.
pub fn read_text(path: &Path) -> Result<String, LoadError> {
    let bytes = std::fs::read(path).map_err(|source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    String::from_utf8(bytes).map_err(|error| LoadError::NotUtf8 {
        path: path.to_path_buf(),
        offset: error.utf8_error().valid_up_to(),
    })
}

pub(crate) fn collect(folder: &Path, files: &mut Vec<PathBuf>) -> Result<(), LoadError> {
    let entries = std::fs::read_dir(folder).map_err(|source| LoadError::Io {
        path: folder.to_path_buf(),
        source,
    })?;
    for entry in entries {
        let entry = entry.map_err(|source| LoadError::Io {
            path: folder.to_path_buf(),
            source,
        })?;
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let file_type = entry.file_type().map_err(|source| LoadError::Io {
            path: path.clone(),
            source,
        })?;
        if file_type.is_dir() {
            if name.starts_with('.') || name == "target" {
                continue;
            }
            collect(&path, files)?;
        } else if name.ends_with(".writ") && !name.starts_with('.') {
            files.push(path);
        }
    }
    Ok(())
}

/// A file's name as writ shows it (see [`display_path`]).
pub fn shown(path: &Path) -> String {
    let here = std::env::current_dir().and_then(|d| d.canonicalize()).ok();
    display_path(path, here.as_deref())
}

/// A file's name in findings: relative to the folder writ runs in when it
/// is below it (`teams/billing.writ`, also when the project was found
/// above: not `../teams/billing.writ`), else as reached.
fn display_path(path: &Path, here: Option<&Path>) -> String {
    let below = here.and_then(|here| {
        let real = path.canonicalize().ok()?;
        Some(real.strip_prefix(here).ok()?.to_string_lossy().into_owned())
    });
    if let Some(below) = below.filter(|b| !b.is_empty()) {
        return below;
    }
    let text = path.to_string_lossy();
    text.strip_prefix("./").unwrap_or(&text).to_string()
}

fn folder_name(root: &Path) -> Option<String> {
    let absolute = std::fs::canonicalize(root).ok()?;
    absolute
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
}
