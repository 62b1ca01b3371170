//! systemd's `Type=notify`: with `$NOTIFY_SOCKET` set (here a socket the test binds), ferry
//! sends READY=1 once its first app process is ready and STOPPING=1 when a stop begins; app
//! processes do not inherit the variable.

use ferry_e2e::{get, Ferry};
use std::os::unix::net::UnixDatagram;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(20);

fn receive(socket: &UnixDatagram) -> String {
    let mut buf = [0u8; 256];
    let n = socket
        .recv(&mut buf)
        .expect("a notification within the read timeout");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[test]
fn ready_once_a_process_is_ready_and_stopping_at_a_stop() {
    let dir = ferry_e2e::tempdir::TempDir::new("ferry-e2e-notify");
    let path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&path).unwrap();
    socket.set_read_timeout(Some(LIMIT)).unwrap();
    let mut ferry = Ferry::start_testapp(&[], &[("NOTIFY_SOCKET", path.to_str().unwrap())]);
    assert_eq!(receive(&socket), "READY=1");
    assert!(
        !ferry.pids_in("ready").is_empty(),
        "READY=1 came before a process was ready: {}",
        ferry.status()
    );
    let env = get(ferry.addr(), "/env/NOTIFY_SOCKET").unwrap();
    assert_eq!(
        env.status,
        404,
        "the app sees NOTIFY_SOCKET: {}",
        env.text()
    );
    ferry_e2e::signal(ferry.child.id(), rustix::process::Signal::TERM);
    assert_eq!(receive(&socket), "STOPPING=1");
    assert_eq!(ferry.wait_exit(LIMIT).code(), Some(0));
    socket.set_nonblocking(true).expect("no more notifications");
    let mut buf = [0u8; 64];
    assert!(
        socket.recv(&mut buf).is_err(),
        "READY=1 and STOPPING=1 only, once each"
    );
}
