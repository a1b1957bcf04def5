//! Stored events: the envelope every event travels in, schema versions and upcasters.
//!
//! An event is stored (in the event table and in the archive) as a [`StoredEvent`]: the stream
//! it belongs to, its version in that stream, a globally unique time-ordered `eventId`, its
//! `eventType` and `schemaVersion`, and its `payload` as JSON. Reading an event back runs the
//! payload through [`upcast`] first, so events written by older code keep loading after the
//! schema moves on.

use serde::de::value::{BorrowedStrDeserializer, MapAccessDeserializer};
use serde::de::{DeserializeOwned, DeserializeSeed, MapAccess};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

use crate::aggregate_type::AggregateType;
use crate::error::DomainError;

/// An event of one aggregate type, as the domain sees it.
///
/// Its `eventType` name is its serde tag (`#[serde(tag = "eventType", content = "payload")]`,
/// the variant's name): the one place it is written. [`StoredEvent::record`] reads it from
/// there, and [`variant_names`] lists every variant's.
pub trait DomainEvent:
    Serialize + DeserializeOwned + Clone + Send + Sync + std::fmt::Debug
{
}

/// The `eventType` name of every variant of `E`, as its serde derive knows them.
///
/// Serde's derive names every variant it accepts when it refuses an unknown one; this reads
/// that list, so that tests can enumerate the variants without a hand-kept copy.
pub fn variant_names<E: DomainEvent>() -> Vec<String> {
    let probe = serde_json::json!({ "eventType": "\u{0}", "payload": {} });
    let message = match serde_json::from_value::<E>(probe) {
        Ok(_) => return Vec::new(),
        Err(error) => error.to_string(),
    };
    // "unknown variant ``, expected `A`" / "… expected `A` or `B`" / "… expected one of `A`, `B`, …"
    message
        .split_once("expected ")
        .map(|(_, list)| {
            list.split('`')
                .skip(1)
                .step_by(2)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// Correlation and causation ids carried by every event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    /// The id of the request that caused the command (API Gateway's request id).
    pub correlation_id: String,
    /// The id of the message or event that caused this one, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causation_id: Option<String>,
    /// The `Idempotency-Key` the command ran under, when it had one: a retry of the same key
    /// finds its first write by it (DESIGN §3 "Retries are safe").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency: Option<KeyStamp>,
}

/// The `Idempotency-Key` of the command that wrote an event, as digests (the key itself never
/// reaches the table): which key of which caller on which route, and what it asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyStamp {
    /// SHA-256 (hex) of caller, method, path and key.
    pub key: String,
    /// SHA-256 (hex) of the request body.
    pub request: String,
}

/// One event as stored in the event table and the archive (camelCase attribute names).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredEvent {
    /// `<AggregateType>#<aggregateId>`.
    pub stream_id: String,
    /// 1, 2, 3 … within the stream.
    pub version: u64,
    /// Globally unique, time-ordered id.
    pub event_id: String,
    /// The event's name, e.g. `OrderApproved`.
    pub event_type: String,
    /// The payload's schema version.
    pub schema_version: u32,
    /// `Order` or `Delivery`.
    pub aggregate_type: String,
    /// The aggregate's id (for a delivery, its order's id).
    pub aggregate_id: String,
    /// When the event happened.
    #[serde(with = "time::serde::rfc3339")]
    pub occurred_at: OffsetDateTime,
    /// The event's own fields.
    pub payload: Value,
    /// Correlation and causation ids.
    #[serde(default)]
    pub metadata: Metadata,
}

/// The identity and time a new event is given when it is recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventStamp {
    /// Globally unique, time-ordered id.
    pub event_id: String,
    /// When the event happened.
    pub occurred_at: OffsetDateTime,
}

impl StoredEvent {
    /// Wraps a domain event of aggregate `aggregate_type`/`aggregate_id` at `version`.
    pub fn record<E: DomainEvent>(
        aggregate_type: AggregateType,
        aggregate_id: &str,
        version: u64,
        event: &E,
        stamp: EventStamp,
        metadata: Metadata,
    ) -> Result<Self, DomainError> {
        let tagged = serde_json::to_value(event).map_err(|e| DomainError::Decode(e.to_string()))?;
        let (event_type, payload) = match tagged {
            Value::Object(mut map) => match map.remove("eventType") {
                Some(Value::String(event_type)) => (
                    event_type,
                    map.remove("payload")
                        .unwrap_or(Value::Object(Default::default())),
                ),
                _ => {
                    return Err(DomainError::Decode("event has no eventType tag".to_owned()));
                }
            },
            other => {
                return Err(DomainError::Decode(format!(
                    "event is not an object: {other}"
                )));
            }
        };
        Ok(Self {
            stream_id: aggregate_type.stream_id(aggregate_id),
            version,
            event_id: stamp.event_id,
            schema_version: current_schema_version(&event_type),
            event_type,
            aggregate_type: aggregate_type.as_str().to_owned(),
            aggregate_id: aggregate_id.to_owned(),
            occurred_at: stamp.occurred_at,
            payload,
            metadata,
        })
    }

    /// The aggregate type named by the envelope.
    pub fn aggregate_kind(&self) -> Result<AggregateType, DomainError> {
        AggregateType::parse(&self.aggregate_type).ok_or_else(|| {
            DomainError::Decode(format!("unknown aggregateType {:?}", self.aggregate_type))
        })
    }

    /// Reads the payload as a domain event, upcasting older schema versions first.
    pub fn decode<E: DomainEvent>(&self) -> Result<E, DomainError> {
        // A payload of the current schema is read where it is (no copy); an older one is
        // upcast from a copy first.
        let upcast_payload;
        let payload = if self.schema_version == current_schema_version(&self.event_type) {
            &self.payload
        } else {
            upcast_payload = upcast(&self.event_type, self.schema_version, self.payload.clone())?;
            &upcast_payload
        };
        E::deserialize(MapAccessDeserializer::new(Tagged {
            event_type: Some(&self.event_type),
            payload: Some(payload),
        }))
        .map_err(|e| {
            DomainError::Decode(format!(
                "{} v{} (version {} of {}): {e}",
                self.event_type, self.schema_version, self.version, self.stream_id
            ))
        })
    }
}

/// An event as its serde derive reads it (`{"eventType": …, "payload": …}`), borrowed from a
/// stored event's fields instead of built as a new JSON object.
struct Tagged<'a> {
    event_type: Option<&'a str>,
    payload: Option<&'a Value>,
}

impl<'de> MapAccess<'de> for Tagged<'de> {
    type Error = serde_json::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Self::Error> {
        let key = if self.event_type.is_some() {
            "eventType"
        } else if self.payload.is_some() {
            "payload"
        } else {
            return Ok(None);
        };
        seed.deserialize(BorrowedStrDeserializer::new(key))
            .map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, Self::Error> {
        if let Some(event_type) = self.event_type.take() {
            seed.deserialize(BorrowedStrDeserializer::new(event_type))
        } else if let Some(payload) = self.payload.take() {
            seed.deserialize(payload)
        } else {
            Err(serde::de::Error::custom("no value left"))
        }
    }
}

/// The schema version new events of `event_type` are written with.
pub fn current_schema_version(event_type: &str) -> u32 {
    match event_type {
        // v2 added `deliveryAddress`.
        "OrderCreated" => 2,
        _ => 1,
    }
}

/// Rewrites a payload of `event_type` written at `schema_version` into the current schema.
///
/// Upcasters are chained one version at a time. A version newer than this code knows is an
/// error, never a guess.
pub fn upcast(
    event_type: &str,
    schema_version: u32,
    mut payload: Value,
) -> Result<Value, DomainError> {
    let current = current_schema_version(event_type);
    if schema_version == 0 || schema_version > current {
        return Err(DomainError::Decode(format!(
            "{event_type} schemaVersion {schema_version} is not known (this code reads up to {current})"
        )));
    }
    let mut version = schema_version;
    while version < current {
        payload = match (event_type, version) {
            ("OrderCreated", 1) => order_created_v1_to_v2(payload)?,
            _ => {
                return Err(DomainError::Decode(format!(
                    "no upcaster for {event_type} v{version}"
                )));
            }
        };
        version += 1;
    }
    Ok(payload)
}

/// `OrderCreated` v1 had no delivery address: v2 reads it as `null` (unknown).
fn order_created_v1_to_v2(payload: Value) -> Result<Value, DomainError> {
    match payload {
        Value::Object(mut map) => {
            map.entry("deliveryAddress").or_insert(Value::Null);
            Ok(Value::Object(map))
        }
        other => Err(DomainError::Decode(format!(
            "OrderCreated v1 payload is not an object: {other}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::DeliveryEvent;
    use crate::money::Money;
    use crate::order::{LineItem, OrderCreated, OrderEvent};

    /// One sample of every event type: those with fields written here, those without made from
    /// their serde tag (so a new status event needs no edit here). A new variant with fields
    /// fails to decode from its tag alone, naming itself.
    fn samples() -> Vec<(AggregateType, StoredEvent)> {
        let line = LineItem {
            menu_item_id: "m-1".into(),
            name: "Chicken Vindaloo".into(),
            quantity: 2,
            price: Money::from_cents(1234),
        };
        let order = [
            OrderEvent::OrderCreated(OrderCreated {
                consumer_id: "c-1".into(),
                restaurant_id: "r-1".into(),
                restaurant_name: "Ajanta".into(),
                line_items: vec![line.clone()],
                delivery_address: None,
                order_total: Money::from_cents(2468),
            }),
            OrderEvent::OrderRevised {
                line_items: vec![line],
                order_total: Money::from_cents(2468),
            },
        ];
        let order = with_tag_only_variants(order.to_vec());
        let delivery = with_tag_only_variants(Vec::<DeliveryEvent>::new());
        let stamp = || EventStamp {
            event_id: "e".into(),
            occurred_at: OffsetDateTime::UNIX_EPOCH,
        };
        let record = |kind, version, event: &dyn Fn(u64) -> StoredEvent| (kind, event(version));
        let mut all = Vec::new();
        for (version, event) in (1..).zip(&order) {
            all.push(record(AggregateType::Order, version, &|v| {
                StoredEvent::record(
                    AggregateType::Order,
                    "o-1",
                    v,
                    event,
                    stamp(),
                    Metadata::default(),
                )
                .unwrap()
            }));
        }
        for (version, event) in (1..).zip(&delivery) {
            all.push(record(AggregateType::Delivery, version, &|v| {
                StoredEvent::record(
                    AggregateType::Delivery,
                    "o-1",
                    v,
                    event,
                    stamp(),
                    Metadata::default(),
                )
                .unwrap()
            }));
        }
        all
    }

    /// `events`, then every other variant of `E`, each made from its tag and an empty payload.
    fn with_tag_only_variants<E: DomainEvent>(mut events: Vec<E>) -> Vec<E> {
        let tag = |event: &E| serde_json::to_value(event).unwrap()["eventType"].clone();
        let written: Vec<serde_json::Value> = events.iter().map(tag).collect();
        for name in variant_names::<E>() {
            if !written.contains(&serde_json::Value::from(name.as_str())) {
                let probe = serde_json::json!({ "eventType": name, "payload": {} });
                let event = serde_json::from_value(probe)
                    .unwrap_or_else(|e| panic!("{name} has fields: write its sample ({e})"));
                events.push(event);
            }
        }
        events
    }

    #[test]
    fn every_event_type_has_a_sample() {
        let names = |kind| -> std::collections::BTreeSet<String> {
            samples()
                .into_iter()
                .filter(|(k, _)| *k == kind)
                .map(|(_, e)| e.event_type)
                .collect()
        };
        let declared =
            |list: Vec<String>| list.into_iter().collect::<std::collections::BTreeSet<_>>();
        // The enumeration itself works (no count: a new variant must not need an edit here).
        assert!(declared(variant_names::<OrderEvent>()).contains("OrderCreated"));
        assert_eq!(
            names(AggregateType::Order),
            declared(variant_names::<OrderEvent>())
        );
        assert_eq!(
            names(AggregateType::Delivery),
            declared(variant_names::<DeliveryEvent>())
        );
    }

    #[test]
    fn every_event_type_records_its_serde_tag_decodes_and_plans_a_view_update() {
        for (kind, stored) in samples() {
            let tag = match kind {
                AggregateType::Order => {
                    serde_json::to_value(stored.decode::<OrderEvent>().unwrap())
                }
                AggregateType::Delivery => {
                    serde_json::to_value(stored.decode::<DeliveryEvent>().unwrap())
                }
            }
            .unwrap()["eventType"]
                .clone();
            assert_eq!(tag, stored.event_type.as_str(), "{stored:?}");
            assert_eq!(
                stored.schema_version,
                current_schema_version(&stored.event_type)
            );
            let update = crate::view::plan(&stored).unwrap();
            assert_eq!(update.source, kind);
        }
    }

    fn v1_order_created() -> StoredEvent {
        StoredEvent {
            stream_id: "Order#o-1".into(),
            version: 1,
            event_id: "e-1".into(),
            event_type: "OrderCreated".into(),
            schema_version: 1,
            aggregate_type: "Order".into(),
            aggregate_id: "o-1".into(),
            occurred_at: time::macros::datetime!(2024-01-02 03:04:05 UTC),
            payload: serde_json::json!({
                "consumerId": "c-1", "restaurantId": "r-1", "restaurantName": "Ajanta",
                "lineItems": [{"menuItemId": "m-1", "name": "Chicken Vindaloo", "quantity": 2, "price": 1234}],
                "orderTotal": 2468
            }),
            metadata: Metadata::default(),
        }
    }

    #[test]
    fn v1_order_created_without_delivery_address_reads_as_v2() {
        let event: OrderEvent = v1_order_created().decode().expect("v1 decodes");
        match event {
            OrderEvent::OrderCreated(created) => {
                assert_eq!(created.delivery_address, None);
                assert_eq!(created.order_total.cents(), 2468);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn unknown_future_schema_version_is_an_error() {
        let mut event = v1_order_created();
        event.schema_version = 3;
        assert!(matches!(
            event.decode::<OrderEvent>(),
            Err(DomainError::Decode(_))
        ));
    }

    #[test]
    fn record_then_decode_round_trips() {
        let event = OrderEvent::OrderApproved {};
        let stamp = EventStamp {
            event_id: "e".into(),
            occurred_at: OffsetDateTime::UNIX_EPOCH,
        };
        let stored = StoredEvent::record(
            AggregateType::Order,
            "o-1",
            2,
            &event,
            stamp,
            Metadata::default(),
        )
        .unwrap();
        assert_eq!(stored.stream_id, "Order#o-1");
        assert_eq!(stored.event_type, "OrderApproved");
        assert_eq!(stored.decode::<OrderEvent>().unwrap(), event);
    }
}
