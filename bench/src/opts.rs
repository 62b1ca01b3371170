//! ferry-bench's command line.

use clap::builder::TypedValueParser as _;
use clap::{ArgAction, Parser};
use std::path::PathBuf;
use std::time::Duration;

/// ferry-bench: ferry vs direct, HAProxy, nginx, Passenger, gunicorn, Granian and uWSGI on
/// loopback.
///
/// Environment: FERRY_BENCH_BIN_DIR (where ferry and ferry-testapp are; default: this
/// program's directory), FERRY_BENCH_KEEP_TMP (keep the run directories and logs).
#[derive(Parser, Debug)]
#[command(name = "ferry-bench")]
pub struct Opts {
    /// Length of each wrk run, in seconds.
    #[arg(long, value_name = "SECS", default_value = "5", value_parser = whole_seconds)]
    pub duration: Duration,
    /// wrk warm-up after each server start, not measured, in seconds.
    #[arg(long, value_name = "SECS", default_value = "1", value_parser = seconds)]
    pub warmup: Duration,
    /// Interleaved rounds, A B C A B C ...
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..).map(|n| n as usize))]
    pub rounds: usize,
    /// App processes behind each server.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..).map(|n| n as usize))]
    pub apps: usize,
    /// Only these servers, comma-separated.
    #[arg(
        long = "servers",
        value_name = "LIST",
        value_delimiter = ',',
        value_parser = [
            "direct", "ferry-c1", "ferry-c0", "ferry-c0-log", "haproxy", "ferry-tls", "haproxy-tls",
            "nginx", "passenger", "ferry-wsgi", "ferry-wsgi-c2", "ferry-wsgi-t8",
            "passenger-wsgi", "gunicorn", "granian", "uwsgi", "gunicorn-t8", "granian-t8",
            "uwsgi-t8",
        ]
    )]
    pub only: Option<Vec<String>>,
    /// Skip the proxy table.
    #[arg(long = "no-proxies", action = ArgAction::SetFalse)]
    pub proxies: bool,
    /// Skip the HTTPS table (ferry --ssl against HAProxy terminating TLS).
    #[arg(long = "no-https", action = ArgAction::SetFalse)]
    pub https: bool,
    /// Skip the WSGI tables (hello and Flask).
    #[arg(long = "no-wsgi", action = ArgAction::SetFalse)]
    pub wsgi: bool,
    /// Skip the Flask table (the hello one still runs).
    #[arg(long = "no-flask", action = ArgAction::SetFalse)]
    pub flask: bool,
    /// Skip the WSGI table of requests that wait (threads against processes).
    #[arg(long = "no-wsgi-wait", action = ArgAction::SetFalse)]
    pub wsgi_wait: bool,
    /// Skip the burst and crash measurements.
    #[arg(long = "no-dynamics", action = ArgAction::SetFalse)]
    pub dynamics: bool,
    /// Skip the generic async app's pool (tests/asyncapp through ferry's defaults).
    #[arg(long = "no-async-app", action = ArgAction::SetFalse)]
    pub async_app: bool,
    /// Skip the fidelity section (the simulator replaying real runs' access logs).
    #[arg(long = "no-fidelity", action = ArgAction::SetFalse)]
    pub fidelity: bool,
    /// kill -9 trials per server (at most 8).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(0..=8).map(|n| n as usize))]
    pub crash_trials: usize,
    /// Do not run `cargo build --release -p ferry -p ferry-testapp` first.
    #[arg(long = "no-build", action = ArgAction::SetFalse)]
    pub build: bool,
    /// Also write the report (Markdown) to FILE.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

fn seconds(text: &str) -> Result<Duration, String> {
    text.parse()
        .map(Duration::from_secs)
        .map_err(|_| format!("a whole number of seconds, not {text:?}"))
}

fn whole_seconds(text: &str) -> Result<Duration, String> {
    match seconds(text)? {
        d if d.is_zero() => Err("at least 1 second".into()),
        d => Ok(d),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_switches() {
        let opts = Opts::try_parse_from(["ferry-bench"]).unwrap();
        assert_eq!(opts.duration, Duration::from_secs(5));
        assert!(opts.proxies && opts.wsgi && opts.dynamics && opts.fidelity && opts.build);
        let opts = Opts::try_parse_from([
            "ferry-bench",
            "--no-wsgi",
            "--servers",
            "ferry-c0,haproxy",
            "--duration",
            "2",
        ])
        .unwrap();
        assert!(!opts.wsgi && opts.proxies);
        assert_eq!(opts.only.unwrap(), ["ferry-c0", "haproxy"]);
        assert_eq!(opts.duration, Duration::from_secs(2));
    }

    #[test]
    fn refuses_what_cannot_work() {
        for args in [
            &["ferry-bench", "--servers", "apache"][..],
            &["ferry-bench", "--duration", "0"],
            &["ferry-bench", "--crash-trials", "9"],
            &["ferry-bench", "--rounds", "0"],
        ] {
            assert!(Opts::try_parse_from(args).is_err(), "{args:?} was accepted");
        }
    }
}
