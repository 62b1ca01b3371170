//! Helpers for ferry's end-to-end tests: start the real `ferry` binary on loopback against
//! real app processes, talk HTTP to it, read `ferry status --json`, and clean up.
//!
//! Every wait here polls a condition with a deadline ([`wait_for`]); none sleeps a guessed
//! time. The parts:
//!
//! - [`server`]: [`Ferry`], a running `ferry start` (started on a free port with its own
//!   instance registry, its output collected, interrupted when dropped); [`status`] adds the
//!   readers of its `ferry status --json`.
//! - [`commands`]: one-shot `ferry` commands run to their exit ([`run_ferry`]).
//! - [`http_client`]: [`HttpClient`], a keep-alive client for well-formed exchanges;
//!   [`raw_conn`]: [`RawConn`], any bytes out and byte-exact responses back, for broken input;
//!   [`load`]: concurrent and steady client load.
//! - [`recording_app`]: a Python app that records every request it receives; [`env_app`]: a
//!   WSGI app that answers with the scheme and forwarding fields it saw.
//! - [`tls`]: HTTPS clients (rustls, curl, openssl s_client) and a certificate made at test
//!   time.
//! - [`paths`], [`processes`], [`tempdir`], [`wait`]: the binaries and repository, signals and
//!   liveness by pid, temporary directories, bounded waits.
//!
//! Everything tests use is re-exported here, so `use ferry_e2e::{Ferry, get, wait_for}` works
//! whichever module holds it.

pub mod commands;
pub mod env_app;
pub mod http_client;
pub mod load;
pub mod paths;
pub mod processes;
pub mod raw_conn;
pub mod recording_app;
pub mod server;
pub mod status;
pub mod tempdir;
pub mod tls;
pub mod wait;

pub use commands::{run_ferry, run_ferry_with_env, Finished};
pub use http_client::{get, pid_of, HttpClient, Outcome, Response};
pub use load::{concurrent_gets, failures, Load};
pub use paths::{
    asyncapp_args, ferry_bin, flask_python, one_session_unless_given, repo_root, testapp_args,
    testapp_bin,
};
pub use processes::{process_alive, signal};
pub use raw_conn::{RawConn, RawResponse};
pub use recording_app::{
    base64, base64_decode, latin1_bytes, Record, RecordingApp, RECORDING_APP_PY,
};
pub use server::{free_port, Ferry};
pub use wait::wait_for;
