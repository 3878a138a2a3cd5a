//! Reading bundle files and directories (the `fs` feature; off for `wasm32` embedders).
//!
//! Only regular files and directories are read (a FIFO would block forever, a device such as
//! `/dev/zero` would never end), and the size limit is checked against each file's size
//! before it is opened; no read goes past the limit (SPEC 9.1, "Files").

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::error::{LoadError, LoadErrorKind};

fn is_bundle_file(p: &Path) -> bool {
    matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml" | "json"))
}

fn located(p: &Path, kind: LoadErrorKind, message: impl Into<String>) -> LoadError {
    LoadError::new(kind, message).in_source(&p.display().to_string(), None)
}

fn not_regular(p: &Path) -> LoadError {
    located(
        p,
        LoadErrorKind::Io,
        "not a regular file or a directory (a FIFO, device or socket, or a symlink to one): refused",
    )
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>, depth: usize) -> Result<(), LoadError> {
    if depth > 32 {
        return Err(located(dir, LoadErrorKind::Limit, "directories nest deeper than 32 levels"));
    }
    let io = |e: std::io::Error| located(dir, LoadErrorKind::Io, e.to_string());
    let mut entries: Vec<PathBuf> =
        std::fs::read_dir(dir).map_err(io)?.map(|e| e.map(|e| e.path())).collect::<Result<_, _>>().map_err(io)?;
    entries.sort();
    for p in entries {
        // `metadata` follows symlinks: a link is judged by what it points to.
        let meta = std::fs::metadata(&p).map_err(|e| located(&p, LoadErrorKind::Io, e.to_string()))?;
        if meta.is_dir() {
            walk(&p, out, depth + 1)?;
        } else if is_bundle_file(&p) {
            if !meta.is_file() {
                return Err(not_regular(&p));
            }
            out.push(p);
        }
    }
    Ok(())
}

/// Reads files and directories (their `*.yaml`, `*.yml` and `*.json` files, recursively,
/// in name order) into `(name, text)` pairs, ready for [`super::load`]. At most `max_bytes`
/// are read in all (the configuration's `max_bundle_bytes`); a path that is not a regular
/// file or a directory is an error.
pub fn read_paths<P: AsRef<Path>>(paths: &[P], max_bytes: usize) -> Result<Vec<(String, String)>, LoadError> {
    let mut files = Vec::new();
    for p in paths {
        let p = p.as_ref();
        let meta = std::fs::metadata(p).map_err(|e| located(p, LoadErrorKind::Io, e.to_string()))?;
        if meta.is_dir() {
            walk(p, &mut files, 0)?;
        } else if meta.is_file() {
            files.push(p.to_path_buf());
        } else {
            return Err(not_regular(p));
        }
    }
    let mut out = Vec::with_capacity(files.len());
    let mut total: u64 = 0;
    let limit = max_bytes as u64;
    for f in files {
        let name = f.display().to_string();
        let io = |e: std::io::Error| LoadError::new(LoadErrorKind::Io, e.to_string()).in_source(&name, None);
        let over = |size: u64| {
            LoadError::new(
                LoadErrorKind::Limit,
                format!("the bundle is over {max_bytes} bytes (max_bundle_bytes) at this file ({size} bytes)"),
            )
            .in_source(&name, None)
        };
        let file = std::fs::File::open(&f).map_err(io)?;
        let meta = file.metadata().map_err(io)?;
        if !meta.is_file() {
            return Err(not_regular(&f));
        }
        let remaining = limit.saturating_sub(total);
        if meta.len() > remaining {
            return Err(over(meta.len()));
        }
        // The file may grow after its size was read: never read past the limit.
        let mut bytes = Vec::with_capacity(meta.len() as usize);
        file.take(remaining + 1).read_to_end(&mut bytes).map_err(io)?;
        if bytes.len() as u64 > remaining {
            return Err(over(bytes.len() as u64));
        }
        total += bytes.len() as u64;
        let text = String::from_utf8(bytes)
            .map_err(|_| LoadError::new(LoadErrorKind::Syntax, "the file is not UTF-8").in_source(&name, None))?;
        out.push((name, text));
    }
    Ok(out)
}
