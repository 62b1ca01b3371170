//! The `ferry` binary: CLI, mio event loop, HTTP proxy, process spawning, admin socket.
#![allow(dead_code)]

mod http;

fn main() {}
