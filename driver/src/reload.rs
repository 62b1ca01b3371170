//! Code reloading as Passenger users know it: touching `tmp/restart.txt` (or the file in
//! `--restart-dir`) restarts the app's processes, one by one; `--reload` does the same when a
//! Python file of the app changes; while `tmp/always_restart.txt` exists, every request is
//! served by a process started after it arrived (the engine's always-restart mode).
//!
//! The watcher stats a few files every [`CHECK_INTERVAL`] rather than using inotify: it sees
//! a restart directory created after start, files on network file systems and editors that
//! replace files by renaming, and costs two `stat`s per check (plus one walk of the app's
//! Python files with `--reload`, bounded by [`RELOAD_FILES_MAX`]). It only notices; the
//! restart itself is the engine's (`Input::RestartGroup`).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

/// How often the files are looked at: a touch is acted on within this (Passenger checks at
/// most every 10 s).
pub const CHECK_INTERVAL: Duration = Duration::from_millis(250);

/// Files `--reload` looks at, at most: a huge tree is watched in part, not walked for ever.
const RELOAD_FILES_MAX: usize = 20_000;

/// Directories `--reload` does not descend into: tools' caches and virtual environments.
const SKIPPED_DIRS: &[&str] = &["__pycache__", "node_modules", "venv", "site-packages"];

pub struct Watcher {
    restart_file: PathBuf,
    restart_mtime: Option<SystemTime>,
    always_restart_file: PathBuf,
    /// Whether always_restart.txt existed at the last look.
    always_restart: bool,
    /// With `--reload`: the app root and the fingerprint of its Python files.
    reload: Option<(PathBuf, Fingerprint)>,
    next_check: Instant,
}

/// What one look at the Python files saw: any edit, addition or removal changes it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Fingerprint {
    files: usize,
    mtimes_sum: u128,
}

impl Watcher {
    /// Watches `restart_dir/restart.txt`, and with `reload` the Python files under
    /// `app_root`. What exists now is the starting point: nothing restarts at start.
    pub fn new(restart_dir: &Path, app_root: &Path, reload: bool, now: Instant) -> Watcher {
        let restart_file = restart_dir.join("restart.txt");
        let always_restart_file = restart_dir.join("always_restart.txt");
        Watcher {
            // Seen as absent at first, so a file there at start turns the mode on at once.
            always_restart: false,
            always_restart_file,
            restart_mtime: mtime(&restart_file),
            restart_file,
            reload: reload.then(|| (app_root.to_path_buf(), python_fingerprint(app_root))),
            // The first look is at once: always_restart.txt present at start counts from the
            // first request.
            next_check: now,
        }
    }

    pub fn next_check(&self) -> Instant {
        self.next_check
    }

    /// Whether always_restart.txt appeared (`Some(true)`) or went away (`Some(false)`)
    /// since the last call. Looked at with the other files, by [`Watcher::check`].
    pub fn always_restart_changed(&mut self) -> Option<bool> {
        let exists = self.always_restart_file.exists();
        (exists != self.always_restart).then(|| {
            self.always_restart = exists;
            exists
        })
    }

    /// Looks at the files if it is time; returns why the app should restart, if it should.
    pub fn check(&mut self, now: Instant) -> Option<String> {
        if now < self.next_check {
            return None;
        }
        self.next_check = now + CHECK_INTERVAL;
        let mut reason = None;
        let restart_mtime = mtime(&self.restart_file);
        // A new mtime, or the file appearing, restarts; the file going away does not.
        if restart_mtime.is_some() && restart_mtime != self.restart_mtime {
            reason = Some(format!("{} changed", self.restart_file.display()));
        }
        self.restart_mtime = restart_mtime;
        if let Some((root, seen)) = &mut self.reload {
            let now_seen = python_fingerprint(root);
            if now_seen != *seen {
                *seen = now_seen;
                reason.get_or_insert_with(|| "a Python file of the app changed (--reload)".into());
            }
        }
        reason
    }
}

fn mtime(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

fn python_fingerprint(root: &Path) -> Fingerprint {
    let mut fingerprint = Fingerprint::default();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            if fingerprint.files >= RELOAD_FILES_MAX {
                return fingerprint;
            }
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            // Symlinked directories are not followed: no loops, no walking out of the app.
            if kind.is_dir() {
                if !name.starts_with('.') && !SKIPPED_DIRS.contains(&name.as_ref()) {
                    dirs.push(entry.path());
                }
            } else if name.ends_with(".py") {
                let modified = entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
                    .unwrap_or_default();
                fingerprint.files += 1;
                fingerprint.mtimes_sum = fingerprint.mtimes_sum.wrapping_add(modified.as_nanos());
            }
        }
    }
    fingerprint
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set_mtime(path: &Path, seconds: u64) {
        let file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
        file.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(seconds))
            .unwrap();
    }

    #[test]
    fn restart_txt_appearing_or_changing_restarts_and_going_away_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let start = Instant::now();
        let mut watcher = Watcher::new(dir.path(), dir.path(), false, start);
        let mut at = start;
        let mut next = || {
            at += CHECK_INTERVAL;
            at
        };
        assert_eq!(watcher.check(next()), None, "nothing there yet");
        let file = dir.path().join("restart.txt");
        std::fs::write(&file, "").unwrap();
        set_mtime(&file, 1000);
        assert!(watcher.check(next()).unwrap().contains("restart.txt"));
        assert_eq!(watcher.check(next()), None, "the same mtime: once only");
        set_mtime(&file, 2000);
        assert!(watcher.check(next()).is_some(), "touched again");
        std::fs::remove_file(&file).unwrap();
        assert_eq!(watcher.check(next()), None);
        assert_eq!(
            watcher.check(start + CHECK_INTERVAL / 2),
            None,
            "not before its time"
        );
    }

    #[test]
    fn always_restart_txt_turns_the_mode_on_while_it_exists() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("always_restart.txt");
        std::fs::write(&file, "").unwrap();
        let mut watcher = Watcher::new(dir.path(), dir.path(), false, Instant::now());
        assert_eq!(
            watcher.always_restart_changed(),
            Some(true),
            "there at start"
        );
        assert_eq!(watcher.always_restart_changed(), None);
        std::fs::remove_file(&file).unwrap();
        assert_eq!(watcher.always_restart_changed(), Some(false));
        assert_eq!(watcher.always_restart_changed(), None);
    }

    #[test]
    fn reload_sees_python_files_change_but_not_other_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("pkg")).unwrap();
        std::fs::write(dir.path().join("pkg/app.py"), "x = 1").unwrap();
        set_mtime(&dir.path().join("pkg/app.py"), 1000);
        let start = Instant::now();
        let mut watcher = Watcher::new(&dir.path().join("tmp"), dir.path(), true, start);
        let later = start + CHECK_INTERVAL;
        std::fs::write(dir.path().join("notes.txt"), "").unwrap();
        assert_eq!(watcher.check(later), None, "not a Python file");
        set_mtime(&dir.path().join("pkg/app.py"), 2000);
        let reason = watcher.check(later + CHECK_INTERVAL).unwrap();
        assert!(reason.contains("--reload"), "{reason}");
        std::fs::write(dir.path().join("new.py"), "").unwrap();
        assert!(
            watcher.check(later + CHECK_INTERVAL * 2).is_some(),
            "a new file"
        );
    }
}
