//! Tests of the wiring and of process supervision.

use super::*;
use crate::template::{self, Stack};
use std::time::Instant;

fn template() -> Template {
    Template::load(
        template::default_template_path(),
        Stack::local().with_endpoint("http://127.0.0.1:4566"),
    )
    .expect("the repository's template loads")
}

#[test]
fn every_template_route_is_served_by_its_functions_binary() {
    let t = template();
    let routes = gateway_routes(&t).expect("the template's routes");
    assert!(!t.routes().is_empty());
    for r in t.routes() {
        let path = r.path.replace('{', "x").replace('}', "");
        let method = r.method.clone().expect("a method");
        let found = routes.find(&method, &path).expect("route found");
        assert_eq!(found.route, r);
    }
}

#[test]
fn the_bridge_runs_every_function_it_invokes_for_its_timeout() {
    let t = template();
    assert!(!t.stream_sources().is_empty() && !t.queue_sources().is_empty());
    let timeouts = t.stream_sources().iter().map(|s| (&s.function, s.timeout));
    for (function, timeout) in
        timeouts.chain(t.queue_sources().iter().map(|q| (&q.function, q.timeout)))
    {
        let declared = t.function(function).expect("the source's function").timeout;
        assert_eq!(timeout, Duration::from_secs(u64::from(declared)));
    }
}

#[test]
fn functions_get_the_template_environment_and_the_emulator() {
    let t = template();
    let env = function_environment(&t, "http://127.0.0.1:4566");
    for f in t.functions() {
        for key in f.environment.keys() {
            assert!(env.contains_key(key), "{key}");
        }
    }
    assert_eq!(env["AWS_ENDPOINT_URL"], "http://127.0.0.1:4566");
    assert_eq!(env["AWS_REGION"], "us-east-1");
    assert_eq!(env["AWS_ACCESS_KEY_ID"], "test");
}

#[test]
fn the_repositorys_cargo_lambda_toml_is_derived_from_the_template() {
    // A plain `cargo lambda watch` reads it: it must say what the template says, on the
    // emulator `make run` starts.
    let endpoint = format!("http://{DEFAULT_AWS_ADDR}");
    let path = template::default_template_path();
    let t = Template::load(&path, Stack::local().with_endpoint(&endpoint)).expect("template");
    let want = cargo_lambda_config(&t, &endpoint);
    let file = path.parent().expect("root").join(CARGO_LAMBDA_CONFIG);
    let got = std::fs::read_to_string(&file).unwrap_or_default();
    assert!(
        got == want,
        "{} has drifted from template.yaml; run `{CARGO_LAMBDA_CONFIG_COMMAND}`",
        file.display()
    );
    for f in t.functions() {
        for (key, value) in &f.environment {
            let line = format!("{key} = {}", serde_json::Value::String(value.clone()));
            assert!(want.lines().any(|l| l == line), "{line}");
        }
    }
    assert!(want.contains(&format!("AWS_ENDPOINT_URL = \"{endpoint}\"")));
}

#[test]
fn a_taken_port_is_named_with_a_hint() {
    let taken = StdTcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr");
    let error = claim(addr).expect_err("in use");
    assert_eq!(
        error.to_string(),
        format!(
            "port {} is in use (is another `make run` running?)",
            addr.port()
        )
    );
}

#[tokio::test]
async fn a_guarded_process_stops_when_its_owner_goes_away() {
    // The owner "dies": the guard's standard input closes, and the guard stops the group.
    let dir = std::env::temp_dir();
    let mut managed = Managed::spawn(
        "sleeper",
        Path::new("/bin/sleep"),
        &["30".to_owned()],
        &dir,
        &BTreeMap::new(),
        None,
    )
    .expect("spawn");
    let pgid = managed.pgid().expect("pgid");
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut below = process_tree::descendants(pgid);
    while below.len() < 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
        below = process_tree::descendants(pgid);
    }
    assert!(!below.is_empty(), "the guard runs the command");
    drop(managed.child.stdin.take());
    let status = tokio::time::timeout(Duration::from_secs(5), managed.child.wait())
        .await
        .expect("the guard exits when its input closes")
        .expect("status");
    assert!(!status.success());
    let deadline = Instant::now() + Duration::from_secs(5);
    while below.iter().any(process_tree::Proc::alive) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        !below.iter().any(process_tree::Proc::alive),
        "the command stopped too"
    );
}

#[tokio::test]
async fn stopping_a_managed_process_stops_its_group() {
    let dir = std::env::temp_dir();
    let mut managed = Managed::spawn(
        "sleeper",
        Path::new("/bin/sleep"),
        &["30".to_owned()],
        &dir,
        &BTreeMap::new(),
        None,
    )
    .expect("spawn");
    let pgid = managed.pgid().expect("pgid");
    // The guard has started the command (waited for, not assumed after a pause).
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut below = process_tree::descendants(pgid);
    while below.is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
        below = process_tree::descendants(pgid);
    }
    assert!(!below.is_empty(), "the guard runs the command");
    managed.stop(Duration::from_secs(5)).await;
    assert!(managed.exited().is_some());
    assert!(!below.iter().any(process_tree::Proc::alive));
}

#[test]
fn the_process_tree_of_this_process_is_readable() {
    // A child of ours shows up among our descendants and is alive.
    let mut child = std::process::Command::new("sleep")
        .arg("5")
        .spawn()
        .expect("sleep");
    let me = i32::try_from(std::process::id()).expect("pid");
    let found = process_tree::descendants(me);
    assert!(!found.is_empty());
    assert!(found.iter().all(process_tree::Proc::alive) || found.len() > 1);
    let _ = child.kill();
    let _ = child.wait();
}
