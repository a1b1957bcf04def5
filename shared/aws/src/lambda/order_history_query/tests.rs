//! Unit tests of the query handler: page tokens, limits, date parsing.
use super::*;

#[tokio::test]
async fn page_tokens_open_only_with_their_key_and_unmodified() {
    let body = PageTokenBody {
        f: "fp".into(),
        s: 1,
        u: 3,
        o: "o-1".into(),
        d: 2,
    };
    let keys = PageTokenKeys::from("secret");
    let token = seal(&keys, &body).await.unwrap();
    assert_eq!(open(&keys, &token).await.unwrap(), body);
    assert!(open(&PageTokenKeys::from("other"), &token).await.is_err());
    let (head, tag) = token.rsplit_once('.').unwrap();
    let (key_id, _) = head.split_once('.').unwrap();
    let forged_payload = URL_SAFE_NO_PAD.encode(br#"{"f":"fp","s":1,"u":3,"o":"o-2","d":2}"#);
    let forged = format!("{key_id}.{forged_payload}.{tag}");
    assert!(open(&keys, &forged).await.is_err());
    assert!(open(&keys, head).await.is_err());
    assert!(open(&keys, "garbage").await.is_err());
}

#[test]
fn a_full_page_at_every_limit_stays_under_lambdas_6_mb() {
    use ftgo_domain::order::{MAX_ID_CHARS, MAX_LINE_ITEMS, MAX_NAME_CHARS};
    // The costliest characters a name may hold: `"` and `\\` take 2 bytes in the body and
    // 4 once the body is a string in Lambda's response; 4-byte UTF-8 takes 4 in both.
    let name = "\"😀\\".repeat(MAX_NAME_CHARS / 3);
    let id = "i".repeat(MAX_ID_CHARS);
    let order = OrderJson {
        order_id: id.clone(),
        consumer_id: id.clone(),
        status: "APPROVAL_PENDING".into(),
        delivery_status: Some("PICKED_UP".into()),
        restaurant_id: id.clone(),
        restaurant_name: name.clone(),
        line_items: (0..MAX_LINE_ITEMS)
            .map(|_| LineItemJson {
                menu_item_id: id.clone(),
                name: name.clone(),
                quantity: u32::MAX,
                price: "92233720368547758.07".into(),
            })
            .collect(),
        order_total: "92233720368547758.07".into(),
        creation_date: "2026-11-27T10:00:00.123456789+00:00".into(),
    };
    let page = HistoryJson {
        orders: vec![order; MAX_PAGE_SIZE],
        next_page_token: Some("t".repeat(MAX_PAGE_TOKEN_CHARS)),
    };
    let body = serde_json::to_string(&page).unwrap();
    let response = serde_json::to_string(&serde_json::json!({
        "statusCode": 200,
        "headers": {"content-type": "application/json"},
        "body": body,
    }))
    .unwrap();
    assert!(
        response.len() < 6 * 1024 * 1024 * 9 / 10,
        "{} bytes",
        response.len()
    );
}

#[tokio::test]
async fn sealed_page_tokens_with_inconsistent_content_are_refused() {
    let good = PageTokenBody {
        f: "fp".into(),
        s: 10,
        u: 20,
        o: "o-1".into(),
        d: 15,
    };
    let keys = PageTokenKeys::from("k");
    assert_eq!(
        open(&keys, &seal(&keys, &good).await.unwrap())
            .await
            .unwrap(),
        good
    );
    let bad = [
        PageTokenBody {
            s: 21,
            ..good_copy(&good)
        },
        PageTokenBody {
            d: 9,
            ..good_copy(&good)
        },
        PageTokenBody {
            d: 21,
            ..good_copy(&good)
        },
        PageTokenBody {
            o: String::new(),
            ..good_copy(&good)
        },
        PageTokenBody {
            o: "o".repeat(3000),
            ..good_copy(&good)
        },
        PageTokenBody {
            o: "o 1".into(),
            ..good_copy(&good)
        },
    ];
    for body in bad {
        let error = open(&keys, &seal(&keys, &body).await.unwrap())
            .await
            .unwrap_err();
        assert_eq!(error.status, StatusCode::BAD_REQUEST, "{body:?}");
        assert!(error.message.starts_with("pageToken"), "{body:?}");
    }
}

fn good_copy(body: &PageTokenBody) -> PageTokenBody {
    PageTokenBody {
        f: body.f.clone(),
        o: body.o.clone(),
        ..*body
    }
}

#[test]
fn a_plus_offset_that_arrived_as_a_space_still_parses() {
    assert_eq!(
        parse_time("since", "2024-05-06T07:08:09 02:00").unwrap(),
        time::macros::datetime!(2024-05-06 07:08:09 +02:00)
    );
    assert!(parse_time("since", "yesterday").is_err());
}
