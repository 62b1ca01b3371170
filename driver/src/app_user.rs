//! `--user`: the account app processes run as when ferry runs as root.

use std::path::PathBuf;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: PathBuf,
}

/// The user `--user` names (a name or a uid), looked up in `passwd` (the text of
/// /etc/passwd). `Ok(None)` with a warning when ferry is not root: as with Passenger, the
/// setting only has effect for root.
pub fn resolve(
    user: Option<&str>,
    running_as_root: bool,
    passwd: &str,
) -> Result<(Option<AppUser>, Option<String>), String> {
    let Some(wanted) = user else {
        return Ok((None, None));
    };
    if !running_as_root {
        let warning = format!(
            "--user {wanted} is ignored: ferry is not running as root, so app processes run \
             as ferry's own user"
        );
        return Ok((None, Some(warning)));
    }
    let found = passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        let [name, _, uid, gid, _, home, ..] = fields[..] else {
            return None;
        };
        (name == wanted || uid == wanted).then(|| {
            Some(AppUser {
                name: name.to_string(),
                uid: uid.parse().ok()?,
                gid: gid.parse().ok()?,
                home: PathBuf::from(home),
            })
        })?
    });
    match found {
        Some(user) => Ok((Some(user), None)),
        None => Err(format!(
            "--user {wanted}: no such user in /etc/passwd; give an existing user's name or uid"
        )),
    }
}

/// [`resolve`] for this process: root or not, and the system's /etc/passwd.
pub fn resolve_here(user: Option<&str>) -> Result<(Option<AppUser>, Option<String>), String> {
    let root = rustix::process::geteuid().is_root();
    let passwd = match user {
        Some(_) if root => std::fs::read_to_string("/etc/passwd")
            .map_err(|e| format!("--user: cannot read /etc/passwd: {e}"))?,
        _ => String::new(),
    };
    resolve(user, root, &passwd)
}

/// Where app processes find the WSGI loader and make their sockets: the instance directory
/// (mode 0700, ferry's user only), or with `--user` a directory of that user's inside it,
/// the instance directory then letting others pass through (0711) but not list it.
pub fn process_dir(instance: &std::path::Path, user: Option<&AppUser>) -> std::io::Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let Some(user) = user else {
        return Ok(instance.to_path_buf());
    };
    let dir = instance.join("app");
    std::fs::create_dir(&dir)?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
    std::os::unix::fs::chown(&dir, Some(user.uid), Some(user.gid))?;
    std::fs::set_permissions(instance, std::fs::Permissions::from_mode(0o711))?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/bash\n\
                          app:x:1001:1002:App:/home/app:/bin/sh\n";

    #[test]
    fn by_name_or_uid_as_root() {
        let app = AppUser {
            name: "app".into(),
            uid: 1001,
            gid: 1002,
            home: "/home/app".into(),
        };
        assert_eq!(
            resolve(Some("app"), true, PASSWD),
            Ok((Some(app.clone()), None))
        );
        assert_eq!(resolve(Some("1001"), true, PASSWD), Ok((Some(app), None)));
        let error = resolve(Some("nosuch"), true, PASSWD).unwrap_err();
        assert!(error.contains("nosuch") && error.contains("no such user"));
    }

    #[test]
    fn ignored_with_a_warning_when_not_root() {
        let (user, warning) = resolve(Some("app"), false, PASSWD).unwrap();
        assert_eq!(user, None);
        assert!(warning.unwrap().contains("not running as root"));
        assert_eq!(resolve(None, true, PASSWD), Ok((None, None)));
    }
}
