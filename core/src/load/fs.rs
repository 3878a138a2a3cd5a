//! Reading bundle files and directories (the `fs` feature; off for `wasm32` embedders).

use std::path::{Path, PathBuf};

use crate::error::{LoadError, LoadErrorKind};

fn is_bundle_file(p: &Path) -> bool {
    matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml" | "json"))
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>, depth: usize) -> Result<(), LoadError> {
    if depth > 32 {
        return Err(LoadError::new(LoadErrorKind::Limit, "directories nest deeper than 32 levels")
            .in_source(&dir.display().to_string(), None));
    }
    let io = |e: std::io::Error| {
        LoadError::new(LoadErrorKind::Io, e.to_string()).in_source(&dir.display().to_string(), None)
    };
    let mut entries: Vec<PathBuf> =
        std::fs::read_dir(dir).map_err(io)?.map(|e| e.map(|e| e.path())).collect::<Result<_, _>>().map_err(io)?;
    entries.sort();
    for p in entries {
        if p.is_dir() {
            walk(&p, out, depth + 1)?;
        } else if is_bundle_file(&p) {
            out.push(p);
        }
    }
    Ok(())
}

/// Reads files and directories (their `*.yaml`, `*.yml` and `*.json` files, recursively,
/// in name order) into `(name, text)` pairs, ready for [`super::load`].
pub fn read_paths<P: AsRef<Path>>(paths: &[P]) -> Result<Vec<(String, String)>, LoadError> {
    let mut files = Vec::new();
    for p in paths {
        let p = p.as_ref();
        if p.is_dir() {
            walk(p, &mut files, 0)?;
        } else {
            files.push(p.to_path_buf());
        }
    }
    let mut out = Vec::with_capacity(files.len());
    for f in files {
        let name = f.display().to_string();
        let bytes =
            std::fs::read(&f).map_err(|e| LoadError::new(LoadErrorKind::Io, e.to_string()).in_source(&name, None))?;
        let text = String::from_utf8(bytes)
            .map_err(|_| LoadError::new(LoadErrorKind::Syntax, "the file is not UTF-8").in_source(&name, None))?;
        out.push((name, text));
    }
    Ok(out)
}
