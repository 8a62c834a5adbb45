//! The emulator never outlives what started it: a failing test, or a parent that died.

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ops_e2e::emulator::{emulator_python, workspace_root};
use ops_e2e::Emulator;

fn process_exists(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn the_emulator_is_stopped_when_a_test_panics() {
    let mut seen = None;
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let emulator = Emulator::start();
        seen = Some((
            emulator.pid(),
            emulator.endpoint.trim_start_matches("http://").to_string(),
        ));
        panic!("a failing test");
    }));

    assert!(outcome.is_err());
    let (pid, authority) = seen.expect("the emulator started");
    assert!(
        !process_exists(pid),
        "emulator process {pid} is still running"
    );
    assert!(
        TcpStream::connect(&authority).is_err(),
        "something still listens on {authority}"
    );
}

#[test]
fn the_launcher_exits_by_itself_when_its_stdin_closes() {
    let mut child = Command::new(emulator_python())
        .args(["-m", "ops_emulator"])
        .current_dir(workspace_root().join("tests/emulator"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the launcher");
    let mut ready = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut ready)
        .expect("read READY");
    assert!(ready.starts_with("READY http://127.0.0.1:"), "{ready}");

    drop(child.stdin.take()); // what happens when the parent dies without cleaning up

    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().expect("poll the launcher") {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        status.is_some(),
        "the launcher kept running after its stdin closed"
    );
}
