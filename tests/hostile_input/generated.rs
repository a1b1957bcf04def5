//! The generated inputs of the hostile-input suite (proptest): bodies, paths, query strings and
//! `Authorization` headers; none may answer 5xx.

use std::sync::atomic::Ordering;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::Value;

use super::listed::with_field;
use super::read_side::encode_bytes;
use super::world::{ORDER_ROUTES, Probe, World, method};

pub fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,40}".prop_map(Value::from),
        "[0-9]{1,25}(\\.[0-9]{0,4})?".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        let key = prop_oneof![
            Just("consumerId".to_owned()),
            Just("restaurantId".to_owned()),
            Just("lineItems".to_owned()),
            Just("lineItemQuantities".to_owned()),
            Just("quantity".to_owned()),
            Just("price".to_owned()),
            ".{0,12}",
        ];
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::btree_map(key, inner, 0..6)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

/// A body: raw bytes, text, any JSON, or the valid create body with one field replaced.
pub fn body(valid_create: Value) -> impl Strategy<Value = Vec<u8>> {
    let fields: Vec<Vec<&'static str>> = vec![
        vec!["consumerId"],
        vec!["restaurantId"],
        vec!["restaurantName"],
        vec!["lineItems"],
        vec!["lineItems", "0"],
        vec!["lineItems", "0", "menuItemId"],
        vec!["lineItems", "0", "name"],
        vec!["lineItems", "0", "quantity"],
        vec!["lineItems", "0", "price"],
        vec!["deliveryAddress"],
        vec!["deliveryAddress", "zip"],
    ];
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..256),
        ".{0,200}".prop_map(String::into_bytes),
        json_value().prop_map(|v| v.to_string().into_bytes()),
        (proptest::sample::select(fields), json_value()).prop_map(move |(path, value)| with_field(
            &valid_create,
            &path,
            value
        )),
    ]
}

/// Runs proptest cases of generated inputs; returns how many requests they made.
pub async fn generated_inputs(world: &World, valid_create: &Value) -> usize {
    let start = world.sent.load(Ordering::Relaxed);
    let handle = tokio::runtime::Handle::current();
    let run = |name: &str, cases: u32, test: &mut dyn FnMut() -> Result<(), String>| {
        if let Err(failure) = test() {
            panic!("{name} ({cases} cases): {failure}");
        }
    };
    let config = |cases| Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    let block =
        |probe: Probe| tokio::task::block_in_place(|| handle.block_on(world.survives(&probe)));

    // Bodies at every POST route. Creates come from a caller who is not the body's
    // consumer, so that a body that happens to be a valid order is refused (403) after all
    // of its decoding ran; commands aim at an order that does not exist.
    let mut runner = TestRunner::new(config(160));
    let posts: Vec<&'static str> = std::iter::once("/orders")
        .chain(
            ORDER_ROUTES
                .iter()
                .filter(|(v, _)| *v == "POST")
                .map(|(_, p)| p.as_str()),
        )
        .collect();
    let strategy = (proptest::sample::select(posts), body(valid_create.clone()));
    run("bodies", 160, &mut || {
        runner
            .run(&strategy, |(path, body)| {
                let token = if path == "/orders" {
                    &world.other_consumer
                } else {
                    &world.admin
                };
                block(Probe::post(path.replace("{id}", "o-missing"), token, body))
            })
            .map_err(|e| e.to_string())
    });

    // Any id in any route's path, as the admin.
    let mut runner = TestRunner::new(config(160));
    let strategy = (
        proptest::sample::select(ORDER_ROUTES.clone()),
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 1..80),
            ".{1,40}".prop_map(String::into_bytes),
        ],
    );
    run("paths", 160, &mut || {
        runner
            .run(&strategy, |((verb, path), id)| {
                let target = path.replace("{id}", &encode_bytes(&id));
                block(Probe::new(method(verb), target, &world.admin))
            })
            .map_err(|e| e.to_string())
    });

    // Any query string on both read routes, as the owner.
    let order = world.order_id.clone();
    let mut runner = TestRunner::new(config(160));
    let name = prop_oneof![
        Just("since"),
        Just("until"),
        Just("status"),
        Just("keyword"),
        Just("pageSize"),
        Just("pageToken"),
        Just("consistentWith"),
    ];
    let value = prop_oneof![
        ".{0,30}".prop_map(String::into_bytes),
        proptest::collection::vec(any::<u8>(), 0..40),
        "-?[0-9]{1,22}".prop_map(String::into_bytes),
    ];
    let strategy = (
        any::<bool>(),
        proptest::collection::vec((name, value), 0..5),
    );
    run("query strings", 160, &mut || {
        runner
            .run(&strategy, |(history, pairs)| {
                let query: Vec<String> = pairs
                    .iter()
                    .map(|(name, value)| format!("{name}={}", encode_bytes(value)))
                    .collect();
                let path = if history {
                    "/consumers/c-1/orders".to_owned()
                } else {
                    format!("/orders/{order}")
                };
                block(Probe::get(
                    format!("{path}?{}", query.join("&")),
                    &world.consumer,
                ))
            })
            .map_err(|e| e.to_string())
    });

    // Any Authorization header: always 401.
    let mut runner = TestRunner::new(config(96));
    let strategy = prop_oneof![
        "[ -~]{0,300}",
        "[A-Za-z0-9_-]{0,60}\\.[A-Za-z0-9_-]{0,200}\\.[A-Za-z0-9_-]{0,60}"
            .prop_map(|t| format!("Bearer {t}")),
    ];
    run("authorization headers", 96, &mut || {
        runner
            .run(&strategy, |authorization| {
                let probe = Probe {
                    authorization: Some(authorization),
                    ..Probe::get(format!("/orders/{order}"), "")
                };
                let answer = tokio::task::block_in_place(|| handle.block_on(world.raw(&probe)));
                prop_assert_eq!(answer.status, 401, "{:?}: {}", probe, answer.describe());
                Ok(())
            })
            .map_err(|e| e.to_string())
    });
    world.sent.load(Ordering::Relaxed) - start
}
