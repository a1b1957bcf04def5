//! The `order-history-query` Lambda: `GET /orders/{orderId}` (`findOrder`) and
//! `GET /consumers/{consumerId}/orders` (`findOrderHistory`) over the order-history view
//! (DESIGN §3, §6).
//!
//! * `findOrder` is one `GetItem` of the fields the answer uses (a `ProjectionExpression`),
//!   eventually consistent (half a read unit) unless `consistentWith` asks to see a write, then
//!   strongly consistent; an item only a delivery touched is not an order yet and answers 404.
//! * `findOrderHistory` queries the consumer index newest first within `since`..`until` (RFC 3339,
//!   default the last 30 days up to now), filtered by `status` and any of the repeatable
//!   `keyword`s, `pageSize` (1–100, default 20) orders a page; pages are full unless the results
//!   end. `pageToken`s are sealed with HMAC-SHA256 under a key from Secrets Manager
//!   ([`crate::store::page_token_key`]), name that key, and are bound to the consumer and the filters:
//!   a forged or foreign token, or one naming a retired key, answers 400.
//! * `consistentWith=<token>` (a command answer's token) on both routes answers 409
//!   `VIEW_NOT_CAUGHT_UP` with `Retry-After` while the view is older than the token. It reveals
//!   nothing about an order the caller may not read: such an order counts as not in the view
//!   at all ([`readable`]), so the answer is exactly that for an order that does not exist —
//!   409 "applied … up to version 0" (the view cannot tell a missing order from one of the
//!   caller's own that is not projected yet, so "not yet" is the one answer that is right for
//!   both).
//! * `GET /orders/{orderId}` answers `ETag` ([`crate::conditional::view_tag`]) and 304 (no
//!   body) when `If-None-Match` matches it.
//! * Every bad parameter answers 400 `VALIDATION_FAILED` naming it.

use std::collections::BTreeSet;
use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ftgo_domain::AggregateType;
use ftgo_domain::access::{Action, Caller, RoleClaims, Verdict};
use ftgo_domain::order::OrderStatus;
use ftgo_domain::token::ConsistencyToken;
use ftgo_domain::view::{OrderView, keywords_of};
use http::StatusCode;
use lambda_http::aws_lambda_events::query_map::QueryMap;
use lambda_http::{Body, Request, RequestExt, Response};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

use crate::auth::{authorize, caller};
use crate::conditional::view_tag;
use crate::config::Config;
use crate::error::Error;
use crate::http::{
    ApiError, if_none_match, json_response, no_route, not_modified, respond, with_etag,
};
use crate::routes::path_parameter;
use crate::store::order_history::{HistoryKey, HistoryQuery, OrderHistoryDao, epoch_millis};
use crate::store::page_token_key::PageTokenKeys;
use ftgo_domain::route::Target;

/// Default page size.
pub const DEFAULT_PAGE_SIZE: usize = 20;
/// Largest page size.
pub const MAX_PAGE_SIZE: usize = 100;
/// Default history window, back from `until`.
pub const DEFAULT_WINDOW: Duration = Duration::days(30);
/// At most this many `keyword` parameters.
pub const MAX_KEYWORDS: usize = 10;
/// At most this many bytes per keyword (UTF-8: a CJK character takes 3).
pub const MAX_KEYWORD_BYTES: usize = 100;
/// At most this many words in all keywords together: each word is one clause of the
/// `FilterExpression` (about 50 bytes), so the expression stays far below DynamoDB's 4 KB.
pub const MAX_KEYWORD_WORDS: usize = 20;
/// `Retry-After` seconds of a `VIEW_NOT_CAUGHT_UP` answer.
pub const RETRY_AFTER_SECONDS: u32 = 1;

/// One line of an order, as answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LineItemJson {
    /// Menu item id.
    pub menu_item_id: String,
    /// Its name.
    pub name: String,
    /// How many.
    pub quantity: u32,
    /// Unit price, decimal string.
    pub price: String,
}

/// An order as answered by both routes (DESIGN §3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderJson {
    /// The order's id.
    pub order_id: String,
    /// Who ordered.
    pub consumer_id: String,
    /// Order status.
    pub status: String,
    /// Delivery status; absent until pickup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_status: Option<String>,
    /// Restaurant id.
    pub restaurant_id: String,
    /// Restaurant name.
    pub restaurant_name: String,
    /// The lines.
    pub line_items: Vec<LineItemJson>,
    /// Total, decimal string.
    pub order_total: String,
    /// When the order was created (the event's time), RFC 3339.
    pub creation_date: String,
}

impl OrderJson {
    /// The answer form of a view item that is an order.
    pub fn from_view(view: &OrderView) -> Self {
        Self {
            order_id: view.order_id.clone(),
            consumer_id: view.consumer_id.clone().unwrap_or_default(),
            status: view
                .status
                .map(OrderStatus::as_str)
                .unwrap_or_default()
                .to_owned(),
            delivery_status: view.delivery_status.map(|s| s.as_str().to_owned()),
            restaurant_id: view.restaurant_id.clone(),
            restaurant_name: view.restaurant_name.clone(),
            line_items: view
                .line_items
                .iter()
                .map(|line| LineItemJson {
                    menu_item_id: line.menu_item_id.clone(),
                    name: line.name.clone(),
                    quantity: line.quantity,
                    price: line.price.to_string(),
                })
                .collect(),
            order_total: view.order_total.to_string(),
            creation_date: view
                .creation_date
                .and_then(|date| date.format(&Rfc3339).ok())
                .unwrap_or_default(),
        }
    }
}

/// A page of history, as answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryJson {
    /// Orders, newest first.
    pub orders: Vec<OrderJson>,
    /// The next page's token; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
}

/// The query service: the view, and the keys that seal page tokens.
#[derive(Debug, Clone)]
pub struct OrderHistoryQuery {
    view: OrderHistoryDao,
    page_token_keys: PageTokenKeys,
    role_claims: RoleClaims,
}

impl OrderHistoryQuery {
    /// A service over `view`, sealing page tokens with `page_token_keys`.
    pub fn new(view: OrderHistoryDao, page_token_keys: impl Into<PageTokenKeys>) -> Self {
        Self {
            view,
            page_token_keys: page_token_keys.into(),
            role_claims: RoleClaims::default(),
        }
    }

    /// The same service, reading callers' roles from `claims` (Cognito groups alone unless
    /// told otherwise).
    pub fn with_role_claims(mut self, claims: RoleClaims) -> Self {
        self.role_claims = claims;
        self
    }

    /// The claims callers' roles are read from.
    pub fn role_claims(&self) -> &RoleClaims {
        &self.role_claims
    }

    /// The service the Lambda runs: DynamoDB and Secrets Manager clients from `sdk`, names and
    /// the key's secret from `config` (the key itself is read on first use).
    pub fn from_config(sdk: &aws_config::SdkConfig, config: &Config) -> Result<Self, Error> {
        Config::require(&config.order_history_table, "ORDER_HISTORY_TABLE")?;
        Config::require(
            &config.order_history_by_consumer_index,
            "ORDER_HISTORY_BY_CONSUMER_INDEX",
        )?;
        let page_token_keys = PageTokenKeys::from_config(sdk, config)?;
        Ok(Self::new(
            OrderHistoryDao::new(
                aws_sdk_dynamodb::Client::new(sdk),
                &config.order_history_table,
                &config.order_history_by_consumer_index,
            ),
            page_token_keys,
        )
        .with_role_claims(config.role_claims.clone()))
    }

    /// The view DAO.
    pub fn view(&self) -> &OrderHistoryDao {
        &self.view
    }
}

/// Serves one request of the `order-history-query` function.
pub async fn handle(
    service: &OrderHistoryQuery,
    request: Request,
) -> Result<Response<Body>, lambda_http::Error> {
    Ok(respond(route(service, &request).await))
}

async fn route(service: &OrderHistoryQuery, request: &Request) -> Result<Response<Body>, ApiError> {
    let caller = caller(request, service.role_claims())?;
    let parameters = Parameters::of(request);
    match crate::routes::matched(request).map(|(_, route)| route.target) {
        Some(Target::FindOrder) => {
            let order_id = path_parameter(request, "orderId")?;
            find_order(service, &caller, request, order_id, &parameters).await
        }
        Some(Target::FindOrderHistory) => {
            let consumer_id = path_parameter(request, "consumerId")?;
            authorize(&caller, Action::ReadHistory, Some(consumer_id))?;
            find_history(service, &caller, consumer_id, &parameters).await
        }
        _ => Err(no_route(request)),
    }
}

/// The query string, as name/value pairs.
struct Parameters(Vec<(String, String)>);

impl Parameters {
    fn of(request: &Request) -> Self {
        let map = match request.query_string_parameters_ref() {
            Some(map) => map.clone(),
            None => {
                QueryMap::from_str(request.uri().query().unwrap_or_default()).unwrap_or_default()
            }
        };
        Self(
            map.iter()
                .map(|(name, value)| (name.to_owned(), value.to_owned()))
                .collect(),
        )
    }

    /// 400 for a parameter this route does not know.
    fn only(&self, known: &[&str]) -> Result<(), ApiError> {
        match self
            .0
            .iter()
            .find(|(name, _)| !known.contains(&name.as_str()))
        {
            Some((name, _)) => Err(ApiError::validation(
                name,
                format!("unknown parameter; this route accepts {}", known.join(", ")),
            )),
            None => Ok(()),
        }
    }

    fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, value)| value.as_str())
            .collect()
    }

    /// The value of a parameter given at most once.
    fn one(&self, name: &str) -> Result<Option<&str>, ApiError> {
        match self.all(name).as_slice() {
            [] => Ok(None),
            [value] => Ok(Some(value)),
            _ => Err(ApiError::validation(name, "must be given at most once")),
        }
    }
}

fn not_caught_up(message: String) -> ApiError {
    crate::telemetry::count(crate::telemetry::names::VIEW_NOT_CAUGHT_UP, 1);
    ApiError {
        retry_after: Some(RETRY_AFTER_SECONDS),
        ..ApiError::new(StatusCode::CONFLICT, "VIEW_NOT_CAUGHT_UP", message)
    }
}

fn consistency_token(parameters: &Parameters) -> Result<Option<ConsistencyToken>, ApiError> {
    parameters
        .one("consistentWith")?
        .map(|text| {
            ConsistencyToken::decode(text).ok_or_else(|| {
                ApiError::validation(
                    "consistentWith",
                    "is not a token this API issued (or names an invalid id)",
                )
            })
        })
        .transpose()
}

/// 409 while `view` (the token's order's item; `None`: none yet) is older than `token`.
fn check_caught_up(view: Option<&OrderView>, token: &ConsistencyToken) -> Result<(), ApiError> {
    let applied = view
        .and_then(|view| view.version_of(token.aggregate_type))
        .unwrap_or(0);
    if applied < token.version {
        return Err(not_caught_up(format!(
            "the view has applied {} {} up to version {applied}, the token needs version {}",
            token.aggregate_type, token.aggregate_id, token.version
        )));
    }
    Ok(())
}

/// The view item of `view`, if `caller` may read it: an order the caller may not read — and
/// an item that is not an order yet, for a caller who may not read every order — counts as
/// absent, so that nothing (not even how far the view has got) tells it from a missing one.
fn readable(view: Option<OrderView>, caller: &Caller) -> Option<OrderView> {
    view.filter(|view| {
        let owner = view
            .is_order()
            .then_some(view.consumer_id.as_deref())
            .flatten();
        caller.may(Action::ReadOrder, owner) == Verdict::Allowed
    })
}

async fn find_order(
    service: &OrderHistoryQuery,
    caller: &Caller,
    request: &Request,
    order_id: &str,
    parameters: &Parameters,
) -> Result<Response<Body>, ApiError> {
    parameters.only(&["consistentWith"])?;
    let token = consistency_token(parameters)?;
    let if_none_match = if_none_match(request)?;
    if let Some(token) = &token
        && token.aggregate_id != order_id
    {
        return Err(ApiError::validation(
            "consistentWith",
            "names another order than the one asked for",
        ));
    }
    // An order the caller may not read answers exactly as one that does not exist.
    // Eventually consistent (half the read units) unless the token asks to see a write.
    let view = readable(
        service
            .view
            .read_for_answer(order_id, token.is_some())
            .await?,
        caller,
    );
    if let Some(token) = &token {
        check_caught_up(view.as_ref(), token)?;
    }
    let Some(view) = view.filter(OrderView::is_order) else {
        return Err(ApiError::not_found(format!("order {order_id} not found")));
    };
    let tag = view_tag(
        view.version_of(AggregateType::Order).unwrap_or_default(),
        view.version_of(AggregateType::Delivery),
    );
    if if_none_match.is_some_and(|condition| condition.matches_weakly(&tag)) {
        return Ok(not_modified(&tag));
    }
    Ok(with_etag(
        json_response(StatusCode::OK, &OrderJson::from_view(&view)),
        tag,
    ))
}

fn parse_time(name: &str, text: &str) -> Result<OffsetDateTime, ApiError> {
    OffsetDateTime::parse(text, &Rfc3339)
        // An unencoded `+` offset arrives as a space after form decoding.
        .or_else(|error| {
            if text.contains(' ') {
                OffsetDateTime::parse(&text.replace(' ', "+"), &Rfc3339)
            } else {
                Err(error)
            }
        })
        .map_err(|_| {
            ApiError::validation(
                name,
                format!("{text:?} is not an RFC 3339 date-time such as 2024-05-06T07:08:09Z"),
            )
        })
}

/// The validated filters of a history request.
#[derive(Debug)]
struct HistoryFilters<'a> {
    since: Option<&'a str>,
    until: Option<&'a str>,
    status: Option<OrderStatus>,
    keywords: Vec<BTreeSet<String>>,
    page_size: usize,
    page_token: Option<&'a str>,
}

impl<'a> HistoryFilters<'a> {
    fn parse(parameters: &'a Parameters) -> Result<Self, ApiError> {
        parameters.only(&[
            "since",
            "until",
            "status",
            "keyword",
            "pageSize",
            "pageToken",
            "consistentWith",
        ])?;
        let since = parameters.one("since")?;
        let until = parameters.one("until")?;
        let status = parameters
            .one("status")?
            .map(|text| {
                OrderStatus::parse(&text.to_ascii_uppercase()).ok_or_else(|| {
                    ApiError::validation(
                        "status",
                        format!(
                            "{text:?} is not one of {}",
                            OrderStatus::ALL
                                .iter()
                                .map(|status| status.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    )
                })
            })
            .transpose()?;
        let given = parameters.all("keyword");
        if given.len() > MAX_KEYWORDS {
            return Err(ApiError::validation(
                "keyword",
                format!("at most {MAX_KEYWORDS} keywords are accepted"),
            ));
        }
        let mut keywords = Vec::with_capacity(given.len());
        let mut words_in_all = 0;
        for keyword in given {
            if keyword.len() > MAX_KEYWORD_BYTES {
                return Err(ApiError::validation(
                    "keyword",
                    format!("must be at most {MAX_KEYWORD_BYTES} bytes of UTF-8 each"),
                ));
            }
            let words = keywords_of(keyword);
            if words.is_empty() {
                return Err(ApiError::validation(
                    "keyword",
                    format!("{keyword:?} contains no word"),
                ));
            }
            // Every ideograph is a word of its own.
            words_in_all += words.len();
            if words_in_all > MAX_KEYWORD_WORDS {
                return Err(ApiError::validation(
                    "keyword",
                    format!("at most {MAX_KEYWORD_WORDS} words in all keywords are accepted"),
                ));
            }
            keywords.push(words);
        }
        keywords.sort();
        keywords.dedup();
        let page_size = match parameters.one("pageSize")? {
            None => DEFAULT_PAGE_SIZE,
            Some(text) => text
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|size| (1..=MAX_PAGE_SIZE).contains(size))
                .ok_or_else(|| {
                    ApiError::validation(
                        "pageSize",
                        format!("{text:?} is not an integer from 1 to {MAX_PAGE_SIZE}"),
                    )
                })?,
        };
        let page_token = parameters.one("pageToken")?.filter(|t| !t.is_empty());
        Ok(Self {
            since,
            until,
            status,
            keywords,
            page_size,
            page_token,
        })
    }

    /// The window in epoch ms: given bounds, else the last [`DEFAULT_WINDOW`] up to now (or
    /// up to `until`).
    fn window(&self, now: OffsetDateTime) -> Result<(i64, i64), ApiError> {
        let until = match self.until {
            Some(text) => parse_time("until", text)?,
            None => now,
        };
        let since = match self.since {
            Some(text) => parse_time("since", text)?,
            None => until - DEFAULT_WINDOW,
        };
        if since > until {
            return Err(ApiError::validation(
                "since",
                if self.until.is_some() {
                    "must not be after until"
                } else {
                    "must not be after until (default: now)"
                },
            ));
        }
        Ok((epoch_millis(since), epoch_millis(until)))
    }

    /// What a page token is bound to: the consumer and the filters as given.
    fn fingerprint(&self, consumer_id: &str) -> String {
        let mut hash = Sha256::new();
        for part in [
            consumer_id,
            self.since.unwrap_or("\u{0}"),
            self.until.unwrap_or("\u{0}"),
            self.status.map(OrderStatus::as_str).unwrap_or("\u{0}"),
        ] {
            hash.update(part.as_bytes());
            hash.update([0x1f]);
        }
        for words in &self.keywords {
            for word in words {
                hash.update(word.as_bytes());
                hash.update([0x1e]);
            }
            hash.update([0x1f]);
        }
        URL_SAFE_NO_PAD.encode(&hash.finalize()[..16])
    }
}

/// What a page token carries: what it is bound to, the window it resolved, where to go on.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
struct PageTokenBody {
    /// Fingerprint of the consumer and filters.
    f: String,
    /// Window start, epoch ms.
    s: i64,
    /// Window end, epoch ms.
    u: i64,
    /// Last order id returned.
    o: String,
    /// Its creation date, epoch ms.
    d: i64,
}

async fn seal(keys: &PageTokenKeys, body: &PageTokenBody) -> Result<String, ApiError> {
    let payload = serde_json::to_vec(body).map_err(|e| Error::Codec(e.to_string()))?;
    Ok(keys.seal(&payload).await?)
}

/// Page tokens longer than this are refused unread (a genuine one is about 250 characters).
const MAX_PAGE_TOKEN_CHARS: usize = 1024;

/// Opens a token these keys sealed and checks that what it carries is consistent: a window
/// with `s ≤ u`, a position `d` inside it, a valid order id `o`. A forged token, one naming a
/// retired key, or one with inconsistent content answers 400.
async fn open(keys: &PageTokenKeys, token: &str) -> Result<PageTokenBody, ApiError> {
    let body = open_sealed(keys, token).await?;
    let consistent = body.s <= body.u
        && (body.s..=body.u).contains(&body.d)
        && ftgo_domain::order::require_id("pageToken", &body.o).is_ok();
    if !consistent {
        return Err(ApiError::validation(
            "pageToken",
            "is not a token this API issued (inconsistent content)",
        ));
    }
    Ok(body)
}

async fn open_sealed(keys: &PageTokenKeys, token: &str) -> Result<PageTokenBody, ApiError> {
    let forged = || ApiError::validation("pageToken", "is not a token this API issued");
    if token.len() > MAX_PAGE_TOKEN_CHARS {
        return Err(forged());
    }
    let payload = keys.open(token).await?.ok_or_else(forged)?;
    serde_json::from_slice(&payload).map_err(|_| forged())
}

async fn find_history(
    service: &OrderHistoryQuery,
    caller: &Caller,
    consumer_id: &str,
    parameters: &Parameters,
) -> Result<Response<Body>, ApiError> {
    let filters = HistoryFilters::parse(parameters)?;
    let token = consistency_token(parameters)?;
    let fingerprint = filters.fingerprint(consumer_id);
    // The window is checked even when a page token carries it, so a bad date is always a 400.
    let resolved = filters.window(OffsetDateTime::now_utc())?;
    let (since, until, start_after) = match filters.page_token {
        None => (resolved.0, resolved.1, None),
        Some(text) => {
            let body = open(&service.page_token_keys, text).await?;
            if body.f != fingerprint {
                return Err(ApiError::validation(
                    "pageToken",
                    "was issued for another consumer or other filters",
                ));
            }
            let key = HistoryKey {
                order_id: body.o,
                creation_date: body.d,
            };
            (body.s, body.u, Some(key))
        }
    };
    if let Some(token) = &token {
        // Another consumer's order answers as a missing one (no leak of how far it has got).
        let view = readable(service.view.get(&token.aggregate_id).await?, caller);
        check_caught_up(view.as_ref(), token)?;
        // The history reads the index, which DynamoDB keeps eventually consistent: when the
        // token's order is this consumer's, its index copy must have caught up too.
        if let Some(view) =
            view.filter(|v| v.is_order() && v.consumer_id.as_deref() == Some(consumer_id))
            && let Some(created) = view.creation_date
        {
            let indexed = service
                .view
                .get_indexed(consumer_id, epoch_millis(created), &view.order_id)
                .await?;
            check_caught_up(indexed.as_ref(), token)?;
        }
    }
    let page = service
        .view
        .history(&HistoryQuery {
            consumer_id: consumer_id.to_owned(),
            since,
            until,
            status: filters.status,
            keywords: filters.keywords.clone(),
            page_size: filters.page_size,
            start_after,
        })
        .await?;
    let next_page_token = match page.next {
        Some(key) => Some(
            seal(
                &service.page_token_keys,
                &PageTokenBody {
                    f: fingerprint.clone(),
                    s: since,
                    u: until,
                    o: key.order_id,
                    d: key.creation_date,
                },
            )
            .await?,
        ),
        None => None,
    };
    Ok(json_response(
        StatusCode::OK,
        &HistoryJson {
            orders: page.orders.iter().map(OrderJson::from_view).collect(),
            next_page_token,
        },
    ))
}

/// The creation date of an answered order as an instant (for clients and tests).
pub fn parse_creation_date(order: &OrderJson) -> Result<OffsetDateTime, Error> {
    OffsetDateTime::parse(&order.creation_date, &Rfc3339)
        .map_err(|e| Error::Codec(format!("creationDate {:?}: {e}", order.creation_date)))
}

#[cfg(test)]
mod tests;
