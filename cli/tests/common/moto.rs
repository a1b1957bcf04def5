//! moto server on a free port for the CLI's tests, launched as the local stack launches it
//! (`infra/moto-server`: DynamoDB's isolation), killed when dropped. `None` (reported as skipped,
//! or a failure in CI) when `.venv` is missing.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// moto server, killed when dropped.
pub struct Moto {
    child: Child,
    /// Its endpoint URL.
    pub endpoint: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// moto server through the repository's launcher, on a free port of 127.0.0.1.
pub fn moto() -> Option<Moto> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    if !crate::required::tools_present(&root, &[".venv/bin/python"], "the CLI's moto test") {
        return None;
    }
    let server = root.join("infra/moto-server");
    // Never a port given to another test of this binary (ftgo_cli::ports): two tests asking
    // at once could be handed the same one, and one would talk to the other's server.
    let port = ftgo_cli::ports::free_port().expect("a free port for moto server");
    let child = Command::new(&server)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("moto server ({}) does not start: {e}", server.display()));
    let mut moto = Moto {
        child,
        endpoint: format!("http://127.0.0.1:{port}"),
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = moto.child.try_wait() {
            panic!("moto server exited at start ({status})");
        }
        assert!(Instant::now() < deadline, "moto server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    Some(moto)
}
