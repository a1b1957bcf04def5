//! The Order aggregate, given/when/then: `handle` decides, `apply` evolves.

use super::fixtures::*;
use super::*;

/// given `events`, when `command`, then the result.
fn given(events: &[OrderEvent], command: OrderCommand) -> Result<Vec<OrderEvent>, DomainError> {
    Order::from_events(events).handle(command)
}

fn invalid_state(result: Result<Vec<OrderEvent>, DomainError>) {
    assert!(
        matches!(result, Err(DomainError::InvalidState(_))),
        "expected INVALID_STATE, got {result:?}"
    );
}

fn validation_on(result: Result<Vec<OrderEvent>, DomainError>, expected_field: &str) {
    match result {
        Err(DomainError::Validation { field, .. }) => assert_eq!(field, expected_field),
        other => panic!("expected validation error on {expected_field}, got {other:?}"),
    }
}

#[test]
fn create_computes_the_total_from_the_lines() {
    let events = given(&[], OrderCommand::Create(create_order())).unwrap();
    let [OrderEvent::OrderCreated(created)] = events.as_slice() else {
        panic!("{events:?}")
    };
    assert_eq!(created.order_total, Money::from_cents(2 * 1234 + 300));
    assert_eq!(
        Order::from_events(&events).status,
        Some(OrderStatus::ApprovalPending)
    );
}

#[test]
fn create_refuses_bad_input_naming_the_field() {
    let mut no_lines = create_order();
    no_lines.line_items.clear();
    validation_on(given(&[], OrderCommand::Create(no_lines)), "lineItems");

    let mut zero = create_order();
    zero.line_items[1].quantity = 0;
    validation_on(
        given(&[], OrderCommand::Create(zero)),
        "lineItems[1].quantity",
    );

    let mut blank_consumer = create_order();
    blank_consumer.consumer_id = " ".into();
    validation_on(
        given(&[], OrderCommand::Create(blank_consumer)),
        "consumerId",
    );

    let mut twice = create_order();
    twice.line_items[1].menu_item_id = "m-1".into();
    validation_on(
        given(&[], OrderCommand::Create(twice)),
        "lineItems[1].menuItemId",
    );

    let mut no_city = create_order();
    no_city.delivery_address.city.clear();
    validation_on(
        given(&[], OrderCommand::Create(no_city)),
        "deliveryAddress.city",
    );

    let mut long_id = create_order();
    long_id.consumer_id = "c".repeat(MAX_ID_BYTES + 1);
    validation_on(given(&[], OrderCommand::Create(long_id)), "consumerId");

    for bad in [
        "r#1",
        "r/1",
        "r 1",
        "r%001",
        "r\u{0}1",
        "r\u{202E}1",
        "r\u{200F}1",
    ] {
        let mut odd_id = create_order();
        odd_id.restaurant_id = bad.into();
        validation_on(given(&[], OrderCommand::Create(odd_id)), "restaurantId");
        let mut odd_menu_id = create_order();
        odd_menu_id.line_items[0].menu_item_id = bad.into();
        validation_on(
            given(&[], OrderCommand::Create(odd_menu_id)),
            "lineItems[0].menuItemId",
        );
    }
    for bad in ["Ajanta\n", "Aja\u{0}nta", "\u{202E}atnajA", "Aja\u{7f}"] {
        let mut odd_name = create_order();
        odd_name.restaurant_name = bad.into();
        validation_on(given(&[], OrderCommand::Create(odd_name)), "restaurantName");
    }
    let mut right_to_left = create_order();
    right_to_left.restaurant_name = "\u{5e9}\u{5dc}\u{5d5}\u{5dd} \u{200F}Ajanta".into();
    assert!(
        given(&[], OrderCommand::Create(right_to_left)).is_ok(),
        "RTL text is a name"
    );

    let mut huge = create_order();
    huge.line_items[0].price = Money::from_cents(i64::MAX / 2);
    validation_on(given(&[], OrderCommand::Create(huge)), "lineItems");
}

#[test]
fn create_enforces_the_documented_limits_naming_the_field() {
    let at_limits = {
        let mut command = create_order();
        command.consumer_id = "c".repeat(MAX_ID_CHARS);
        command.restaurant_name = "é".repeat(MAX_NAME_CHARS);
        command.line_items = (0..MAX_LINE_ITEMS)
            .map(|i| {
                fixtures::line(
                    &format!("m.{i}:x_y-Z"),
                    &"名".repeat(MAX_NAME_CHARS),
                    1,
                    100,
                )
            })
            .collect();
        command
    };
    assert!(given(&[], OrderCommand::Create(at_limits.clone())).is_ok());

    let mut long_id = at_limits.clone();
    long_id.consumer_id.push('c');
    validation_on(given(&[], OrderCommand::Create(long_id)), "consumerId");
    for bad in ["c 1", "c/1", "c#1", "ç", "c\n", "c%20"] {
        let mut command = at_limits.clone();
        command.restaurant_id = bad.into();
        validation_on(given(&[], OrderCommand::Create(command)), "restaurantId");
    }
    let mut menu_item = at_limits.clone();
    menu_item.line_items[3].menu_item_id = "m 3".into();
    validation_on(
        given(&[], OrderCommand::Create(menu_item)),
        "lineItems[3].menuItemId",
    );
    let mut long_name = at_limits.clone();
    long_name.restaurant_name.push('é');
    validation_on(
        given(&[], OrderCommand::Create(long_name)),
        "restaurantName",
    );
    let mut long_line = at_limits.clone();
    long_line.line_items[7].name.push('x');
    validation_on(
        given(&[], OrderCommand::Create(long_line)),
        "lineItems[7].name",
    );
    let mut control = at_limits.clone();
    control.line_items[0].name = "Naan\u{0}".into();
    validation_on(
        given(&[], OrderCommand::Create(control)),
        "lineItems[0].name",
    );
    let mut too_many = at_limits.clone();
    too_many
        .line_items
        .push(fixtures::line("m-extra", "Naan", 1, 100));
    validation_on(given(&[], OrderCommand::Create(too_many)), "lineItems");
    let mut long_street = at_limits;
    long_street.delivery_address.street2 = Some("s".repeat(MAX_NAME_CHARS + 1));
    validation_on(
        given(&[], OrderCommand::Create(long_street)),
        "deliveryAddress.street2",
    );
}

#[test]
fn create_refuses_text_sqs_cannot_carry_naming_the_field() {
    // U+FFFE and U+FFFF are valid in a Rust string and in JSON, but not in an SQS message body
    // (XML 1.0 `Char`): a dead letter carrying the event whole could never be sent.
    for bad in ['\u{FFFE}', '\u{FFFF}'] {
        let mut name = create_order();
        name.restaurant_name = format!("Ajanta{bad}");
        validation_on(given(&[], OrderCommand::Create(name)), "restaurantName");
        let mut line = create_order();
        line.line_items[0].name = format!("{bad}Naan");
        validation_on(given(&[], OrderCommand::Create(line)), "lineItems[0].name");
        let mut street = create_order();
        street.delivery_address.street2 = Some(format!("Flat 2{bad}"));
        validation_on(
            given(&[], OrderCommand::Create(street)),
            "deliveryAddress.street2",
        );
    }
    // Everything else SQS accepts stays accepted: the edges of each allowed range.
    let mut edges = create_order();
    edges.restaurant_name = "A\u{D7FF}\u{E000}\u{FFFD}\u{10000}\u{10FFFF}".into();
    assert!(given(&[], OrderCommand::Create(edges)).is_ok());
}

#[test]
fn only_xml_chars_are_message_chars() {
    for c in [
        '\t',
        '\n',
        '\r',
        ' ',
        '\u{7F}',
        '\u{D7FF}',
        '\u{E000}',
        '\u{FFFD}',
        '\u{10000}',
        '\u{10FFFF}',
    ] {
        assert!(is_message_char(c), "{c:?}");
    }
    for c in ['\u{0}', '\u{8}', '\u{B}', '\u{1F}', '\u{FFFE}', '\u{FFFF}'] {
        assert!(!is_message_char(c), "{c:?}");
    }
}

#[test]
fn create_twice_is_refused() {
    invalid_state(given(&[created()], OrderCommand::Create(create_order())));
}

#[test]
fn commands_on_a_missing_order_are_not_found() {
    for command in [
        OrderCommand::Approve,
        OrderCommand::Reject,
        OrderCommand::Cancel {
            delivery_picked_up: false,
        },
    ] {
        assert!(matches!(given(&[], command), Err(DomainError::NotFound(_))));
    }
}

#[test]
fn pending_order_can_be_approved_or_rejected() {
    assert_eq!(
        given(&[created()], OrderCommand::Approve).unwrap(),
        vec![OrderEvent::OrderApproved {}]
    );
    assert_eq!(
        given(&[created()], OrderCommand::Reject).unwrap(),
        vec![OrderEvent::OrderRejected {}]
    );
}

#[test]
fn approve_and_reject_need_a_pending_order() {
    let approved = [created(), OrderEvent::OrderApproved {}];
    let rejected = [created(), OrderEvent::OrderRejected {}];
    let cancelled = [created(), OrderEvent::OrderCancelled {}];
    for history in [&approved[..], &rejected[..], &cancelled[..]] {
        invalid_state(given(history, OrderCommand::Approve));
        invalid_state(given(history, OrderCommand::Reject));
    }
}

#[test]
fn pending_or_approved_order_can_be_cancelled_before_pickup() {
    let cancel = || OrderCommand::Cancel {
        delivery_picked_up: false,
    };
    assert_eq!(
        given(&[created()], cancel()).unwrap(),
        vec![OrderEvent::OrderCancelled {}]
    );
    let approved = [created(), OrderEvent::OrderApproved {}];
    assert_eq!(
        given(&approved, cancel()).unwrap(),
        vec![OrderEvent::OrderCancelled {}]
    );
    let events = [
        created(),
        OrderEvent::OrderApproved {},
        OrderEvent::OrderCancelled {},
    ];
    assert_eq!(
        Order::from_events(&events).status,
        Some(OrderStatus::Cancelled)
    );
}

#[test]
fn cancel_is_refused_after_pickup_rejection_or_cancellation() {
    let approved = [created(), OrderEvent::OrderApproved {}];
    invalid_state(given(
        &approved,
        OrderCommand::Cancel {
            delivery_picked_up: true,
        },
    ));
    invalid_state(given(
        &[created(), OrderEvent::OrderRejected {}],
        OrderCommand::Cancel {
            delivery_picked_up: false,
        },
    ));
    invalid_state(given(
        &[created(), OrderEvent::OrderCancelled {}],
        OrderCommand::Cancel {
            delivery_picked_up: false,
        },
    ));
}

#[test]
fn revise_changes_quantities_removes_zero_lines_and_recomputes_the_total() {
    let quantities = BTreeMap::from([("m-1".to_string(), 3), ("m-2".to_string(), 0)]);
    let events = given(
        &[created()],
        OrderCommand::Revise {
            line_item_quantities: quantities,
        },
    )
    .unwrap();
    assert_eq!(
        events,
        vec![OrderEvent::OrderRevised {
            line_items: vec![line("m-1", "Chicken Vindaloo", 3, 1234)],
            order_total: Money::from_cents(3 * 1234),
        }]
    );
    let order = Order::from_events(&[created(), events[0].clone()]);
    assert_eq!(order.status, Some(OrderStatus::ApprovalPending));
    assert_eq!(order.order_total, Money::from_cents(3702));
}

#[test]
fn revise_keeps_an_approved_order_approved() {
    let quantities = BTreeMap::from([("m-2".to_string(), 4)]);
    let history = [created(), OrderEvent::OrderApproved {}];
    let events = given(
        &history,
        OrderCommand::Revise {
            line_item_quantities: quantities,
        },
    )
    .unwrap();
    let order = Order::from_events(history.iter().chain(&events));
    assert_eq!(order.status, Some(OrderStatus::Approved));
    assert_eq!(order.order_total, Money::from_cents(2 * 1234 + 4 * 300));
}

#[test]
fn revise_refuses_removing_every_line_unknown_items_and_closed_orders() {
    let all_zero = BTreeMap::from([("m-1".to_string(), 0), ("m-2".to_string(), 0)]);
    validation_on(
        given(
            &[created()],
            OrderCommand::Revise {
                line_item_quantities: all_zero,
            },
        ),
        "lineItemQuantities",
    );
    let unknown = BTreeMap::from([("m-9".to_string(), 1)]);
    validation_on(
        given(
            &[created()],
            OrderCommand::Revise {
                line_item_quantities: unknown,
            },
        ),
        "lineItemQuantities.m-9",
    );
    validation_on(
        given(
            &[created()],
            OrderCommand::Revise {
                line_item_quantities: BTreeMap::new(),
            },
        ),
        "lineItemQuantities",
    );
    let one = || BTreeMap::from([("m-1".to_string(), 1)]);
    invalid_state(given(
        &[created(), OrderEvent::OrderRejected {}],
        OrderCommand::Revise {
            line_item_quantities: one(),
        },
    ));
    invalid_state(given(
        &[created(), OrderEvent::OrderCancelled {}],
        OrderCommand::Revise {
            line_item_quantities: one(),
        },
    ));
}
