//! A bundle directory as a source (the `notify` crate).
//!
//! Every `*.yaml`, `*.yml` and `*.json` file under the directory (recursively, following
//! symlinks) is an item. Names starting with `.` are skipped: a mounted ConfigMap keeps its
//! files in a `..<timestamp>` directory behind a `..data` symlink and exposes them as
//! `name -> ..data/name`, and swaps `..data` atomically on change; reading only the visible
//! names reads each file once, and the swap arrives as one debounced batch (one snapshot).
//! A file whose content did not change is not sent again (nor parsed again).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use palisade::Change;
use tokio::sync::mpsc;

use crate::Event;

fn is_bundle_file(p: &Path) -> bool {
    matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml" | "json"))
}

fn walk(dir: &Path, depth: usize, out: &mut BTreeMap<String, String>) -> Result<(), String> {
    if depth > 32 {
        return Err(format!("{}: directories nest deeper than 32 levels", dir.display()));
    }
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for p in paths {
        if p.file_name().and_then(|n| n.to_str()).is_none_or(|n| n.starts_with('.')) {
            continue;
        }
        // Follows symlinks; a dangling one (mid-swap) is skipped until the next scan.
        let Ok(meta) = std::fs::metadata(&p) else { continue };
        if meta.is_dir() {
            walk(&p, depth + 1, out)?;
        } else if meta.is_file() && is_bundle_file(&p) {
            let text = std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))?;
            out.insert(p.display().to_string(), text);
        }
    }
    Ok(())
}

/// The id prefix of a directory's items (its files' paths).
fn dir_scope(dir: &Path) -> String {
    let mut scope = dir.display().to_string();
    if !scope.ends_with('/') {
        scope.push('/');
    }
    scope
}

/// Reads the directory: file path to text.
pub fn scan(dir: &Path) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    walk(dir, 0, &mut out)?;
    Ok(out)
}

/// Watches `dir` and sends its files as events until `events` closes: first a
/// [`Event::ResyncScoped`] of every file (scoped to the directory), then an upsert for each file whose content changed and a
/// removal for each file that went away. Filesystem events only trigger a rescan; a rescan
/// also runs every `rescan` as a safety net for missed events.
pub async fn watch(dir: PathBuf, events: mpsc::Sender<Event>, rescan: Duration) {
    let (tx, mut rx) = mpsc::channel::<()>(1);
    let watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        if res.as_ref().is_ok_and(|e| !matches!(e.kind, notify::EventKind::Access(_))) {
            let _ = tx.try_send(());
        }
    });
    let _watcher = match watcher {
        Ok(mut w) => match w.watch(&dir, RecursiveMode::Recursive) {
            Ok(()) => Some(w),
            Err(e) => {
                let _ = events
                    .send(Event::Error(format!("watching {}: {e} (rescanning periodically)", dir.display())))
                    .await;
                None
            }
        },
        Err(e) => {
            let _ =
                events.send(Event::Error(format!("watching {}: {e} (rescanning periodically)", dir.display()))).await;
            None
        }
    };
    let mut seen: Option<BTreeMap<String, String>> = None;
    loop {
        match scan(&dir) {
            Ok(files) => {
                let sent = match &seen {
                    None => {
                        let items = files.iter().map(|(p, t)| (p.clone(), Change::upsert_text(p, t))).collect();
                        // Scoped to this directory's files: other sources' items stay.
                        events.send(Event::ResyncScoped { scopes: vec![dir_scope(&dir)], items }).await
                    }
                    Some(old) => send_diff(old, &files, &events).await,
                };
                if sent.is_err() {
                    return;
                }
                seen = Some(files);
            }
            Err(e) => {
                if events.send(Event::Error(e)).await.is_err() {
                    return;
                }
            }
        }
        // Wait for a filesystem event or the periodic rescan.
        let _ = tokio::time::timeout(rescan, rx.recv()).await;
        if events.is_closed() {
            return;
        }
    }
}

async fn send_diff(
    old: &BTreeMap<String, String>,
    new: &BTreeMap<String, String>,
    events: &mpsc::Sender<Event>,
) -> Result<(), mpsc::error::SendError<Event>> {
    for (p, t) in new {
        if old.get(p) != Some(t) {
            events.send(Event::Upsert(p.clone(), Change::upsert_text(p, t))).await?;
        }
    }
    for p in old.keys().filter(|p| !new.contains_key(*p)) {
        events.send(Event::Remove(p.clone())).await?;
    }
    Ok(())
}
