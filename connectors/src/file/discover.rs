//! Which files a `path` setting names: a file, a directory (its files, or with `recursive`
//! every file below it), or a glob (`in/*.csv`, `logs/**/*.jsonl`); always in name order,
//! hidden files and directories (`.x`, `_x`) left out of directory walks.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Files matching `pattern`, sorted by path. `keep` filters directory walks by file name
/// (for example `*.parquet` only). A path that matches nothing yields an empty list.
pub fn list_files(
    pattern: &Path,
    recursive: bool,
    keep: &dyn Fn(&Path) -> bool,
) -> Result<Vec<PathBuf>> {
    let text = pattern.to_string_lossy();
    let mut files = Vec::new();
    if pattern.is_dir() {
        walk(pattern, recursive, keep, &mut files)?;
    } else if text.contains(['*', '?', '[']) {
        let matches = glob::glob(&text)
            .map_err(|e| Error::config(format!("path `{text}` is not a valid glob: {e}")))?;
        for entry in matches {
            let path = entry.map_err(|e| {
                Error::io(e.path().to_path_buf(), std::io::Error::other(e.to_string()))
            })?;
            if path.is_file() {
                files.push(path);
            }
        }
    } else if pattern.is_file() {
        files.push(pattern.to_path_buf());
    }
    files.sort();
    Ok(files)
}

fn walk(
    dir: &Path,
    recursive: bool,
    keep: &dyn Fn(&Path) -> bool,
    files: &mut Vec<PathBuf>,
) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let path = entry.path();
        if is_hidden(&path) {
            continue;
        }
        let kind = entry.file_type().map_err(|e| Error::io(&path, e))?;
        if kind.is_dir() {
            if recursive {
                walk(&path, recursive, keep, files)?;
            }
        } else if keep(&path) {
            files.push(path);
        }
    }
    Ok(())
}

/// Whether a file or directory name starts with `.` or `_` (temporary files, `_sluice`).
pub fn is_hidden(path: &Path) -> bool {
    path.file_name()
        .map(|n| n.to_string_lossy())
        .is_some_and(|n| n.starts_with('.') || n.starts_with('_'))
}
