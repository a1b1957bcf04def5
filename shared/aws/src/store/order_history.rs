//! The order-history view DAO over `ftgo-order-history` (DESIGN §4, §5).
//!
//! * Writing: each [`ViewUpdate`] becomes exactly one conditional `UpdateItem` (never `PutItem`,
//!   never read-modify-write). The condition is the strict successor rule on the update's source
//!   aggregate attribute `#v` (`attribute_not_exists(#v)` for version 1, `#v = :prev` for
//!   version n) and the same update sets `#v = :version`. A failed condition returns the old
//!   item (`ReturnValuesOnConditionCheckFailure = ALL_OLD`), which tells a duplicate from a gap
//!   without another read. An empty keyword set is never written: the attribute is removed.
//! * Reading: a strongly consistent `GetItem` of one item, and the history `Query` on the GSI
//!   (`consumerId`, `creationDate` epoch ms), newest first, reading on past DynamoDB's `Limit`
//!   until the page is full, the index ends, or the per-request read budget is spent.
//!
//! `creationDate` is stored as epoch milliseconds (N), `orderTotal` and line prices as cents (N),
//! `keywords` / `restaurantKeywords` as string sets (SS).

use std::collections::{BTreeSet, HashMap};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::AttributeValue;
use ftgo_domain::AggregateType;
use ftgo_domain::order::OrderStatus;
use ftgo_domain::view::{Applicability, OrderView, ViewUpdate};
use time::OffsetDateTime;

use crate::config::order_history_table::{
    CONSUMER_ID, CREATION_DATE, DELIVERY_VERSION, ORDER_ID, ORDER_VERSION,
};
use crate::error::Error;

/// Attribute names of a view item besides the keys and version attributes (those are in
/// [`crate::config::order_history_table`]).
pub mod attributes {
    /// Order status, e.g. `APPROVED`.
    pub const STATUS: &str = "status";
    /// Delivery status, once picked up.
    pub const DELIVERY_STATUS: &str = "deliveryStatus";
    /// Restaurant id.
    pub const RESTAURANT_ID: &str = "restaurantId";
    /// Restaurant name.
    pub const RESTAURANT_NAME: &str = "restaurantName";
    /// Line items: a list of maps `{menuItemId, name, quantity, price (cents)}`.
    pub const LINE_ITEMS: &str = "lineItems";
    /// Order total in cents.
    pub const ORDER_TOTAL: &str = "orderTotal";
    /// SS of the line-item names' tokens (absent when there are none).
    pub const KEYWORDS: &str = "keywords";
    /// SS of the restaurant name's tokens (absent when there are none).
    pub const RESTAURANT_KEYWORDS: &str = "restaurantKeywords";
}

use attributes::*;

/// How many `Query` calls one history request may make at most.
pub const MAX_QUERY_CALLS: usize = 10;
/// How many index items one history request may read at most (before filtering).
pub const MAX_ITEMS_READ: usize = 2_000;

/// The duplicate-detection attribute of `source`.
pub const fn version_attribute(source: AggregateType) -> &'static str {
    match source {
        AggregateType::Order => ORDER_VERSION,
        AggregateType::Delivery => DELIVERY_VERSION,
    }
}

/// What became of one conditional update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplyOutcome {
    /// The update landed.
    Applied,
    /// The item had already seen this version of the source (or a later one): nothing changed.
    Duplicate {
        /// The source's version stored on the item.
        stored: u64,
    },
    /// Earlier versions of the source are missing: nothing changed; apply `missing_from..` first.
    Gap {
        /// The first version the item has not seen.
        missing_from: u64,
    },
    /// A coalesced update's first events were applied already, up to `applied` (inside the
    /// run): nothing changed; apply the rest of the run.
    Overlap {
        /// The source's version stored on the item.
        applied: u64,
    },
}

/// Epoch milliseconds of `time` (the GSI sort key).
pub fn epoch_millis(time: OffsetDateTime) -> i64 {
    i64::try_from(time.unix_timestamp_nanos().div_euclid(1_000_000)).unwrap_or(i64::MAX)
}

/// The instant of epoch milliseconds `millis`.
pub fn from_epoch_millis(millis: i64) -> Result<OffsetDateTime, Error> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000)
        .map_err(|e| Error::Codec(format!("creationDate {millis}: {e}")))
}

mod item;

use item::number;
pub use item::{update_item_input, view_from_item};

/// Where a history page ends: the last order returned (or read), as the index orders them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryKey {
    /// The order's id (the table key).
    pub order_id: String,
    /// Its creation date in epoch ms (the index sort key).
    pub creation_date: i64,
}

/// One history request, already validated.
#[derive(Debug, Clone)]
pub struct HistoryQuery {
    /// Whose orders.
    pub consumer_id: String,
    /// Window start, epoch ms, inclusive.
    pub since: i64,
    /// Window end, epoch ms, inclusive.
    pub until: i64,
    /// Only orders in this status.
    pub status: Option<OrderStatus>,
    /// Keyword filters, each as its normalised words: an order matches when, for any keyword,
    /// all its words are among the order's tokens (line items or restaurant). Empty: no filter.
    pub keywords: Vec<BTreeSet<String>>,
    /// Orders per page.
    pub page_size: usize,
    /// Continue after this key.
    pub start_after: Option<HistoryKey>,
}

/// One page of history.
#[derive(Debug, Clone)]
pub struct HistoryPage {
    /// The orders, newest first.
    pub orders: Vec<OrderView>,
    /// Where the next page starts; `None` when the results have ended.
    pub next: Option<HistoryKey>,
}

/// The order-history view table and its index.
#[derive(Debug, Clone)]
pub struct OrderHistoryDao {
    client: Client,
    table: String,
    index: String,
}

impl OrderHistoryDao {
    /// A DAO over view table `table` and its consumer/creation-time index `index`.
    pub fn new(client: Client, table: impl Into<String>, index: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            index: index.into(),
        }
    }

    /// Applies `update` (one event, or a coalesced run) with one conditional `UpdateItem`; a
    /// failed condition is classified as a duplicate, a gap or an overlap from the old item
    /// DynamoDB returns.
    pub async fn apply(&self, update: &ViewUpdate) -> Result<ApplyOutcome, Error> {
        let input = update_item_input(&self.table, update)?;
        let result = self
            .client
            .update_item()
            .set_table_name(input.table_name)
            .set_key(input.key)
            .set_update_expression(input.update_expression)
            .set_condition_expression(input.condition_expression)
            .set_expression_attribute_names(input.expression_attribute_names)
            .set_expression_attribute_values(input.expression_attribute_values)
            .set_return_values_on_condition_check_failure(
                input.return_values_on_condition_check_failure,
            )
            .send()
            .await;
        let failed = match result {
            Ok(_) => return Ok(ApplyOutcome::Applied),
            Err(SdkError::ServiceError(e)) => match e.into_err() {
                UpdateItemError::ConditionalCheckFailedException(failed) => failed,
                other => return Err(Error::service("UpdateItem order history", other)),
            },
            Err(other) => return Err(Error::sdk("UpdateItem order history", other)),
        };
        let stored = match failed
            .item()
            .and_then(|item| item.get(version_attribute(update.source)))
        {
            None => None,
            Some(AttributeValue::N(n)) => Some(n.parse::<u64>().map_err(|e| {
                Error::Codec(format!("{}: {n:?}: {e}", version_attribute(update.source)))
            })?),
            Some(other) => {
                return Err(Error::Codec(format!(
                    "{} is not a number: {other:?}",
                    version_attribute(update.source)
                )));
            }
        };
        match Applicability::of_run(update.first_version, update.version, stored) {
            Applicability::Duplicate => Ok(ApplyOutcome::Duplicate {
                stored: stored.unwrap_or_default(),
            }),
            Applicability::Gap { missing_from } => Ok(ApplyOutcome::Gap { missing_from }),
            Applicability::Overlap { applied } => Ok(ApplyOutcome::Overlap { applied }),
            // The condition failed although the old item says it should hold: the item moved
            // under us between the check and the answer, which DynamoDB does not do. Retry.
            Applicability::Apply => Err(Error::Projection(format!(
                "condition on {} version {} failed, yet the item holds {stored:?}",
                update.order_id, update.version
            ))),
        }
    }

    /// The view item of `order_id` (strongly consistent), whether or not it is an order yet.
    pub async fn get(&self, order_id: &str) -> Result<Option<OrderView>, Error> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(ORDER_ID, AttributeValue::S(order_id.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| Error::sdk("GetItem order history", e))?;
        output.item.map(view_from_item).transpose()
    }

    /// What an answer about `order_id` uses of its view item (everything but the search
    /// keywords), read eventually consistent (half a read unit) unless `strong` asks for a
    /// strongly consistent read.
    pub async fn read_for_answer(
        &self,
        order_id: &str,
        strong: bool,
    ) -> Result<Option<OrderView>, Error> {
        let names = [
            ORDER_ID,
            CONSUMER_ID,
            STATUS,
            DELIVERY_STATUS,
            RESTAURANT_ID,
            RESTAURANT_NAME,
            LINE_ITEMS,
            ORDER_TOTAL,
            CREATION_DATE,
            ORDER_VERSION,
            DELIVERY_VERSION,
        ];
        let placeholders: Vec<String> = (0..names.len()).map(|i| format!("#a{i}")).collect();
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(ORDER_ID, AttributeValue::S(order_id.to_owned()))
            .consistent_read(strong)
            .projection_expression(placeholders.join(", "))
            .set_expression_attribute_names(Some(
                placeholders
                    .into_iter()
                    .zip(names.iter().map(|name| (*name).to_owned()))
                    .collect(),
            ))
            .send()
            .await
            .map_err(|e| Error::sdk("GetItem order history", e))?;
        output.item.map(view_from_item).transpose()
    }

    /// The copy of `order_id`'s item in the consumer index (eventually consistent, like every
    /// index read), found by its exact index key.
    pub async fn get_indexed(
        &self,
        consumer_id: &str,
        creation_date: i64,
        order_id: &str,
    ) -> Result<Option<OrderView>, Error> {
        let mut start_key = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(&self.index)
                .key_condition_expression("#c = :c AND #d = :d")
                .filter_expression("#o = :o")
                .expression_attribute_names("#c", CONSUMER_ID)
                .expression_attribute_names("#d", CREATION_DATE)
                .expression_attribute_names("#o", ORDER_ID)
                .expression_attribute_values(":c", AttributeValue::S(consumer_id.to_owned()))
                .expression_attribute_values(":d", number(creation_date))
                .expression_attribute_values(":o", AttributeValue::S(order_id.to_owned()))
                .set_exclusive_start_key(start_key)
                .send()
                .await
                .map_err(|e| Error::sdk("Query order history index", e))?;
            if let Some(item) = page.items.unwrap_or_default().into_iter().next() {
                return view_from_item(item).map(Some);
            }
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() => start_key = Some(key),
                _ => return Ok(None),
            }
        }
    }

    /// One page of a consumer's history, newest first. Reads on until the page is full plus one
    /// order (so that "no next page" is known, not guessed), the index ends, or the read budget
    /// ([`MAX_QUERY_CALLS`], [`MAX_ITEMS_READ`]) is spent; in that last case the page may be
    /// short and `next` continues where reading stopped.
    pub async fn history(&self, query: &HistoryQuery) -> Result<HistoryPage, Error> {
        let page_size = query.page_size.max(1);
        let wanted = page_size + 1;
        let mut names = HashMap::from([
            ("#c".to_owned(), CONSUMER_ID.to_owned()),
            ("#d".to_owned(), CREATION_DATE.to_owned()),
        ]);
        let mut values = HashMap::from([
            (
                ":c".to_owned(),
                AttributeValue::S(query.consumer_id.clone()),
            ),
            (":since".to_owned(), number(query.since)),
            (":until".to_owned(), number(query.until)),
        ]);
        let filter = history_filter(query, &mut names, &mut values);
        let mut start_key = query.start_after.as_ref().map(|key| {
            HashMap::from([
                (ORDER_ID.to_owned(), AttributeValue::S(key.order_id.clone())),
                (
                    CONSUMER_ID.to_owned(),
                    AttributeValue::S(query.consumer_id.clone()),
                ),
                (CREATION_DATE.to_owned(), number(key.creation_date)),
            ])
        });
        let mut orders: Vec<OrderView> = Vec::with_capacity(wanted);
        let mut calls = 0;
        let mut read = 0;
        loop {
            let missing = wanted - orders.len();
            // Unfiltered, every item read is kept; filtered, read ahead to save round trips.
            let limit = if filter.is_some() {
                (missing * 4).clamp(25, 500)
            } else {
                missing
            };
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(&self.index)
                .key_condition_expression("#c = :c AND #d BETWEEN :since AND :until")
                .set_filter_expression(filter.clone())
                .set_expression_attribute_names(Some(names.clone()))
                .set_expression_attribute_values(Some(values.clone()))
                .scan_index_forward(false)
                .limit(i32::try_from(limit).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start_key.take())
                .send()
                .await
                .map_err(|e| Error::sdk("Query order history index", e))?;
            calls += 1;
            read += usize::try_from(page.scanned_count).unwrap_or_default();
            for item in page.items.unwrap_or_default() {
                let view = view_from_item(item)?;
                // Defence in depth: the index only holds created orders, but never show a half one.
                if view.is_order() {
                    orders.push(view);
                }
            }
            let last_evaluated = page.last_evaluated_key.filter(|key| !key.is_empty());
            if orders.len() >= wanted {
                orders.truncate(page_size);
                let next = orders.last().map(history_key).transpose()?;
                return Ok(HistoryPage { orders, next });
            }
            let Some(last_evaluated) = last_evaluated else {
                return Ok(HistoryPage { orders, next: None });
            };
            if calls >= MAX_QUERY_CALLS || read >= MAX_ITEMS_READ {
                // Budget spent: a short page, continuing where reading stopped.
                let next = match orders.len() {
                    n if n == page_size => orders.last().map(history_key).transpose()?,
                    _ => Some(key_of(&last_evaluated)?),
                };
                return Ok(HistoryPage { orders, next });
            }
            start_key = Some(last_evaluated);
        }
    }
}

/// The position of `view` in the index.
fn history_key(view: &OrderView) -> Result<HistoryKey, Error> {
    let creation_date = view
        .creation_date
        .ok_or_else(|| Error::Codec(format!("order {} has no creationDate", view.order_id)))?;
    Ok(HistoryKey {
        order_id: view.order_id.clone(),
        creation_date: epoch_millis(creation_date),
    })
}

/// A `LastEvaluatedKey` of the index as a [`HistoryKey`].
fn key_of(key: &HashMap<String, AttributeValue>) -> Result<HistoryKey, Error> {
    let order_id = match key.get(ORDER_ID) {
        Some(AttributeValue::S(id)) => id.clone(),
        other => return Err(Error::Codec(format!("LastEvaluatedKey orderId: {other:?}"))),
    };
    let creation_date = match key.get(CREATION_DATE) {
        Some(AttributeValue::N(n)) => n
            .parse()
            .map_err(|e| Error::Codec(format!("LastEvaluatedKey creationDate {n:?}: {e}")))?,
        other => {
            return Err(Error::Codec(format!(
                "LastEvaluatedKey creationDate: {other:?}"
            )));
        }
    };
    Ok(HistoryKey {
        order_id,
        creation_date,
    })
}

/// The `FilterExpression` of `query`'s status and keyword filters, if any.
fn history_filter(
    query: &HistoryQuery,
    names: &mut HashMap<String, String>,
    values: &mut HashMap<String, AttributeValue>,
) -> Option<String> {
    let mut clauses = Vec::new();
    if let Some(status) = query.status {
        names.insert("#st".to_owned(), STATUS.to_owned());
        values.insert(
            ":st".to_owned(),
            AttributeValue::S(status.as_str().to_owned()),
        );
        clauses.push("#st = :st".to_owned());
    }
    // DynamoDB refuses redundant parentheses (`((…))`), so only what precedence needs is
    // parenthesised: AND binds tighter than OR.
    let keywords: Vec<String> = query
        .keywords
        .iter()
        .filter(|words| !words.is_empty())
        .enumerate()
        .map(|(k, words)| {
            let all: Vec<String> = words
                .iter()
                .enumerate()
                .map(|(w, word)| {
                    let value = format!(":k{k}w{w}");
                    let clause = format!("(contains(#kw, {value}) OR contains(#rkw, {value}))");
                    values.insert(value, AttributeValue::S(word.clone()));
                    clause
                })
                .collect();
            all.join(" AND ")
        })
        .collect();
    if !keywords.is_empty() {
        names.insert("#kw".to_owned(), KEYWORDS.to_owned());
        names.insert("#rkw".to_owned(), RESTAURANT_KEYWORDS.to_owned());
    }
    match keywords.len() {
        0 => {}
        1 => clauses.extend(keywords),
        _ => clauses.push(format!("({})", keywords.join(" OR "))),
    }
    (!clauses.is_empty()).then(|| clauses.join(" AND "))
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_ors_keywords_and_ands_their_words() {
        let query = HistoryQuery {
            consumer_id: "c".into(),
            since: 0,
            until: 1,
            status: Some(OrderStatus::Approved),
            keywords: vec![
                BTreeSet::from(["pizza".to_owned()]),
                BTreeSet::from(["chicken".to_owned(), "vindaloo".to_owned()]),
            ],
            page_size: 20,
            start_after: None,
        };
        let (mut names, mut values) = (HashMap::new(), HashMap::new());
        let filter = history_filter(&query, &mut names, &mut values).unwrap();
        assert_eq!(
            filter,
            "#st = :st AND ((contains(#kw, :k0w0) OR contains(#rkw, :k0w0)) OR \
             (contains(#kw, :k1w0) OR contains(#rkw, :k1w0)) AND \
             (contains(#kw, :k1w1) OR contains(#rkw, :k1w1)))"
        );
        assert_eq!(values[":k1w1"], AttributeValue::S("vindaloo".into()));
        for keywords in [vec![], vec![BTreeSet::from(["naan".to_owned()])]] {
            for status in [None, Some(OrderStatus::Cancelled)] {
                let query = HistoryQuery {
                    status,
                    keywords: keywords.clone(),
                    ..query.clone()
                };
                let filter = history_filter(&query, &mut HashMap::new(), &mut HashMap::new());
                assert!(
                    !filter.unwrap_or_default().contains("(("),
                    "redundant parentheses"
                );
            }
        }
    }
}
