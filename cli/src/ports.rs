//! Free TCP ports on 127.0.0.1 for servers started as child processes (moto server, DynamoDB
//! Local, `ftgo run`'s listeners in tests and benches).
//!
//! A port is found by binding port 0 and letting the listener go, so the child can bind it.
//! Two tests of one process that ask at the same moment may be given the same port by the
//! kernel; then both children try to bind it, one exits, and its test talks to the other's
//! server until that one stops. [`free_port`] never answers a port twice in one process.

use std::collections::HashSet;
use std::net::TcpListener;
use std::sync::{Mutex, PoisonError};

/// The ports this process was given.
static GIVEN: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// A TCP port on 127.0.0.1 that was free a moment ago and was never answered before in this
/// process.
pub fn free_port() -> std::io::Result<u16> {
    let mut given = GIVEN.lock().unwrap_or_else(PoisonError::into_inner);
    let given = given.get_or_insert_with(HashSet::new);
    loop {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        if given.insert(port) {
            return Ok(port);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_port_is_never_answered_twice() {
        let ports: Vec<u16> = (0..200).map(|_| free_port().expect("a port")).collect();
        let distinct: HashSet<u16> = ports.iter().copied().collect();
        assert_eq!(distinct.len(), ports.len());
    }
}
