//! ferry's Python WSGI loader: its files (this directory's `.py` files, embedded in the
//! binary) and writing them out at start into a directory of the instance's own.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The script ferry runs, relative to the loader's directory; the package sits beside it.
const ENTRY: &str = "wsgi_loader.py";

/// Every file of the loader, by its path relative to the loader's directory.
const FILES: &[(&str, &str)] = &[
    (ENTRY, include_str!("wsgi_loader.py")),
    (
        "ferry_wsgi/__init__.py",
        include_str!("ferry_wsgi/__init__.py"),
    ),
    ("ferry_wsgi/body.py", include_str!("ferry_wsgi/body.py")),
    (
        "ferry_wsgi/file_wrapper.py",
        include_str!("ferry_wsgi/file_wrapper.py"),
    ),
    ("ferry_wsgi/frame.py", include_str!("ferry_wsgi/frame.py")),
    (
        "ferry_wsgi/request.py",
        include_str!("ferry_wsgi/request.py"),
    ),
    (
        "ferry_wsgi/response.py",
        include_str!("ferry_wsgi/response.py"),
    ),
    ("ferry_wsgi/server.py", include_str!("ferry_wsgi/server.py")),
    (
        "ferry_wsgi/shutdown.py",
        include_str!("ferry_wsgi/shutdown.py"),
    ),
];

/// Writes the loader into `dir` and returns the path of the script to run.
///
/// `dir` must not exist: it is created here, so nothing another process put in its place
/// is written through (the instance directory around it is private to this ferry, named
/// by its pid). The files are world-readable and not writable by anyone but ferry, so
/// `--user`'s processes can run them but not change them; the instance directory is
/// removed, and the loader with it, when ferry exits.
pub fn write_into(dir: &Path) -> std::io::Result<PathBuf> {
    for sub in [dir.to_path_buf(), dir.join("ferry_wsgi")] {
        std::fs::DirBuilder::new().mode(0o755).create(&sub)?;
        // The umask may have taken read access from --user's processes: set it outright.
        std::fs::set_permissions(&sub, std::fs::Permissions::from_mode(0o755))?;
    }
    for (name, text) in FILES {
        let path = dir.join(name);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&path)?;
        file.write_all(text.as_bytes())?;
        file.set_permissions(std::fs::Permissions::from_mode(0o644))?;
    }
    Ok(dir.join(ENTRY))
}

#[cfg(test)]
mod frame_check_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn source_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("src/wsgi_loader")
    }

    /// The `.py` files in this directory, relative to it.
    fn python_sources(dir: &Path, prefix: &str, found: &mut BTreeSet<String>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if entry.file_type().unwrap().is_dir() && name != "__pycache__" {
                python_sources(&entry.path(), &format!("{prefix}{name}/"), found);
            } else if name.ends_with(".py") {
                found.insert(format!("{prefix}{name}"));
            }
        }
    }

    #[test]
    fn every_python_file_of_the_loader_is_embedded() {
        let mut on_disk = BTreeSet::new();
        python_sources(&source_dir(), "", &mut on_disk);
        let embedded: BTreeSet<String> = FILES.iter().map(|(n, _)| n.to_string()).collect();
        assert_eq!(
            on_disk, embedded,
            "add each loader file to FILES in driver/src/wsgi_loader/mod.rs"
        );
    }

    #[test]
    fn written_out_private_to_ferry_and_never_through_an_existing_directory() {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("wsgi-loader");
        let entry = write_into(&dir).unwrap();
        assert_eq!(entry, dir.join("wsgi_loader.py"));
        for (name, text) in FILES {
            let path = dir.join(name);
            assert_eq!(std::fs::read_to_string(&path).unwrap(), *text, "{name}");
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o644, "{name}");
        }
        let error = write_into(&dir).unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::AlreadyExists);
    }

    /// A loader file with a syntax error would only show when an app process starts:
    /// compile every one here, with the Python the tests use.
    #[test]
    fn every_loader_file_compiles() {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("wsgi-loader");
        write_into(&dir).unwrap();
        let python = std::env::var("FERRY_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
        let out = std::process::Command::new(&python)
            .args(["-m", "compileall", "-q", "-f"])
            .arg(&dir)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {python} (install python3): {e}"));
        assert!(
            out.status.success(),
            "the loader does not compile:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
