//! Client load: many requests at once, or a steady stream until stopped.

use crate::http_client::{get, HttpClient, Outcome};
use crate::wait::wait_for;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// GETs of `paths`, each on its own connection from its own thread, all released at once.
/// Returns the outcomes in the order of `paths`.
/// The outcomes that are not a 200: errors and other statuses.
pub fn failures(outcomes: &[Outcome]) -> Vec<&Outcome> {
    outcomes
        .iter()
        .filter(|o| o.as_ref().map_or(true, |r| r.status != 200))
        .collect()
}

pub fn concurrent_gets(addr: SocketAddr, paths: &[String]) -> Vec<Outcome> {
    let barrier = Arc::new(Barrier::new(paths.len()));
    let handles: Vec<JoinHandle<Outcome>> = paths
        .iter()
        .map(|path| {
            let (barrier, path) = (barrier.clone(), path.clone());
            std::thread::Builder::new()
                .stack_size(256 * 1024)
                .spawn(move || {
                    barrier.wait();
                    get(addr, &path).map_err(|e| e.to_string())
                })
                .expect("spawn a client thread")
        })
        .collect();
    handles
        .into_iter()
        .map(|h| h.join().expect("client thread"))
        .collect()
}

/// A client thread that keeps sending GET `path` (one at a time, on a keep-alive connection
/// it reopens when it breaks) until stopped, recording every outcome in order.
pub struct Load {
    stop: Arc<AtomicBool>,
    outcomes: Arc<Mutex<Vec<Outcome>>>,
    done: Arc<AtomicUsize>,
    handle: Option<JoinHandle<()>>,
}

impl Load {
    pub fn start(addr: SocketAddr, path: &str) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let outcomes = Arc::new(Mutex::new(Vec::new()));
        let done = Arc::new(AtomicUsize::new(0));
        let (thread_stop, thread_outcomes, thread_done, path) = (
            stop.clone(),
            outcomes.clone(),
            done.clone(),
            path.to_string(),
        );
        let handle = std::thread::spawn(move || {
            let mut client: Option<HttpClient> = None;
            while !thread_stop.load(Ordering::SeqCst) {
                let outcome = match client.as_mut() {
                    Some(c) => c.get(&path).map_err(|e| e.to_string()),
                    None => match HttpClient::connect(addr) {
                        Ok(c) => client.insert(c).get(&path).map_err(|e| e.to_string()),
                        Err(e) => Err(format!("connect: {e}")),
                    },
                };
                let reusable = outcome.as_ref().is_ok_and(|r| {
                    !r.header("connection")
                        .is_some_and(|v| v.eq_ignore_ascii_case("close"))
                });
                if !reusable {
                    client = None;
                }
                thread_outcomes.lock().unwrap().push(outcome);
                thread_done.fetch_add(1, Ordering::SeqCst);
                // Pacing, so that the load stays modest next to tests running in parallel.
                std::thread::sleep(Duration::from_millis(3));
            }
        });
        Load {
            stop,
            outcomes,
            done,
            handle: Some(handle),
        }
    }

    /// Requests completed (answered or failed) so far.
    pub fn completed(&self) -> usize {
        self.done.load(Ordering::SeqCst)
    }

    /// Waits until `more` requests beyond those completed now have completed.
    pub fn wait_more(&self, more: usize, limit: Duration) {
        let target = self.completed() + more;
        wait_for(
            &format!("{target} requests of the client load"),
            limit,
            || (self.completed() >= target).then_some(()),
        )
    }

    /// Stops the client and returns every outcome, in order.
    pub fn stop(mut self) -> Vec<Outcome> {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(handle) = self.handle.take() {
            handle.join().expect("load thread");
        }
        std::mem::take(&mut *self.outcomes.lock().unwrap())
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}
