//! What app to run and how to start one process of it.

use crate::cli::{AppType, ConcurrencyModel, StartArgs};
use std::path::{Path, PathBuf};

/// The default scaling target of processes with no concurrency cap. Knative's autoscaler
/// targets 100 concurrent requests per container at 70% (so it scales out at about 70), but
/// its unit is a container, often several cores; ferry's is one process, usually one event
/// loop on one core, whose requests all slow down together once its CPU is the limit. At 10
/// (scaled for 90%: 9 on average) the pool grows while each process still answers quickly,
/// and a single process still takes bursts far beyond it (a soft target, not a cap).
pub const UNLIMITED_TARGET_CONCURRENCY: u32 = 10;

/// `--thread-count` when the thread model is asked for without it. Passenger's default is
/// 1, which would make the thread model serve as the process model does; gunicorn suggests
/// 2–4 × the cores for its `--threads`.
pub const DEFAULT_THREAD_COUNT: u32 = 4;

/// The thread flags make sense only for ferry's WSGI loader, and only together; the error
/// names the flag to change.
fn check_threads(args: &StartArgs, kind: &AppKind) -> Result<(), String> {
    let threaded = args.concurrency_model == ConcurrencyModel::Thread;
    match kind {
        AppKind::Generic { .. } if threaded => Err(
            "--concurrency-model thread is for WSGI apps (ferry's loader runs the threads); a \
             generic app runs its own threads: drop it, and set --concurrency to the requests \
             one process takes at once"
                .into(),
        ),
        _ if !threaded && args.thread_count.is_some() => Err(format!(
            "--thread-count {} needs --concurrency-model thread (without it a WSGI process \
             serves one request at a time)",
            args.thread_count.unwrap_or_default()
        )),
        _ => match (args.concurrency, args.thread_count) {
            (Some(cap), Some(threads)) if threaded && cap != threads => Err(format!(
                "--concurrency {cap} and --thread-count {threads} disagree: in the thread model \
                 a process serves --thread-count requests at once; give only --thread-count"
            )),
            _ => Ok(()),
        },
    }
}

#[derive(Clone, Debug)]
pub enum AppKind {
    /// Any command that listens on `$PORT`.
    Generic { command: String },
    /// A WSGI app served by ferry's loader over a Unix socket.
    Wsgi {
        startup_file: PathBuf,
        python: String,
        /// `--concurrency-model`: one request at a time, or a thread per request.
        model: ConcurrencyModel,
    },
}

#[derive(Clone, Debug)]
pub struct App {
    pub root: PathBuf,
    pub kind: AppKind,
    pub environment: String,
    /// `--envvar`s and the Passengerfile's `envvars`, in order: a later one wins.
    pub envvars: Vec<(String, String)>,
    /// `--user`, when ferry runs as root.
    pub user: Option<crate::app_user::AppUser>,
}

/// Where a process takes requests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BackendAddr {
    Tcp(std::net::SocketAddr),
    Unix(PathBuf),
}

impl App {
    /// Detects the app in `args.app_dir`. The error is one line naming what is wrong.
    pub fn detect(args: &StartArgs) -> Result<App, String> {
        let dir = &args.app_dir;
        let root = std::fs::canonicalize(dir)
            .map_err(|e| format!("the app directory {} cannot be used: {e}", dir.display()))?;
        if !root.is_dir() {
            return Err(format!(
                "the app directory {} is not a directory",
                dir.display()
            ));
        }
        let startup_file = root.join(
            args.startup_file
                .as_deref()
                .unwrap_or(Path::new("passenger_wsgi.py")),
        );
        let app_type = match (args.app_type, &args.app_start_command) {
            (Some(kind), _) => kind,
            (None, Some(_)) => AppType::Generic,
            (None, None) if startup_file.is_file() => AppType::Wsgi,
            (None, None) => {
                return Err(format!(
                    "no app found in {}: it has no {} and no --app-start-command was given",
                    root.display(),
                    startup_file
                        .file_name()
                        .unwrap_or_default()
                        .to_string_lossy()
                ))
            }
        };
        let kind = match app_type {
            AppType::Generic => match &args.app_start_command {
                Some(command) if !command.trim().is_empty() => AppKind::Generic {
                    command: command.clone(),
                },
                _ => return Err("--app-type generic needs --app-start-command".into()),
            },
            AppType::Wsgi => {
                if !startup_file.is_file() {
                    return Err(format!(
                        "the WSGI startup file {} does not exist",
                        startup_file.display()
                    ));
                }
                AppKind::Wsgi {
                    startup_file,
                    python: find_python(&args.python)?,
                    model: args.concurrency_model,
                }
            }
        };
        check_threads(args, &kind)?;
        Ok(App {
            root,
            kind,
            environment: args.environment.clone(),
            envvars: args.envvars.clone(),
            user: None,
        })
    }

    /// The hard cap on a process's concurrent sessions and the soft target the pool is
    /// scaled for, from `--concurrency` and `--target-concurrency` or this app's defaults.
    ///
    /// ferry's WSGI loader serves one request at a time (in the process model), so a WSGI
    /// process takes 1; in the thread model it serves as many at once as ferry sends it, each
    /// in a thread of its own, so the cap is `--thread-count`. A generic app is usually an
    /// event loop (Node, uvicorn) or a threaded server that serves many requests at once:
    /// capping it at 1 would make each idle WebSocket or slow upstream call hold a whole
    /// process, so it takes any number (Knative's default too: no hard limit), and the pool
    /// grows on the soft target instead.
    pub fn concurrency(&self, args: &StartArgs) -> (u32, u32) {
        let cap = args.concurrency.unwrap_or(match self.kind {
            AppKind::Wsgi {
                model: ConcurrencyModel::Thread,
                ..
            } => args.thread_count.unwrap_or(DEFAULT_THREAD_COUNT),
            AppKind::Wsgi { .. } => 1,
            AppKind::Generic { .. } => 0,
        });
        let target = args.target_concurrency.unwrap_or(match cap {
            0 => UNLIMITED_TARGET_CONCURRENCY,
            cap => cap,
        });
        (cap, target)
    }

    pub fn type_name(&self) -> &'static str {
        match self.kind {
            AppKind::Generic { .. } => "generic",
            AppKind::Wsgi { .. } => "wsgi",
        }
    }
}

/// The interpreter `--python` names, as a shell would find it: a name with no `/` on PATH,
/// a path from the current directory (not the app directory the processes run in).
fn find_python(python: &str) -> Result<String, String> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |path: &Path| {
        path.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if python.contains('/') {
        let path = std::path::absolute(python)
            .map_err(|e| format!("--python {python} cannot be used: {e}"))?;
        if !executable(&path) {
            return Err(format!(
                "--python {python}: {} is not an executable file",
                path.display()
            ));
        }
        return Ok(path.display().to_string());
    }
    let path_var = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path_var)
        .map(|dir| dir.join(python))
        .find(|candidate| executable(candidate))
        .map(|found| found.display().to_string())
        .ok_or_else(|| {
            format!(
                "--python {python}: no executable named {python} on PATH; give its path \
                 or install it"
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn args(flags: &[&str]) -> StartArgs {
        let argv = ["ferry", "start", "."].iter().chain(flags);
        match Cli::parse_from(argv).command {
            Command::Start(args) => *args,
            _ => unreachable!(),
        }
    }

    fn app(kind: AppKind) -> App {
        App {
            root: PathBuf::from("/app"),
            kind,
            environment: "development".into(),
            envvars: Vec::new(),
            user: None,
        }
    }

    fn wsgi_kind(model: ConcurrencyModel) -> AppKind {
        AppKind::Wsgi {
            startup_file: PathBuf::from("/app/passenger_wsgi.py"),
            python: "python3".into(),
            model,
        }
    }

    #[test]
    fn a_threaded_wsgi_process_takes_thread_count_requests_at_once() {
        let threaded = app(wsgi_kind(ConcurrencyModel::Thread));
        let thread = ["--concurrency-model", "thread"];
        assert_eq!(
            threaded.concurrency(&args(&thread)),
            (DEFAULT_THREAD_COUNT, DEFAULT_THREAD_COUNT)
        );
        let eight = args(&[&thread[..], &["--thread-count", "8"]].concat());
        assert_eq!(threaded.concurrency(&eight), (8, 8));
        assert_eq!(check_threads(&eight, &threaded.kind), Ok(()));
    }

    #[test]
    fn thread_flags_that_cannot_apply_are_refused_naming_the_flag() {
        let generic = AppKind::Generic {
            command: "node app.js".into(),
        };
        let wsgi = wsgi_kind(ConcurrencyModel::Process);
        let threaded = wsgi_kind(ConcurrencyModel::Thread);
        let refused =
            |flags: &[&str], kind: &AppKind| check_threads(&args(flags), kind).unwrap_err();
        let e = refused(&["--concurrency-model", "thread"], &generic);
        assert!(
            e.contains("--concurrency-model thread is for WSGI apps"),
            "{e}"
        );
        let e = refused(&["--thread-count", "4"], &wsgi);
        assert!(
            e.contains("--thread-count 4 needs --concurrency-model thread"),
            "{e}"
        );
        let flags = [
            "--concurrency-model",
            "thread",
            "--thread-count",
            "4",
            "--concurrency",
            "2",
        ];
        let e = refused(&flags, &threaded);
        assert!(
            e.contains("--concurrency 2 and --thread-count 4 disagree"),
            "{e}"
        );
        assert_eq!(check_threads(&args(&[]), &generic), Ok(()));
        assert_eq!(check_threads(&args(&["--concurrency", "3"]), &wsgi), Ok(()));
    }

    #[test]
    fn a_generic_app_takes_many_requests_at_once_and_a_wsgi_app_one() {
        let generic = app(AppKind::Generic {
            command: "node app.js".into(),
        });
        let wsgi = app(wsgi_kind(ConcurrencyModel::Process));
        assert_eq!(
            generic.concurrency(&args(&[])),
            (0, UNLIMITED_TARGET_CONCURRENCY)
        );
        assert_eq!(wsgi.concurrency(&args(&[])), (1, 1));
        assert_eq!(generic.concurrency(&args(&["--concurrency", "4"])), (4, 4));
        assert_eq!(
            wsgi.concurrency(&args(&["--concurrency", "0", "--target-concurrency", "3"])),
            (0, 3)
        );
    }
}
