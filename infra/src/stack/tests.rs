//! Tests of the wiring and of process supervision.

use super::*;
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
        let method = http::Method::from_bytes(r.method.as_bytes()).expect("method");
        let found = routes.find(&method, &path).expect("route found");
        assert_eq!(found.route.function, r.binary);
        assert_eq!(found.route.route_key(), format!("{} {}", r.method, r.path));
    }
}

#[test]
fn every_event_source_is_bridged_with_its_settings() {
    let t = template();
    let (streams, queues) = bridge_sources(&t);
    assert_eq!(
        streams.len(),
        t.stream_sources().iter().filter(|s| s.enabled).count()
    );
    assert_eq!(
        queues.len(),
        t.queue_sources().iter().filter(|q| q.enabled).count()
    );
    for (s, declared) in streams.iter().zip(t.stream_sources()) {
        assert_eq!(s.function, declared.binary);
        let function = t
            .functions()
            .iter()
            .find(|f| f.binary == declared.binary)
            .expect("the source's function");
        assert_eq!(s.timeout, Duration::from_secs(u64::from(function.timeout)));
        let table = t.table(&declared.table).expect("table");
        assert_eq!(s.table, table.name);
        assert_eq!(s.policy.batch_size, declared.batch_size as usize);
        assert_eq!(s.policy.max_retry_attempts, declared.maximum_retry_attempts);
        assert_eq!(
            s.policy.bisect_on_error,
            declared.bisect_batch_on_function_error
        );
        assert_eq!(
            s.policy.report_batch_item_failures,
            declared.reports_batch_item_failures()
        );
        if let Some(dest) = &declared.on_failure {
            let queue = t.queue(dest).expect("destination queue");
            assert_eq!(s.on_failure.as_deref(), Some(queue.url.as_str()));
            assert!(queue.url.starts_with("http://127.0.0.1:4566/"));
        }
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
    tokio::time::sleep(Duration::from_millis(200)).await;
    let below = process_tree::descendants(pgid);
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
