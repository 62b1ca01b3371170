//! Temporary directories that other users can see into.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// A temporary directory (tempfile's), removed when dropped. Mode 0755 rather than
/// tempfile's 0700, as a plain `mkdir` makes it: some tests run things as another user
/// (an app under `--user`, `ferry status` as nobody) that must see inside.
pub struct TempDir(tempfile::TempDir);

impl TempDir {
    pub fn new(prefix: &str) -> TempDir {
        let dir = tempfile::Builder::new()
            .prefix(&format!("{prefix}-"))
            .tempdir()
            .expect("create a temporary directory");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("make the temporary directory readable");
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        self.0.path()
    }
}
