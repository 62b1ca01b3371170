//! `Passengerfile.json`: Passenger's configuration file, read from the app directory.
//!
//! Its keys are `ferry start`'s flags with `_` for `-` (see [`KEYS`]). A key ferry does not
//! support, or does not know, is warned about by name; a file that is not a JSON object is an
//! error naming the line.

use std::path::{Path, PathBuf};

/// One setting that a file key or an environment variable can give.
#[derive(Debug)]
pub struct Key {
    /// The key in `Passengerfile.json`; the environment variable is `PASSENGER_` or `FERRY_`
    /// followed by it in capitals.
    pub name: &'static str,
    /// The field of `StartArgs` (clap's argument id) it sets.
    pub arg: &'static str,
    pub kind: Kind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A value for the flag `--<arg with - for _>`.
    Value,
    /// A path; in the file, a relative one is taken from the app directory.
    Path,
    /// true/false: the flag, or its `--no-` form when there is one.
    Switch,
    /// An object of NAME: VALUE (the file only).
    Envvars,
}

const fn key(name: &'static str, arg: &'static str, kind: Kind) -> Key {
    Key { name, arg, kind }
}

/// Every setting ferry takes from the file or the environment. Passenger's names come first;
/// the rest are ferry's own flags, accepted under their flag names.
pub const KEYS: &[Key] = &[
    key("port", "port", Kind::Value),
    key("address", "address", Kind::Value),
    key("environment", "environment", Kind::Value),
    key("max_pool_size", "max_pool_size", Kind::Value),
    key("min_instances", "min_instances", Kind::Value),
    key("pool_idle_time", "pool_idle_time", Kind::Value),
    key("max_requests", "max_requests", Kind::Value),
    key(
        "max_request_queue_size",
        "max_request_queue_size",
        Kind::Value,
    ),
    key(
        "force_max_concurrent_requests_per_process",
        "concurrency",
        Kind::Value,
    ),
    key("concurrency_model", "concurrency_model", Kind::Value),
    key("thread_count", "thread_count", Kind::Value),
    key("start_timeout", "start_timeout", Kind::Value),
    key("max_request_time", "max_request_time", Kind::Value),
    key(
        "max_request_queue_time",
        "max_request_queue_time",
        Kind::Value,
    ),
    key("memory_limit", "memory_limit", Kind::Value),
    key("app_type", "app_type", Kind::Value),
    key("startup_file", "startup_file", Kind::Value),
    key("app_start_command", "app_start_command", Kind::Value),
    key("python", "python", Kind::Value),
    key("log_file", "log_file", Kind::Path),
    key("log_level", "log_level", Kind::Value),
    key("pid_file", "pid_file", Kind::Path),
    key("daemonize", "daemonize", Kind::Switch),
    key("user", "user", Kind::Value),
    key("envvars", "envvars", Kind::Envvars),
    key("friendly_error_pages", "friendly_error_pages", Kind::Switch),
    key("restart_dir", "restart_dir", Kind::Path),
    key("static_files_dir", "static_files_dir", Kind::Path),
    key("concurrency", "concurrency", Kind::Value),
    key("target_concurrency", "target_concurrency", Kind::Value),
    key(
        "max_spawn_concurrency",
        "max_spawn_concurrency",
        Kind::Value,
    ),
    key("reload", "reload", Kind::Switch),
    key("max_body_size", "max_body_size", Kind::Value),
    key("header_timeout", "header_timeout", Kind::Value),
    key("body_timeout", "body_timeout", Kind::Value),
    key("keep_alive_timeout", "keep_alive_timeout", Kind::Value),
    key("send_timeout", "send_timeout", Kind::Value),
    key("shutdown_timeout", "shutdown_timeout", Kind::Value),
    key("socket_backlog", "socket_backlog", Kind::Value),
    key("ssl", "ssl", Kind::Switch),
    key("ssl_certificate", "ssl_certificate", Kind::Path),
    key("ssl_certificate_key", "ssl_certificate_key", Kind::Path),
    key("ssl_port", "ssl_port", Kind::Value),
    key("forwarded_allow_ips", "forwarded_allow_ips", Kind::Value),
];

/// Passenger settings ferry does not have (or does differently): warned about, not used.
const UNSUPPORTED: &[(&str, &str)] = &[
    ("engine", "ferry is its own server (no Nginx engine)"),
    ("nginx_bin", "ferry is its own server (no Nginx engine)"),
    ("nginx_version", "ferry is its own server (no Nginx engine)"),
    ("nginx_config_template", "ferry is its own server"),
    ("socket_file", "ferry listens on TCP only"),
    ("spawn_method", "ferry always starts each process directly"),
    ("rolling_restarts", "restarts are always rolling"),
    ("resist_deployment_errors", "not supported"),
    ("sticky_sessions", "not supported"),
    ("sticky_sessions_cookie_name", "not supported"),
    ("load_shell_envvars", "not supported; use envvars"),
    ("preferred_bundler", "ferry runs no Ruby apps"),
    ("ruby", "ferry runs WSGI and generic apps"),
    ("nodejs", "use app_start_command"),
    ("meteor_app_settings", "use app_start_command"),
    ("app_group_name", "ferry serves one app"),
    ("instance_registry_dir", "give --instance-registry-dir"),
    ("data_buffer_dir", "bodies spill to the instance directory"),
    ("core_file_descriptor_ulimit", "not supported"),
    ("app_file_descriptor_ulimit", "not supported"),
    (
        "disable_security_update_check",
        "ferry does no update checks",
    ),
    ("disable_anonymous_telemetry", "ferry sends no telemetry"),
    ("debugger", "not supported"),
    ("abort_websockets_on_process_shutdown", "not supported"),
];

pub const FILE_NAME: &str = "Passengerfile.json";

/// What the file says: values as the flags would take them, and warnings.
#[derive(Debug, Default)]
pub struct FileSettings {
    pub path: PathBuf,
    /// (key, value as text) for [`Kind::Value`], [`Kind::Path`] and [`Kind::Switch`] keys.
    pub values: Vec<(&'static Key, String)>,
    pub envvars: Vec<(String, String)>,
    pub warnings: Vec<String>,
}

pub fn find_key(name: &str) -> Option<&'static Key> {
    KEYS.iter().find(|k| k.name == name)
}

/// Reads `APP_DIR/Passengerfile.json`; `None` when there is none.
pub fn read(app_dir: &Path) -> Result<Option<FileSettings>, String> {
    let path = app_dir.join(FILE_NAME);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    parse(&text, app_dir, &path).map(Some)
}

/// Parses the file's text; `app_dir` anchors relative paths.
pub fn parse(text: &str, app_dir: &Path, path: &Path) -> Result<FileSettings, String> {
    let shown = path.display();
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        format!(
            "{shown} line {}: {e}; it must be one JSON object such as {{\"port\": 3000}}",
            e.line()
        )
    })?;
    let serde_json::Value::Object(map) = value else {
        return Err(format!(
            "{shown} line 1: it must be one JSON object such as {{\"port\": 3000}}"
        ));
    };
    let mut settings = FileSettings {
        path: path.to_path_buf(),
        ..FileSettings::default()
    };
    for (name, value) in map {
        let Some(key) = find_key(&name) else {
            let warning = match UNSUPPORTED.iter().find(|(n, _)| *n == name) {
                Some((_, why)) => {
                    format!("{shown}: `{name}` is not supported by ferry ({why}); ignored")
                }
                None => format!(
                    "{shown}: unknown key `{name}` (not a setting of Passenger or ferry); ignored"
                ),
            };
            settings.warnings.push(warning);
            continue;
        };
        let wrong = |what: &str| format!("{shown}: `{name}` must be {what}, not {value}");
        match key.kind {
            Kind::Envvars => {
                let serde_json::Value::Object(vars) = &value else {
                    return Err(wrong("an object of NAME: \"value\""));
                };
                for (var, var_value) in vars {
                    if !crate::cli_values::valid_env_name(var) {
                        return Err(format!(
                            "{shown}: `envvars` has `{var}`, which is not a variable name \
                             (letters, digits and '_')"
                        ));
                    }
                    let text = scalar_text(var_value)
                        .ok_or_else(|| wrong("an object of NAME: \"value\""))?;
                    settings.envvars.push((var.clone(), text));
                }
            }
            Kind::Switch => match value {
                serde_json::Value::Bool(on) => settings.values.push((key, on.to_string())),
                _ => return Err(wrong("true or false")),
            },
            Kind::Value | Kind::Path => {
                let mut text = scalar_text(&value).ok_or_else(|| wrong("a string or a number"))?;
                if key.kind == Kind::Path && Path::new(&text).is_relative() {
                    text = app_dir.join(&text).display().to_string();
                }
                settings.values.push((key, text));
            }
        }
    }
    Ok(settings)
}

fn scalar_text(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_text(text: &str) -> Result<FileSettings, String> {
        parse(
            text,
            Path::new("/app"),
            Path::new("/app/Passengerfile.json"),
        )
    }

    #[test]
    fn keys_values_and_relative_paths() {
        let file = parse_text(
            r#"{"port": 4000, "environment": "staging", "log_file": "log/x.log",
                "daemonize": true, "envvars": {"A": "1", "B": 2}}"#,
        )
        .unwrap();
        let values: Vec<(&str, &str)> = file
            .values
            .iter()
            .map(|(k, v)| (k.name, v.as_str()))
            .collect();
        assert!(values.contains(&("port", "4000")));
        assert!(values.contains(&("environment", "staging")));
        assert!(values.contains(&("log_file", "/app/log/x.log")));
        assert!(values.contains(&("daemonize", "true")));
        assert_eq!(
            file.envvars,
            vec![("A".into(), "1".into()), ("B".into(), "2".into())]
        );
        assert!(file.warnings.is_empty());
    }

    #[test]
    fn unknown_and_unsupported_keys_are_warned_about_by_name() {
        let file = parse_text(r#"{"sticky_sessions": true, "colour": "blue"}"#).unwrap();
        assert_eq!(file.warnings.len(), 2, "{:?}", file.warnings);
        assert!(file
            .warnings
            .iter()
            .any(|w| w.contains("`sticky_sessions`") && w.contains("not supported")));
        assert!(file
            .warnings
            .iter()
            .any(|w| w.contains("`colour`") && w.contains("unknown")));
    }

    #[test]
    fn a_malformed_file_is_an_error_naming_the_line() {
        let error = parse_text("{\n  \"port\": 3000,\n  \"address\" \"x\"\n}").unwrap_err();
        assert!(error.contains("line 3"), "{error}");
        let error = parse_text("[1]").unwrap_err();
        assert!(error.contains("one JSON object"), "{error}");
        let error = parse_text(r#"{"daemonize": "yes"}"#).unwrap_err();
        assert!(error.contains("`daemonize`") && error.contains("true or false"));
    }
}
