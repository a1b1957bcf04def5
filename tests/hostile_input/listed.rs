//! The listed inputs of the hostile-input suite: ids, bodies, page and consistency tokens and
//! `Authorization` headers no route accepts.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ftgo_infra::token::LocalJwt;
use serde_json::{Value, json};

use super::read_side::encode_bytes;

/// Path ids no route accepts (already encoded for the wire).
pub fn nasty_ids() -> Vec<String> {
    let mut ids: Vec<String> = [
        "a%23b",                // '#', the stream-id separator
        "Order%23o-1",          // a stream id smuggled in
        "a%2Fb",                // an encoded '/'
        "%2E%2E%2F%2E%2E",      // '../..'
        "%00",                  // NUL
        "o-1%00",               // NUL suffix
        "%E2%80%AE1-o",         // RTL override
        "o%E2%80%8F1",          // RTL mark
        "%EF%BB%BF",            // BOM
        "%FF%FE",               // invalid UTF-8
        "%C0%AF",               // overlong '/'
        "%F0%9F%92%A3",         // emoji
        "%20",                  // blank
        "o%091",                // tab
        "o%0D%0A1",             // CR LF
        "%27%20OR%201%3D1--",   // SQL-ish
        "%24%7Bjndi%3Aldap%7D", // ${jndi:ldap}
        "%25",                  // a lone '%'
        "%zz",                  // a broken escape
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    ids.push("x".repeat(10 * 1024)); // a 10 KB id
    ids.push(encode_bytes("é".repeat(200).as_bytes())); // over the key limit in bytes
    ids
}

/// `body` as JSON text with the field at `path` (keys, or indexes into arrays) set to `value`.
pub fn with_field(body: &Value, path: &[&str], value: Value) -> Vec<u8> {
    let mut body = body.clone();
    let mut at = &mut body;
    for key in path {
        at = match (key.parse::<usize>(), at.is_array()) {
            (Ok(index), true) => &mut at[index],
            _ => &mut at[*key],
        };
    }
    *at = value;
    body.to_string().into_bytes()
}

/// Bodies no command accepts.
pub fn nasty_bodies(valid_create: &Value) -> Vec<(String, Vec<u8>)> {
    let mut bodies: Vec<(String, Vec<u8>)> = Vec::new();
    let mut add = |name: &str, body: Vec<u8>| bodies.push((name.to_owned(), body));
    add("malformed", b"{\"consumerId\":".to_vec());
    add("not an object", b"[]".to_vec());
    add("null", b"null".to_vec());
    add("a string", b"\"orders\"".to_vec());
    add("trailing garbage", b"{} {}".to_vec());
    add("nested arrays", "[".repeat(5000).into_bytes());
    add("nested objects", "{\"a\":".repeat(3000).into_bytes());
    add(
        "deep but closed",
        format!("{}1{}", "[".repeat(1000), "]".repeat(1000)).into_bytes(),
    );
    add("invalid UTF-8", vec![b'{', 0xff, 0xfe, b'}']);
    add("UTF-16", b"\xff\xfe{\x00}\x00".to_vec());
    add("NUL bytes", vec![0; 64]);
    add("1 MiB", {
        let mut big = b"{\"consumerId\":\"".to_vec();
        big.extend(std::iter::repeat_n(b'x', 1024 * 1024));
        big.extend(b"\"}");
        big
    });
    let mutate = |path: &[&str], value: Value| with_field(valid_create, path, value);
    let line = |field: &'static str| ["lineItems", "0", field];
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("consumerId a number", mutate(&["consumerId"], json!(1))),
        ("consumerId null", mutate(&["consumerId"], Value::Null)),
        ("lineItems an object", mutate(&["lineItems"], json!({}))),
        ("lineItems empty", mutate(&["lineItems"], json!([]))),
        ("quantity a string", mutate(&line("quantity"), json!("2"))),
        ("quantity a float", mutate(&line("quantity"), json!(1.5))),
        ("quantity zero", mutate(&line("quantity"), json!(0))),
        ("quantity negative", mutate(&line("quantity"), json!(-1))),
        (
            "quantity over u32",
            mutate(&line("quantity"), json!(4_294_967_296_u64)),
        ),
        ("quantity over u64", mutate(&line("quantity"), json!(1e30))),
        ("price a number", mutate(&line("price"), json!(12.34))),
        (
            "price three decimals",
            mutate(&line("price"), json!("1.234")),
        ),
        ("price negative", mutate(&line("price"), json!("-1.00"))),
        ("price exponent", mutate(&line("price"), json!("1e3"))),
        ("price NaN", mutate(&line("price"), json!("NaN"))),
        ("price huge", mutate(&line("price"), json!("9".repeat(40)))),
        (
            "price near i64::MAX",
            mutate(&line("price"), json!("92233720368547758.07")),
        ),
        ("total overflows", {
            let mut body = valid_create.clone();
            body["lineItems"][0]["quantity"] = json!(u32::MAX);
            body["lineItems"][0]["price"] = json!("90000000000000.00");
            body.to_string().into_bytes()
        }),
        (
            "restaurantId with #",
            mutate(&["restaurantId"], json!("r#1")),
        ),
        (
            "restaurantId with /",
            mutate(&["restaurantId"], json!("r/../1")),
        ),
        (
            "restaurantId 10 KB",
            mutate(&["restaurantId"], json!("r".repeat(10 * 1024))),
        ),
        (
            "restaurantId NUL",
            mutate(&["restaurantId"], json!("r\u{0}1")),
        ),
        (
            "restaurantId RTL",
            mutate(&["restaurantId"], json!("\u{202E}1-r")),
        ),
        (
            "menuItemId with #",
            mutate(&line("menuItemId"), json!("m#1")),
        ),
        (
            "name with control characters",
            mutate(&line("name"), json!("Vindaloo\u{7}\u{1b}[31m")),
        ),
        (
            "restaurantName U+FFFE (SQS refuses it in a dead letter)",
            mutate(&["restaurantName"], json!("Ajanta\u{FFFE}")),
        ),
        (
            "line name U+FFFF",
            mutate(&line("name"), json!("Naan\u{FFFF}")),
        ),
        (
            "street2 U+FFFF",
            mutate(&["deliveryAddress", "street2"], json!("\u{FFFF}")),
        ),
        (
            "restaurantName RTL override",
            mutate(&["restaurantName"], json!("\u{202E}atnajA")),
        ),
        (
            "restaurantName blank",
            mutate(&["restaurantName"], json!(" \t ")),
        ),
        (
            "street with newline",
            mutate(&["deliveryAddress", "street1"], json!("1 Main\nSt")),
        ),
        ("duplicate field", {
            let text = valid_create.to_string();
            text.replacen('{', "{\"consumerId\":\"c-1\",", 1)
                .into_bytes()
        }),
    ];
    bodies.extend(
        cases
            .into_iter()
            .map(|(name, body)| (name.to_owned(), body)),
    );
    bodies
}

/// Page and consistency tokens no route accepts.
pub fn forged_tokens(page_token: &str, consistency_token: &str) -> Vec<(&'static str, String)> {
    // `keyId.payload.tag` (the key id is absent in older tokens): tamper with the payload.
    let (head, tag) = page_token.rsplit_once('.').expect("payload.tag");
    let (key, payload) = match head.rsplit_once('.') {
        Some((key, payload)) => (format!("{key}."), payload),
        None => (String::new(), head),
    };
    let mut decoded = URL_SAFE_NO_PAD.decode(payload).expect("payload");
    let digit = decoded
        .iter_mut()
        .find(|b| b.is_ascii_digit())
        .expect("the payload holds a number");
    *digit = if *digit == b'9' { b'1' } else { *digit + 1 };
    let tampered = format!("{key}{}.{tag}", URL_SAFE_NO_PAD.encode(&decoded));
    vec![
        ("pageToken", page_token[..page_token.len() / 2].to_owned()),
        ("pageToken", page_token[..page_token.len() - 1].to_owned()),
        ("pageToken", payload.to_owned()),
        ("pageToken", tampered),
        (
            "pageToken",
            format!("{payload}.{}", URL_SAFE_NO_PAD.encode([0u8; 32])),
        ),
        ("pageToken", format!("{page_token}{page_token}")),
        ("pageToken", "A".repeat(10 * 1024)),
        ("pageToken", ".".to_owned()),
        ("pageToken", "%00".to_owned()),
        ("pageToken", "not base64!".to_owned()),
        (
            "consistentWith",
            consistency_token[..consistency_token.len() / 2].to_owned(),
        ),
        ("consistentWith", format!("{consistency_token}x")),
        ("consistentWith", "Order#o-1#1".to_owned()),
        ("consistentWith", "A".repeat(10 * 1024)),
        (
            "consistentWith",
            URL_SAFE_NO_PAD.encode(format!("Order#{}#1", "x".repeat(3000))),
        ),
        ("consistentWith", "%FF%FE".to_owned()),
    ]
}

/// Authorization headers the gateway refuses.
pub fn nasty_authorizations(jwt: &LocalJwt) -> Vec<(&'static str, Option<String>)> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let sign = |claims: Value| jwt.sign(&claims).expect("token");
    let valid = jwt
        .issue("c-1", &["ftgo/admin"], Duration::from_secs(600))
        .expect("token");
    let (unsigned, _) = valid.rsplit_once('.').expect("three parts");
    let claims = URL_SAFE_NO_PAD.encode(
        json!({"iss": "ftgo-local", "sub": "c-1", "scope": "ftgo/admin", "exp": now + 600})
            .to_string(),
    );
    let none = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
    let hs512 = URL_SAFE_NO_PAD.encode(r#"{"alg":"HS512","typ":"JWT"}"#);
    let bearer = |token: String| Some(format!("Bearer {token}"));
    vec![
        ("no header", None),
        ("empty", Some(String::new())),
        ("scheme only", Some("Bearer".to_owned())),
        ("basic", Some("Basic YzotMTpwYXNz".to_owned())),
        ("garbage", bearer("not-a-jwt".to_owned())),
        (
            "expired",
            bearer(sign(
                json!({"iss": "ftgo-local", "sub": "c-1", "exp": now - 5}),
            )),
        ),
        (
            "not yet valid",
            bearer(sign(
                json!({"iss": "ftgo-local", "sub": "c-1", "exp": now + 600, "nbf": now + 300}),
            )),
        ),
        (
            "no expiry",
            bearer(sign(json!({"iss": "ftgo-local", "sub": "c-1"}))),
        ),
        (
            "another issuer",
            bearer(sign(
                json!({"iss": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_X", "sub": "c-1", "exp": now + 600}),
            )),
        ),
        (
            "no issuer",
            bearer(sign(json!({"sub": "c-1", "exp": now + 600}))),
        ),
        (
            "no subject",
            bearer(sign(json!({"iss": "ftgo-local", "exp": now + 600}))),
        ),
        (
            "blank subject",
            bearer(sign(
                json!({"iss": "ftgo-local", "sub": " ", "exp": now + 600}),
            )),
        ),
        (
            "another secret",
            bearer(
                LocalJwt::new("guessed")
                    .issue("c-1", &["ftgo/admin"], Duration::from_secs(600))
                    .expect("token"),
            ),
        ),
        ("alg none", bearer(format!("{none}.{claims}."))),
        ("alg none, two parts", bearer(format!("{none}.{claims}"))),
        (
            "HS512 header on an HS256 signature",
            bearer(format!(
                "{hs512}.{}",
                valid.split_once('.').expect("parts").1
            )),
        ),
        ("signature stripped", bearer(format!("{unsigned}."))),
        ("truncated", bearer(valid[..valid.len() - 3].to_owned())),
        ("10 KB", bearer("e".repeat(10 * 1024))),
    ]
}
