//! The instance directory: how `ferry status` and `ferry stop` find a running server.
//!
//! Each running server owns `<registry>/ferry.<pid>/` (mode 0700) holding `instance.json`
//! (what it serves) and `admin.sock` (mode 0600). The registry is `--instance-registry-dir`,
//! else `$FERRY_INSTANCE_REGISTRY_DIR`, else the system's temporary directory.

use serde::{Deserialize, Serialize};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct InstanceInfo {
    pub instance: String,
    pub pid: u32,
    pub port: u16,
    pub address: String,
    pub app_root: String,
    pub version: String,
}

pub struct InstanceDir {
    pub path: PathBuf,
}

pub fn registry_dir(flag: Option<&Path>) -> PathBuf {
    if let Some(dir) = flag {
        return dir.to_path_buf();
    }
    match std::env::var_os("FERRY_INSTANCE_REGISTRY_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => std::env::temp_dir(),
    }
}

impl InstanceDir {
    pub fn create(registry: &Path, info: &InstanceInfo) -> std::io::Result<InstanceDir> {
        std::fs::create_dir_all(registry)?;
        let path = registry.join(format!("ferry.{}", info.instance));
        if path.exists() {
            // A previous server with our pid died without cleaning up.
            std::fs::remove_dir_all(&path)?;
        }
        std::fs::DirBuilder::new().mode(0o700).create(&path)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700))?;
        let json = serde_json::to_vec_pretty(info).expect("instance info serializes");
        std::fs::write(path.join("instance.json"), json)?;
        Ok(InstanceDir { path })
    }

    pub fn admin_socket(&self) -> PathBuf {
        self.path.join("admin.sock")
    }

    pub fn remove(&self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// A server found in the registry.
pub struct Found {
    pub info: InstanceInfo,
    pub socket: PathBuf,
}

/// Running instances in the registry, by port. Directories of servers that died without
/// cleaning up (their pid is gone) are removed on the way.
pub fn find_instances(registry: &Path) -> Vec<Found> {
    let Ok(entries) = std::fs::read_dir(registry) else {
        return Vec::new();
    };
    let mut found: Vec<Found> = entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("ferry."))
        .filter_map(|e| {
            let dir = e.path();
            let info: InstanceInfo =
                serde_json::from_slice(&std::fs::read(dir.join("instance.json")).ok()?).ok()?;
            if !process_alive(info.pid) {
                let _ = std::fs::remove_dir_all(&dir);
                return None;
            }
            Some(Found {
                socket: dir.join("admin.sock"),
                info,
            })
        })
        .collect();
    found.sort_by_key(|f| (f.info.port, f.info.pid));
    found
}

/// Whether `pid` is a running process (not a zombie waiting to be reaped).
pub fn process_alive(pid: u32) -> bool {
    crate::proc_stats::stat(pid).is_some_and(|stat| stat.is_alive())
}
