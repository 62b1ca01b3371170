//! Where `ferry start`'s settings come from, as Passenger does it: the command line first,
//! then `PASSENGER_<KEY>` / `FERRY_<KEY>` environment variables (FERRY_ wins over PASSENGER_),
//! then `Passengerfile.json` in the app directory, then the defaults.
//!
//! A value from the environment or the file goes through the same clap parser as the flag
//! (a one-flag command line is parsed and the field copied), so it is judged the same way
//! and a bad one is refused naming where it came from.

use crate::cli::StartArgs;
use crate::passengerfile::{self, Key, Kind};
use clap::parser::ValueSource;
use clap::{ArgMatches, Parser};

/// The settings to start with, and what the user should be told about them.
#[derive(Debug)]
pub struct Resolved {
    pub args: StartArgs,
    pub warnings: Vec<String>,
}

/// `StartArgs` alone, to parse one flag from the environment or the file.
#[derive(Parser)]
#[command(no_binary_name = true)]
struct OneFlag {
    #[command(flatten)]
    args: StartArgs,
}

/// Applies the environment (`env` looks a variable up) and the app's Passengerfile.json to
/// what the command line (`matches`) left at its default.
pub fn resolve(
    mut args: StartArgs,
    matches: &ArgMatches,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Resolved, String> {
    let given = |id: &str| matches.value_source(id) == Some(ValueSource::CommandLine);
    let from_command_line = |id: &str| match id {
        "friendly_error_pages" => given(id) || given("no_friendly_error_pages"),
        _ => given(id),
    };
    let mut warnings = Vec::new();
    if let Some(file) = passengerfile::read(&args.app_dir)? {
        warnings.extend(file.warnings);
        let origin = |key: &Key| format!("{}: `{}`", file.path.display(), key.name);
        for (key, value) in &file.values {
            if !from_command_line(key.arg) {
                apply(&mut args, key, value, &origin(key))?;
            }
        }
        // The command line's variables come after the file's: they win on the same name.
        let mut envvars = file.envvars;
        envvars.append(&mut args.envvars);
        args.envvars = envvars;
    }
    for key in passengerfile::KEYS {
        if key.kind == Kind::Envvars || from_command_line(key.arg) {
            continue;
        }
        let upper = key.name.to_ascii_uppercase();
        for name in [format!("PASSENGER_{upper}"), format!("FERRY_{upper}")] {
            if let Some(value) = env(&name).filter(|v| !v.is_empty()) {
                apply(&mut args, key, &value, &name)?;
            }
        }
    }
    Ok(Resolved { args, warnings })
}

/// Sets one setting from text, through the flag's own parser.
fn apply(args: &mut StartArgs, key: &Key, value: &str, origin: &str) -> Result<(), String> {
    let flag = format!("--{}", key.arg.replace('_', "-"));
    let argv: Vec<String> = match key.kind {
        Kind::Switch => {
            let on = match value.to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => true,
                "false" | "0" | "no" | "off" => false,
                _ => return Err(format!("{origin} must be true or false, not '{value}'")),
            };
            match (on, key.arg) {
                (true, _) => vec![flag],
                (false, "friendly_error_pages") => vec!["--no-friendly-error-pages".into()],
                (false, _) => Vec::new(),
            }
        }
        _ => vec![flag, value.to_string()],
    };
    let parsed = OneFlag::try_parse_from(&argv).map_err(|e| {
        let text = e.to_string();
        let first = text.lines().next().unwrap_or_default();
        format!(
            "{origin} = '{value}': {}",
            first.trim_start_matches("error: ")
        )
    })?;
    copy_field(args, parsed.args, key.arg);
    Ok(())
}

macro_rules! copy_fields {
    ($to:ident, $from:ident, $id:ident, $($field:ident),+ $(,)?) => {
        match $id {
            $(stringify!($field) => $to.$field = $from.$field,)+
            "friendly_error_pages" => {
                $to.friendly_error_pages = $from.friendly_error_pages;
                $to.no_friendly_error_pages = $from.no_friendly_error_pages;
            }
            other => unreachable!("{other} is not a setting of the file or the environment"),
        }
    };
}

fn copy_field(to: &mut StartArgs, from: StartArgs, id: &str) {
    copy_fields!(
        to,
        from,
        id,
        port,
        address,
        environment,
        max_pool_size,
        min_instances,
        pool_idle_time,
        max_requests,
        max_request_queue_size,
        concurrency,
        concurrency_model,
        thread_count,
        target_concurrency,
        start_timeout,
        max_request_time,
        max_request_queue_time,
        memory_limit,
        app_type,
        startup_file,
        app_start_command,
        python,
        log_file,
        log_level,
        pid_file,
        daemonize,
        user,
        restart_dir,
        static_files_dir,
        max_spawn_concurrency,
        reload,
        max_body_size,
        header_timeout,
        body_timeout,
        keep_alive_timeout,
        send_timeout,
        shutdown_timeout,
        socket_backlog,
        ssl,
        ssl_certificate,
        ssl_certificate_key,
        ssl_port,
        forwarded_allow_ips,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::{CommandFactory, FromArgMatches};
    use std::path::Path;

    fn resolve_with(
        argv: &[&str],
        env: &[(&str, &str)],
        file: Option<&str>,
    ) -> Result<Resolved, String> {
        let dir = tempfile::tempdir().unwrap();
        if let Some(text) = file {
            std::fs::write(dir.path().join("Passengerfile.json"), text).unwrap();
        }
        let mut full = vec!["ferry", "start", dir.path().to_str().unwrap()];
        full.extend_from_slice(argv);
        let matches = Cli::command().try_get_matches_from(&full).unwrap();
        let Command::Start(args) = Cli::from_arg_matches(&matches).unwrap().command else {
            unreachable!()
        };
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let lookup = move |name: &str| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        resolve(*args, matches.subcommand_matches("start").unwrap(), &lookup)
    }

    #[test]
    fn command_line_then_environment_then_file_then_default() {
        let file = r#"{"port": 4001, "max_pool_size": 3, "min_instances": 2, "max_requests": 7}"#;
        let env = [
            ("PASSENGER_MAX_POOL_SIZE", "4"),
            ("FERRY_MIN_INSTANCES", "3"),
        ];
        let resolved = resolve_with(&["--port", "4002"], &env, Some(file)).unwrap();
        let args = resolved.args;
        assert_eq!(args.port, 4002, "the command line beats the file");
        assert_eq!(args.max_pool_size, 4, "the environment beats the file");
        assert_eq!(args.min_instances, 3, "FERRY_ counts as PASSENGER_ does");
        assert_eq!(args.max_requests, 7, "the file beats the default");
        assert_eq!(args.start_timeout, 90, "the default when nobody says");
    }

    #[test]
    fn other_helpers_flags_come_from_the_file_too() {
        let file = r#"{"socket_backlog": 64, "max_request_time": 20, "max_request_queue_time": 5}"#;
        let args = resolve_with(&[], &[], Some(file)).unwrap().args;
        assert_eq!(
            (
                args.socket_backlog,
                args.max_request_time,
                args.max_request_queue_time
            ),
            (64, 20, 5)
        );
    }

    #[test]
    fn memory_limit_comes_from_the_file_and_the_environment_under_passengers_name() {
        let from_file = resolve_with(&[], &[], Some(r#"{"memory_limit": 300}"#)).unwrap();
        assert_eq!(from_file.args.memory_limit, 300);
        let from_env = resolve_with(&[], &[("PASSENGER_MEMORY_LIMIT", "200")], None).unwrap();
        assert_eq!(from_env.args.memory_limit, 200);
        assert_eq!(
            resolve_with(&[], &[], None).unwrap().args.memory_limit,
            0,
            "off"
        );
    }

    #[test]
    fn the_scaling_target_comes_from_the_file_and_the_cap_stays_the_apps_default() {
        let file = r#"{"target_concurrency": 4}"#;
        let args = resolve_with(&[], &[], Some(file)).unwrap().args;
        assert_eq!((args.concurrency, args.target_concurrency), (None, Some(4)));
        let args = resolve_with(&[], &[("PASSENGER_CONCURRENCY", "2")], None)
            .unwrap()
            .args;
        assert_eq!(args.concurrency, Some(2));
    }

    #[test]
    fn the_thread_model_comes_from_passengers_keys() {
        let file = r#"{"concurrency_model": "thread", "thread_count": 3}"#;
        let args = resolve_with(&[], &[], Some(file)).unwrap().args;
        assert_eq!(
            (args.concurrency_model, args.thread_count),
            (crate::cli::ConcurrencyModel::Thread, Some(3))
        );
        let env = [("PASSENGER_THREAD_COUNT", "0")];
        let error = resolve_with(&[], &env, None).unwrap_err();
        assert!(error.contains("PASSENGER_THREAD_COUNT"), "{error}");
    }

    #[test]
    fn https_and_trusted_proxies_come_from_the_file_and_the_environment() {
        let file = r#"{"ssl": true, "ssl_certificate": "tls/cert.pem",
                       "ssl_certificate_key": "/etc/key.pem", "ssl_port": 8443}"#;
        let env = [("PASSENGER_FORWARDED_ALLOW_IPS", "10.0.0.0/8")];
        let args = resolve_with(&[], &env, Some(file)).unwrap().args;
        assert!(args.ssl);
        assert!(args.ssl_certificate.unwrap().ends_with("tls/cert.pem"));
        assert_eq!(args.ssl_certificate_key.unwrap(), Path::new("/etc/key.pem"));
        assert_eq!(args.ssl_port, Some(8443));
        assert!(args.forwarded_allow_ips.trusts("10.1.2.3".parse().unwrap()));
        assert!(!args
            .forwarded_allow_ips
            .trusts("127.0.0.1".parse().unwrap()));
        let error = resolve_with(&[], &[("FERRY_FORWARDED_ALLOW_IPS", "a.b")], None).unwrap_err();
        assert!(error.contains("FERRY_FORWARDED_ALLOW_IPS"), "{error}");
    }

    #[test]
    fn a_bad_value_names_where_it_came_from() {
        let error = resolve_with(&[], &[("PASSENGER_START_TIMEOUT", "0")], None).unwrap_err();
        assert!(error.contains("PASSENGER_START_TIMEOUT"), "{error}");
        assert!(error.contains("--start-timeout"), "{error}");
        let error = resolve_with(&[], &[], Some(r#"{"max_pool_size": -2}"#)).unwrap_err();
        assert!(
            error.contains("`max_pool_size`") && error.contains("negative"),
            "{error}"
        );
    }

    #[test]
    fn switches_and_envvars() {
        let file = r#"{"friendly_error_pages": false, "envvars": {"A": "file", "B": "file"}}"#;
        let resolved = resolve_with(&["--envvar", "B=cli"], &[], Some(file)).unwrap();
        assert!(!resolved.args.friendly_error_pages());
        assert_eq!(
            resolved.args.envvars,
            vec![
                ("A".to_string(), "file".to_string()),
                ("B".to_string(), "file".to_string()),
                ("B".to_string(), "cli".to_string())
            ],
            "the command line's come last, so they win"
        );
        let resolved = resolve_with(&["--friendly-error-pages"], &[], Some(file)).unwrap();
        assert!(resolved.args.friendly_error_pages());
    }
}
