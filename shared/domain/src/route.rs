//! The HTTP routes of DESIGN §3, declared once: for each [`Action`] (one per route) its route
//! key, what it runs ([`Target`]), who may call it, the words of a refusal, its OpenAPI
//! operation and its sample request in `events/`.
//!
//! Everything else is derived from [`Action::route`]: the handlers' dispatch (`ftgo-aws`), the
//! policy ([`crate::access::Caller::may`]), the access and hostile-input tests' route lists,
//! the `ftgo order|delivery <verb>` subcommands, the paths of `openapi.yaml` and the docs'
//! route table. `template.yaml`'s `HttpApi` events are held equal to these keys by a test.
//! No HTTP and no AWS here: a route key is API Gateway's `routeKey` text.

use std::collections::BTreeMap;

use crate::delivery::DeliveryCommand;
use crate::order::OrderCommand;
use crate::scope::Scope;

/// What a request asks to do: one per route of DESIGN §3 (see [`Action::route`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, strum::VariantArray)]
pub enum Action {
    /// `POST /orders`.
    CreateOrder,
    /// `POST /orders/{orderId}/approve`.
    ApproveOrder,
    /// `POST /orders/{orderId}/reject`.
    RejectOrder,
    /// `POST /orders/{orderId}/cancel`.
    CancelOrder,
    /// `POST /orders/{orderId}/revise`.
    ReviseOrder,
    /// `POST /deliveries/{orderId}/pickup`.
    PickUpDelivery,
    /// `POST /deliveries/{orderId}/deliver`.
    DeliverDelivery,
    /// `GET /orders/{orderId}`.
    ReadOrder,
    /// `GET /consumers/{consumerId}/orders`.
    ReadHistory,
}

/// What a route runs.
#[allow(
    clippy::large_enum_variant,
    reason = "built on demand per request and matched by value; boxing would forbid matching \
              on the command's variant"
)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Place an order from the body (`CreateOrder`).
    CreateOrder,
    /// A command on the order `{orderId}`. A `Revise` takes its quantities from the body
    /// (`ReviseOrder`); fields a cross-aggregate reading completes are set by
    /// [`crate::guard`].
    Order(OrderCommand),
    /// A command on the delivery of the order `{orderId}`.
    Delivery(DeliveryCommand),
    /// Read one order's view.
    FindOrder,
    /// Read a consumer's order history.
    FindOrderHistory,
}

/// One route: the single declaration every other list of routes is derived from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// API Gateway's route key, `METHOD /path/{param}` (also `template.yaml`'s event).
    pub key: &'static str,
    /// What it runs.
    pub target: Target,
    /// Whether a consumer may do it to what it owns (its own order, its own history, an
    /// order for itself).
    pub owner: bool,
    /// The roles that may do it to anything, whoever owns it ([`Scope::Admin`] may do
    /// everything and need not be listed).
    pub roles: &'static [Scope],
    /// What a refused caller may not do, in the words of a 403 (`c-1 may not …`), naming the
    /// scope that would allow it.
    pub refusal: &'static str,
    /// The OpenAPI `operationId`.
    pub operation_id: &'static str,
    /// One line saying what it does (OpenAPI summary, CLI help, the docs' table).
    pub summary: &'static str,
    /// Its sample request, relative to `events/` (an API Gateway v2 event with this key).
    pub sample: &'static str,
}

const RESTAURANT: &[Scope] = &[Scope::Restaurant];
const COURIER: &[Scope] = &[Scope::Courier];
const READERS: &[Scope] = &[Scope::Restaurant, Scope::Courier];

impl Action {
    /// Every action, one per route.
    pub const ALL: &'static [Action] = <Self as strum::VariantArray>::VARIANTS;

    /// This action's route: the declaration of DESIGN §3's row.
    pub fn route(self) -> Route {
        match self {
            Action::CreateOrder => Route {
                key: "POST /orders",
                target: Target::CreateOrder,
                owner: true,
                roles: &[],
                refusal: "create orders for another consumer",
                operation_id: "createOrder",
                summary: "Create an order (a consumer for itself; admins for anyone).",
                sample: "order-commands/create-order.json",
            },
            Action::ApproveOrder => Route {
                key: "POST /orders/{orderId}/approve",
                target: Target::Order(OrderCommand::Approve),
                owner: false,
                roles: RESTAURANT,
                refusal: "approve orders (needs scope ftgo/restaurant)",
                operation_id: "approveOrder",
                summary: "The restaurant accepts the order (`APPROVAL_PENDING` → `APPROVED`).",
                sample: "order-commands/approve-order.json",
            },
            Action::RejectOrder => Route {
                key: "POST /orders/{orderId}/reject",
                target: Target::Order(OrderCommand::Reject),
                owner: false,
                roles: RESTAURANT,
                refusal: "reject orders (needs scope ftgo/restaurant)",
                operation_id: "rejectOrder",
                summary: "The restaurant refuses the order (`APPROVAL_PENDING` → `REJECTED`).",
                sample: "order-commands/reject-order.json",
            },
            Action::CancelOrder => Route {
                key: "POST /orders/{orderId}/cancel",
                target: Target::Order(OrderCommand::Cancel {
                    delivery_picked_up: false,
                }),
                owner: true,
                roles: &[],
                refusal: "cancel this order",
                operation_id: "cancelOrder",
                summary: "Cancel an order that is not yet picked up.",
                sample: "order-commands/cancel-order.json",
            },
            Action::ReviseOrder => Route {
                key: "POST /orders/{orderId}/revise",
                target: Target::Order(OrderCommand::Revise {
                    line_item_quantities: BTreeMap::new(),
                }),
                owner: true,
                roles: &[],
                refusal: "revise this order",
                operation_id: "reviseOrder",
                summary: "Change line-item quantities (0 removes a line; at least one line stays).",
                sample: "order-commands/revise-order.json",
            },
            Action::PickUpDelivery => Route {
                key: "POST /deliveries/{orderId}/pickup",
                target: Target::Delivery(DeliveryCommand::PickUp { order_status: None }),
                owner: false,
                roles: COURIER,
                refusal: "pick up deliveries (needs scope ftgo/courier)",
                operation_id: "pickUpDelivery",
                summary: "A courier picks up an approved order.",
                sample: "delivery-commands/pickup.json",
            },
            Action::DeliverDelivery => Route {
                key: "POST /deliveries/{orderId}/deliver",
                target: Target::Delivery(DeliveryCommand::Deliver),
                owner: false,
                roles: COURIER,
                refusal: "deliver deliveries (needs scope ftgo/courier)",
                operation_id: "deliverDelivery",
                summary: "The courier hands the order over (`PICKED_UP` → `DELIVERED`).",
                sample: "delivery-commands/deliver.json",
            },
            Action::ReadOrder => Route {
                key: "GET /orders/{orderId}",
                target: Target::FindOrder,
                owner: true,
                roles: READERS,
                refusal: "read this order",
                operation_id: "findOrder",
                summary: "One order as the view holds it.",
                sample: "order-history-query/find-order.json",
            },
            Action::ReadHistory => Route {
                key: "GET /consumers/{consumerId}/orders",
                target: Target::FindOrderHistory,
                owner: true,
                roles: &[],
                refusal: "read another consumer's order history",
                operation_id: "findOrderHistory",
                summary: "A consumer's orders, newest first, a page at a time.",
                sample: "order-history-query/find-order-history.json",
            },
        }
    }

    /// The action whose route key is `key` (API Gateway's `routeKey`).
    pub fn of_route_key(key: &str) -> Option<Action> {
        Action::ALL
            .iter()
            .copied()
            .find(|action| action.route().key == key)
    }

    /// What a refused caller may not do, in the words of a 403 (`c-1 may not …`), naming the
    /// scope that would allow it.
    pub fn refusal(self) -> &'static str {
        self.route().refusal
    }

    /// Whether the action targets an existing order (whose existence a refusal must not
    /// reveal), rather than a consumer (`CreateOrder`, `ReadHistory`).
    pub fn targets_an_order(self) -> bool {
        !matches!(
            self.route().target,
            Target::CreateOrder | Target::FindOrderHistory
        )
    }

    /// Whether a consumer may do this to what it owns.
    pub fn allowed_to_owner(self) -> bool {
        self.route().owner
    }

    /// Whether `scope` allows this on anything, whoever owns it.
    pub fn allowed_by(self, scope: Scope) -> bool {
        scope == Scope::Admin || self.route().roles.contains(&scope)
    }
}

impl Route {
    /// The HTTP method (`GET`, `POST`).
    pub fn method(&self) -> &'static str {
        self.key.split_once(' ').map_or("", |(method, _)| method)
    }

    /// The path template (`/orders/{orderId}/approve`).
    pub fn path(&self) -> &'static str {
        self.key.split_once(' ').map_or(self.key, |(_, path)| path)
    }

    /// The path parameter the route names (`orderId`, `consumerId`), if any.
    pub fn path_parameter(&self) -> Option<&'static str> {
        let path = self.path();
        let start = path.find('{')?;
        let end = path[start..].find('}')?;
        path.get(start + 1..start + end)
    }

    /// The `ftgo` subcommand of a command on one order or delivery without a body,
    /// `(noun, verb)` from `POST /<collection>/{id}/<verb>` (`("order", "approve")`); `None` for
    /// the routes the CLI serves with commands of their own (create, revise, get, history).
    pub fn cli_verb(&self) -> Option<(&'static str, &'static str)> {
        let body_free = match &self.target {
            Target::Order(OrderCommand::Revise { .. } | OrderCommand::Create(_)) => false,
            Target::Order(_) | Target::Delivery(_) => true,
            Target::CreateOrder | Target::FindOrder | Target::FindOrderHistory => false,
        };
        if !body_free || self.method() != "POST" {
            return None;
        }
        let mut segments = self.path().trim_start_matches('/').split('/');
        let noun = match segments.next()? {
            "orders" => "order",
            "deliveries" => "delivery",
            _ => return None,
        };
        let _id = segments.next()?;
        let verb = segments.next()?;
        segments.next().is_none().then_some((noun, verb))
    }
}

/// Every route, in [`Action`] order.
pub fn all() -> impl Iterator<Item = Route> {
    Action::ALL.iter().map(|action| action.route())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::access::{Caller, Verdict};

    use Action::*;
    use Verdict::*;

    #[test]
    fn keys_operations_and_samples_are_unique() {
        for field in [
            |r: &Route| r.key,
            |r: &Route| r.operation_id,
            |r: &Route| r.sample,
        ] {
            let values: BTreeSet<&str> = all().map(|r| field(&r)).collect();
            assert_eq!(values.len(), Action::ALL.len(), "{values:?}");
        }
        for action in Action::ALL {
            assert_eq!(Action::of_route_key(action.route().key), Some(*action));
        }
        assert_eq!(Action::of_route_key("GET /nowhere"), None);
    }

    #[test]
    fn keys_read_as_method_and_path() {
        let approve = ApproveOrder.route();
        assert_eq!(approve.method(), "POST");
        assert_eq!(approve.path(), "/orders/{orderId}/approve");
        assert_eq!(approve.path_parameter(), Some("orderId"));
        assert_eq!(approve.cli_verb(), Some(("order", "approve")));
        assert_eq!(
            PickUpDelivery.route().cli_verb(),
            Some(("delivery", "pickup"))
        );
        assert_eq!(CreateOrder.route().path_parameter(), None);
        assert_eq!(ReviseOrder.route().cli_verb(), None, "revise takes a body");
        assert_eq!(ReadOrder.route().cli_verb(), None);
        assert_eq!(
            ReadHistory.route().path_parameter(),
            Some("consumerId"),
            "{:?}",
            ReadHistory.route()
        );
    }

    fn caller(scope: &str) -> Caller {
        Caller::new("c-1", [scope]).expect("caller")
    }

    /// DESIGN §3's table of rights, every role × route, written out as the contract says it
    /// (not derived from the declarations above, which it checks): on the caller's own
    /// target, on another consumer's, and on none.
    #[test]
    fn every_role_on_every_route() {
        // (scope claim, action, verdict on own, on another's, on a missing order)
        #[rustfmt::skip]
        let table: &[(&str, Action, Verdict, Verdict, Verdict)] = &[
            ("", CreateOrder,     Allowed,   Forbidden, Forbidden),
            ("", ApproveOrder,    Forbidden, Hidden,    Hidden),
            ("", RejectOrder,     Forbidden, Hidden,    Hidden),
            ("", CancelOrder,     Allowed,   Hidden,    Hidden),
            ("", ReviseOrder,     Allowed,   Hidden,    Hidden),
            ("", PickUpDelivery,  Forbidden, Hidden,    Hidden),
            ("", DeliverDelivery, Forbidden, Hidden,    Hidden),
            ("", ReadOrder,       Allowed,   Hidden,    Hidden),
            ("", ReadHistory,     Allowed,   Forbidden, Forbidden),

            ("ftgo/restaurant", CreateOrder,     Allowed,   Forbidden, Forbidden),
            ("ftgo/restaurant", ApproveOrder,    Allowed,   Allowed,   Allowed),
            ("ftgo/restaurant", RejectOrder,     Allowed,   Allowed,   Allowed),
            ("ftgo/restaurant", CancelOrder,     Allowed,   Forbidden, Hidden),
            ("ftgo/restaurant", ReviseOrder,     Allowed,   Forbidden, Hidden),
            ("ftgo/restaurant", PickUpDelivery,  Forbidden, Forbidden, Hidden),
            ("ftgo/restaurant", DeliverDelivery, Forbidden, Forbidden, Hidden),
            ("ftgo/restaurant", ReadOrder,       Allowed,   Allowed,   Allowed),
            ("ftgo/restaurant", ReadHistory,     Allowed,   Forbidden, Forbidden),

            ("ftgo/courier", CreateOrder,     Allowed,   Forbidden, Forbidden),
            ("ftgo/courier", ApproveOrder,    Forbidden, Forbidden, Hidden),
            ("ftgo/courier", RejectOrder,     Forbidden, Forbidden, Hidden),
            ("ftgo/courier", CancelOrder,     Allowed,   Forbidden, Hidden),
            ("ftgo/courier", ReviseOrder,     Allowed,   Forbidden, Hidden),
            ("ftgo/courier", PickUpDelivery,  Allowed,   Allowed,   Allowed),
            ("ftgo/courier", DeliverDelivery, Allowed,   Allowed,   Allowed),
            ("ftgo/courier", ReadOrder,       Allowed,   Allowed,   Allowed),
            ("ftgo/courier", ReadHistory,     Allowed,   Forbidden, Forbidden),
        ];
        assert_eq!(table.len(), 3 * Action::ALL.len(), "every role × route");
        for &(scope, action, own, others, missing) in table {
            let who = caller(scope);
            assert_eq!(
                who.may(action, Some("c-1")),
                own,
                "{scope:?} {action:?} own"
            );
            let other = who.may(action, Some("c-2"));
            assert_eq!(other, others, "{scope:?} {action:?} another's");
            let none = who.may(action, None);
            assert_eq!(none, missing, "{scope:?} {action:?} missing");
        }
        // An admin may do everything, to anything.
        let admin = caller("ftgo/admin");
        for &action in Action::ALL {
            for owner in [Some("c-1"), Some("c-2"), None] {
                assert_eq!(admin.may(action, owner), Allowed, "admin {action:?}");
            }
        }
    }

    #[test]
    fn a_refusal_names_the_scope_that_would_allow_it() {
        // Of a route no consumer may take, even on what it owns.
        for &action in Action::ALL {
            let route = action.route();
            for scope in route.roles.iter().filter(|_| !route.owner) {
                assert!(
                    route.refusal.contains(scope.as_str()),
                    "{action:?}: {}",
                    route.refusal
                );
            }
        }
    }
}
