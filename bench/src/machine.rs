//! What the report says about the machine it ran on.

use crate::servers::{self, Ctx};
use std::process::Command;

fn first_line(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(String::from)
}

/// The machine, and the version of every server the bench can run (`ctx`'s venv for the
/// Python ones).
pub fn machine_report(ctx: &Ctx) -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("model name")?.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
    let os = std::fs::read_to_string("/etc/debian_version")
        .map(|v| format!("Debian {}", v.trim()))
        .unwrap_or_else(|_| "unknown OS".into());
    let mut versions = Vec::new();
    for (name, prog, args) in [
        ("wrk", "wrk", &["-v"][..]),
        ("HAProxy", "haproxy", &["-v"][..]),
        ("nginx", "nginx", &["-v"][..]),
        ("Passenger", "passenger", &["--version"][..]),
        ("Python", "python", &["--version"][..]),
        ("Granian", "granian", &["--version"][..]),
        ("uWSGI", "uwsgi", &["--version"][..]),
        ("gunicorn", "gunicorn", &["--version"][..]),
    ] {
        let found = match prog {
            "python" => ctx.python(),
            "granian" | "uwsgi" | "gunicorn" => ctx.venv_bin(prog),
            _ => servers::which(prog),
        };
        if let Some(path) = found {
            if let Some(line) = first_line(&path.to_string_lossy(), args) {
                versions.push(format!("{name}: `{line}`"));
            }
        }
    }
    format!(
        "- machine: {nproc} CPUs (`nproc`), {cpu}, Linux {kernel}, {os}\n- load average at start: {}\n- {}\n",
        loadavg(),
        versions.join("; ")
    )
}

/// The 1/5/15-minute load averages: other work on the box skews every figure.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}
