//! `ftgo order`, `ftgo delivery`, `ftgo history` and `ftgo seed`: the HTTP API of DESIGN §3 from
//! the command line.
//!
//! Every command takes `--api <URL>` (env `FTGO_API`, default `http://127.0.0.1:3000`) and
//! `--token` (env `FTGO_TOKEN`); without a token it signs a local one as `ftgo token` does, for
//! `--sub` and `--scope` (default: `ftgo-cli` with scope `ftgo/admin`). `--json` prints the API's
//! JSON answer; otherwise a line or a table. Exit codes: 0 done, 1 not sent (bad input, no
//! connection), 3 the API refused (4xx/5xx, its error code and message on standard error), 4 the
//! API answered 409 (`INVALID_STATE`, `CONFLICT`, `VIEW_NOT_CAUGHT_UP`).
//! `--api` may be `http://` (the local gateway) or `https://` (API Gateway; rustls with the
//! platform's certificate verifier).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::Method;
use serde_json::{Value, json};

use crate::route_verbs::Noun;
pub use crate::route_verbs::RouteVerb;

/// `ftgo order …`: the routes on `/orders/{orderId}/<verb>`.
#[derive(Debug)]
pub struct Orders;

impl Noun for Orders {
    const NOUN: &'static str = "order";
    type Args = CommandArgs;
}

/// `ftgo delivery …`: the routes on `/deliveries/{orderId}/<verb>`.
#[derive(Debug)]
pub struct Deliveries;

impl Noun for Deliveries {
    const NOUN: &'static str = "delivery";
    type Args = CommandArgs;
}

use ftgo_domain::access::Action;

/// The API commands of `ftgo`.
#[derive(Subcommand, Debug)]
pub enum ApiCommand {
    /// Orders over the HTTP API: create, revise, get, and a command per declared order route.
    Order {
        /// What to do.
        #[command(subcommand)]
        command: OrderCommand,
    },
    /// Deliveries over the HTTP API: a command per declared delivery route.
    Delivery {
        /// What to do.
        #[command(subcommand)]
        command: RouteVerb<Deliveries>,
    },
    /// A consumer's order history (newest first), as a table.
    History(HistoryArgs),
    /// Demo data: orders created over the API, some approved, picked up, delivered or cancelled
    /// (the caller must be allowed all of that: the default admin token is).
    Seed(SeedArgs),
}

/// `ftgo order …`.
#[derive(Subcommand, Debug)]
pub enum OrderCommand {
    /// `POST /orders`, from flags or `--body-file`.
    Create(CreateArgs),
    /// `POST /orders/{id}/revise` with `--quantity m-1=3`….
    Revise(ReviseArgs),
    /// `GET /orders/{id}`.
    Get(GetArgs),
    /// The body-free commands of the declared order routes (approve, reject, cancel, …).
    #[command(flatten)]
    Route(RouteVerb<Orders>),
}

/// Where the API is, who calls it, how to print.
#[derive(Args, Debug, Clone)]
pub struct ApiArgs {
    /// Base URL of the HTTP API.
    #[arg(long, env = "FTGO_API", default_value = "http://127.0.0.1:3000")]
    pub api: String,
    /// The bearer token; without it a local token is signed for `--sub`/`--scope`.
    #[arg(long, env = "FTGO_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// The caller of the local token (default `ftgo-cli` with scope `ftgo/admin`; a consumer is
    /// its consumer id, without a scope).
    #[arg(long)]
    pub sub: Option<String>,
    /// A scope of the local token for `--sub` (repeatable): ftgo/restaurant, ftgo/courier, ftgo/admin.
    #[arg(long, requires = "sub")]
    pub scope: Vec<String>,
    /// Print the API's JSON answer instead of a line or table.
    #[arg(long)]
    pub json: bool,
}

/// A command on one order or delivery.
#[derive(Args, Debug)]
pub struct CommandArgs {
    /// The order id.
    pub order_id: String,
    /// Send `If-Match: <version>`: the command is refused (412) unless the aggregate is there.
    #[arg(long)]
    pub if_match: Option<u64>,
    /// Send `Idempotency-Key`: a retry with the same key answers what the first call answered.
    #[arg(long)]
    pub idempotency_key: Option<String>,
    #[command(flatten)]
    api: ApiArgs,
}

/// `ftgo order create`.
#[derive(Args, Debug)]
pub struct CreateArgs {
    /// The consumer the order is for (default: `--sub`, else `c-1`).
    #[arg(long)]
    pub consumer: Option<String>,
    /// The restaurant id.
    #[arg(long, default_value = "r-1")]
    pub restaurant: String,
    /// The restaurant's name.
    #[arg(long, default_value = "Ajanta")]
    pub restaurant_name: String,
    /// A line item `menuItemId:name:quantity:price` (repeatable; default `m-1:Chicken Vindaloo:2:12.34`).
    #[arg(long, value_parser = parse_item)]
    pub item: Vec<Value>,
    #[command(flatten)]
    address: AddressArgs,
    /// The whole create body from a JSON file, instead of the flags.
    #[arg(long, conflicts_with_all = ["consumer", "restaurant", "restaurant_name", "item"])]
    pub body_file: Option<PathBuf>,
    /// Send `Idempotency-Key`.
    #[arg(long)]
    pub idempotency_key: Option<String>,
    #[command(flatten)]
    api: ApiArgs,
}

/// The delivery address of `ftgo order create` and `ftgo seed`.
#[derive(Args, Debug)]
pub struct AddressArgs {
    /// Delivery address: street.
    #[arg(long, default_value = "1 Main St")]
    pub street1: String,
    /// Delivery address: second line.
    #[arg(long)]
    pub street2: Option<String>,
    /// Delivery address: city.
    #[arg(long, default_value = "Oakland")]
    pub city: String,
    /// Delivery address: state.
    #[arg(long, default_value = "CA")]
    pub state: String,
    /// Delivery address: zip code.
    #[arg(long, default_value = "94612")]
    pub zip: String,
}

impl AddressArgs {
    fn to_json(&self) -> Value {
        json!({
            "street1": self.street1, "street2": self.street2, "city": self.city,
            "state": self.state, "zip": self.zip,
        })
    }
}

/// `ftgo order revise`.
#[derive(Args, Debug)]
pub struct ReviseArgs {
    /// A new quantity `menuItemId=quantity` (repeatable; 0 removes the line).
    #[arg(long, required = true, value_parser = parse_quantity)]
    pub quantity: Vec<(String, u32)>,
    #[command(flatten)]
    command: CommandArgs,
}

/// `ftgo order get`.
#[derive(Args, Debug)]
pub struct GetArgs {
    /// The order id.
    pub order_id: String,
    /// A command answer's token: wait until the view has caught up with it.
    #[arg(long)]
    pub consistent_with: Option<String>,
    #[command(flatten)]
    api: ApiArgs,
}

/// `ftgo history`.
#[derive(Args, Debug)]
pub struct HistoryArgs {
    /// The consumer id.
    pub consumer: String,
    /// Only orders in this state (e.g. APPROVED).
    #[arg(long)]
    pub status: Option<String>,
    /// A word of the restaurant name or a line item's name (repeatable: any matches).
    #[arg(long)]
    pub keyword: Vec<String>,
    /// From (RFC 3339; default: 30 days ago).
    #[arg(long)]
    pub since: Option<String>,
    /// Up to (RFC 3339; default: now).
    #[arg(long)]
    pub until: Option<String>,
    /// Orders a page (1–100).
    #[arg(long)]
    pub page_size: Option<u32>,
    /// Start at this page (a previous answer's `nextPageToken`).
    #[arg(long)]
    pub page_token: Option<String>,
    /// Follow `nextPageToken` through every page.
    #[arg(long)]
    pub all: bool,
    /// A command answer's token: wait until the view has caught up with it.
    #[arg(long)]
    pub consistent_with: Option<String>,
    #[command(flatten)]
    api: ApiArgs,
}

/// `ftgo seed`.
#[derive(Args, Debug)]
pub struct SeedArgs {
    /// How many orders.
    #[arg(long, default_value_t = 10)]
    pub orders: u32,
    /// The consumer they are for.
    #[arg(long, default_value = "c-1")]
    pub consumer: String,
    #[command(flatten)]
    address: AddressArgs,
    #[command(flatten)]
    api: ApiArgs,
}

/// Why a command failed.
#[derive(Debug)]
enum Failure {
    /// Nothing (or nothing understood) came back.
    Local(String),
    /// The API refused: status, error code, message, `Retry-After`.
    Http(u16, String, String, Option<Duration>),
}

impl Failure {
    fn report(&self) -> ExitCode {
        match self {
            Self::Local(message) => {
                eprintln!("ftgo: {message}");
                ExitCode::FAILURE
            }
            Self::Http(status, code, message, _) => {
                eprintln!("ftgo: {status} {code}: {message}");
                ExitCode::from(if *status == 409 { 4 } else { 3 })
            }
        }
    }
}

/// Runs an API command; errors are printed here, their kind is the exit code (module doc).
pub async fn run(command: ApiCommand) -> ExitCode {
    match execute(command).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => failure.report(),
    }
}

async fn execute(command: ApiCommand) -> Result<(), Failure> {
    match command {
        ApiCommand::Order { command } => match command {
            OrderCommand::Create(args) => create(args).await,
            OrderCommand::Route(verb) => command_on(verb.args, verb.action, None).await,
            OrderCommand::Revise(args) => {
                let quantities: serde_json::Map<String, Value> = args
                    .quantity
                    .into_iter()
                    .map(|(m, q)| (m, q.into()))
                    .collect();
                let body = json!({ "lineItemQuantities": quantities });
                command_on(args.command, Action::ReviseOrder, Some(body)).await
            }
            OrderCommand::Get(args) => {
                let api = Api::new(&args.api)?;
                let mut path = format!("/orders/{}", segment(&args.order_id));
                if let Some(token) = &args.consistent_with {
                    path.push_str(&format!("?consistentWith={}", segment(token)));
                }
                let order = api.read(&path).await?;
                if args.api.json {
                    println!("{order}");
                } else {
                    print_orders(std::slice::from_ref(&order));
                    for item in order["lineItems"].as_array().into_iter().flatten() {
                        println!(
                            "  {} x {} ({}) @ {}",
                            item["quantity"],
                            text(&item["name"]),
                            text(&item["menuItemId"]),
                            text(&item["price"])
                        );
                    }
                }
                Ok(())
            }
        },
        ApiCommand::Delivery { command } => command_on(command.args, command.action, None).await,
        ApiCommand::History(args) => history(args).await,
        ApiCommand::Seed(args) => seed(args).await,
    }
}

async fn create(args: CreateArgs) -> Result<(), Failure> {
    let api = Api::new(&args.api)?;
    let body = match &args.body_file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| Failure::Local(format!("{}: {e}", path.display())))?;
            serde_json::from_str(&text)
                .map_err(|e| Failure::Local(format!("{}: {e}", path.display())))?
        }
        None => {
            let items = if args.item.is_empty() {
                vec![parse_item("m-1:Chicken Vindaloo:2:12.34").map_err(Failure::Local)?]
            } else {
                args.item.clone()
            };
            let consumer = args.consumer.as_ref().or(args.api.sub.as_ref());
            create_body(
                consumer.map_or("c-1", String::as_str),
                &args.restaurant,
                &args.restaurant_name,
                items,
                &args.address,
            )
        }
    };
    let keys = (None, args.idempotency_key.as_deref());
    let answer = api.send(Method::POST, "/orders", Some(&body), keys).await?;
    print_answer(&answer, args.api.json);
    Ok(())
}

fn create_body(
    consumer: &str,
    restaurant: &str,
    name: &str,
    items: Vec<Value>,
    address: &AddressArgs,
) -> Value {
    json!({
        "consumerId": consumer, "restaurantId": restaurant, "restaurantName": name,
        "lineItems": items, "deliveryAddress": address.to_json(),
    })
}

/// Sends `action`'s route (`POST /orders/{orderId}/…`) for the order `args.order_id`.
async fn command_on(args: CommandArgs, action: Action, body: Option<Value>) -> Result<(), Failure> {
    let api = Api::new(&args.api)?;
    let path = action
        .route()
        .path()
        .replace("{orderId}", &segment(&args.order_id));
    let keys = (args.if_match, args.idempotency_key.as_deref());
    let answer = api.send(Method::POST, &path, body.as_ref(), keys).await?;
    print_answer(&answer, args.api.json);
    Ok(())
}

async fn history(args: HistoryArgs) -> Result<(), Failure> {
    let api = Api::new(&args.api)?;
    let mut query = form_urlencoded::Serializer::new(String::new());
    let single = [
        ("status", &args.status),
        ("since", &args.since),
        ("until", &args.until),
        ("pageSize", &args.page_size.map(|n| n.to_string())),
        ("consistentWith", &args.consistent_with),
    ];
    for (name, value) in single {
        if let Some(value) = value {
            query.append_pair(name, value);
        }
    }
    for keyword in &args.keyword {
        query.append_pair("keyword", keyword);
    }
    let query = query.finish();
    let mut orders = Vec::new();
    let mut page_token = args.page_token.clone();
    loop {
        // The filters, then this page's token, encoded the same way.
        let mut page_query = form_urlencoded::Serializer::for_suffix(query.clone(), 0);
        if let Some(token) = &page_token {
            page_query.append_pair("pageToken", token);
        }
        let path = format!(
            "/consumers/{}/orders?{}",
            segment(&args.consumer),
            page_query.finish()
        );
        let page = api.read(&path).await?;
        page_token = page["nextPageToken"].as_str().map(str::to_owned);
        if !args.all {
            if args.api.json {
                println!("{page}");
            } else {
                print_orders(page["orders"].as_array().map_or(&[], Vec::as_slice));
                if let Some(token) = &page_token {
                    println!("(more: --page-token {token}, or --all)");
                }
            }
            return Ok(());
        }
        orders.extend(page["orders"].as_array().cloned().unwrap_or_default());
        if page_token.is_none() {
            break;
        }
    }
    if args.api.json {
        println!("{}", json!({ "orders": orders }));
    } else {
        print_orders(&orders);
    }
    Ok(())
}

/// The demo menu: restaurant id and name, line items.
const MENU: [(&str, &str, &[&str]); 3] = [
    (
        "r-1",
        "Ajanta",
        &["m-1:Chicken Vindaloo:2:12.34", "m-2:Garlic Naan:1:3.50"],
    ),
    (
        "r-2",
        "Luigi's Trattoria",
        &["m-10:Margherita Pizza:1:11.00", "m-11:Tiramisu:2:6.25"],
    ),
    ("r-3", "Sakura Sushi", &["m-20:Salmon Nigiri:3:4.80"]),
];

async fn seed(args: SeedArgs) -> Result<(), Failure> {
    let api = Api::new(&args.api)?;
    let mut seeded = Vec::new();
    for n in 0..args.orders {
        let index = usize::try_from(n).unwrap_or_default();
        let (restaurant, name, items) = MENU[index % MENU.len()];
        let items = items
            .iter()
            .map(|item| parse_item(item))
            .collect::<Result<Vec<_>, _>>()
            .map_err(Failure::Local)?;
        let body = create_body(&args.consumer, restaurant, name, items, &args.address);
        let created = api
            .send(Method::POST, "/orders", Some(&body), (None, None))
            .await?;
        let id = segment(text(&created["orderId"]));
        let steps: &[&str] = match n % 5 {
            0 => &[],
            1 => &["orders/{}/approve"],
            2 => &["orders/{}/approve", "deliveries/{}/pickup"],
            3 => &[
                "orders/{}/approve",
                "deliveries/{}/pickup",
                "deliveries/{}/deliver",
            ],
            _ => &["orders/{}/cancel"],
        };
        let mut last = created.clone();
        for step in steps {
            let path = format!("/{}", step.replace("{}", &id));
            last = api.send(Method::POST, &path, None, (None, None)).await?;
        }
        let state = last.get("deliveryStatus").unwrap_or(&last["status"]);
        if !args.api.json {
            println!("{} {} {}", text(&created["orderId"]), name, text(state));
        }
        seeded.push(json!({"orderId": created["orderId"], "status": state}));
    }
    if args.api.json {
        println!(
            "{}",
            json!({ "consumerId": args.consumer, "orders": seeded })
        );
    } else {
        println!("seeded {} orders for {}", seeded.len(), args.consumer);
    }
    Ok(())
}

/// The HTTP API with a caller.
struct Api {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Api {
    fn new(args: &ApiArgs) -> Result<Self, Failure> {
        if !(args.api.starts_with("http://") || args.api.starts_with("https://")) {
            return Err(Failure::Local(format!(
                "--api {}: an http:// or https:// URL",
                args.api
            )));
        }
        let token = match (&args.token, &args.sub) {
            (Some(token), _) => token.clone(),
            (None, sub) => {
                let (sub, scopes) = match sub {
                    Some(sub) => (
                        sub.as_str(),
                        args.scope.iter().map(String::as_str).collect(),
                    ),
                    None => ("ftgo-cli", vec!["ftgo/admin"]),
                };
                crate::token::issue(sub, &scopes, crate::token::DEFAULT_TTL)
                    .map_err(|e| Failure::Local(e.to_string()))?
            }
        };
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()
            .map_err(|e| Failure::Local(e.to_string()))?;
        let base = args.api.trim_end_matches('/').to_owned();
        Ok(Self { http, base, token })
    }

    /// A GET, again (after `Retry-After`, for up to a minute) while the view has not caught up
    /// with `consistentWith`.
    async fn read(&self, path: &str) -> Result<Value, Failure> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match self.send(Method::GET, path, None, (None, None)).await {
                Err(Failure::Http(409, code, _, wait))
                    if code == "VIEW_NOT_CAUGHT_UP" && Instant::now() < deadline =>
                {
                    let wait = wait.unwrap_or_default().max(Duration::from_millis(200));
                    tokio::time::sleep(wait.min(Duration::from_secs(2))).await;
                }
                other => return other,
            }
        }
    }

    /// One request, its answer as JSON; a 4xx/5xx answer is a [`Failure::Http`]. `keys`:
    /// If-Match, Idempotency-Key.
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        (if_match, idempotency_key): (Option<u64>, Option<&str>),
    ) -> Result<Value, Failure> {
        let url = format!("{}{path}", self.base);
        let mut request = self.http.request(method, &url).bearer_auth(&self.token);
        if let Some(version) = if_match {
            request = request.header("if-match", version.to_string());
        }
        if let Some(key) = idempotency_key {
            request = request.header("idempotency-key", key);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let local = |e: reqwest::Error| {
            let cause = std::error::Error::source(&e).map(|c| format!(" ({c})"));
            let message = format!("{url}: {e}{}", cause.unwrap_or_default());
            Failure::Local(message)
        };
        let response = request.send().await.map_err(local)?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()?.trim().parse().ok())
            .map(Duration::from_secs);
        let text = response.text().await.map_err(local)?;
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        if status < 400 {
            return Ok(value);
        }
        let error = &value["error"];
        let code = error["code"].as_str().unwrap_or("HTTP_ERROR").to_owned();
        let message = error["message"]
            .as_str()
            .map_or_else(|| value.to_string(), str::to_owned);
        Err(Failure::Http(status, code, message, retry_after))
    }
}

/// Prints a command's answer: the JSON, or one line.
fn print_answer(answer: &Value, json: bool) {
    if json {
        println!("{answer}");
    } else if let Some(delivery) = answer.get("deliveryStatus") {
        let (id, version) = (text(&answer["orderId"]), &answer["version"]);
        println!("delivery {id} {} (version {version})", text(delivery));
    } else {
        let (id, version) = (text(&answer["orderId"]), &answer["version"]);
        let total = text(&answer["orderTotal"]);
        println!(
            "order {id} {} (version {version}, total {total})",
            text(&answer["status"])
        );
    }
}

/// Prints orders as a table with a header line.
fn print_orders(orders: &[Value]) {
    let header = [
        "ORDER",
        "STATUS",
        "DELIVERY",
        "RESTAURANT",
        "TOTAL",
        "CREATED",
    ];
    let fields = [
        "orderId",
        "status",
        "deliveryStatus",
        "restaurantName",
        "orderTotal",
        "creationDate",
    ];
    let rows: Vec<Vec<String>> = std::iter::once(header.map(str::to_owned).to_vec())
        .chain(
            orders
                .iter()
                .map(|o| fields.iter().map(|f| text(&o[*f]).to_owned()).collect()),
        )
        .collect();
    let widths: Vec<usize> = (0..header.len())
        .map(|c| {
            rows.iter()
                .map(|r| r[c].chars().count())
                .max()
                .unwrap_or_default()
        })
        .collect();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(v, w)| format!("{v:<w$}"))
            .collect();
        println!("{}", cells.join("  ").trim_end());
    }
}

/// A JSON string's text, or `-`.
fn text(value: &Value) -> &str {
    value.as_str().unwrap_or("-")
}

/// Characters left as they are in a path segment or query value: ids' own alphabet.
const ID_SAFE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// `text` for a URL path segment or query value.
fn segment(text: &str) -> String {
    utf8_percent_encode(text, ID_SAFE).to_string()
}

/// `m-1:Chicken Vindaloo:2:12.34` → a line item (the name may hold `:`).
fn parse_item(text: &str) -> Result<Value, String> {
    let shape = || format!("{text:?} is not menuItemId:name:quantity:price");
    let (id, rest) = text.split_once(':').ok_or_else(shape)?;
    let (rest, price) = rest.rsplit_once(':').ok_or_else(shape)?;
    let (name, quantity) = rest.rsplit_once(':').ok_or_else(shape)?;
    let quantity: u32 = quantity.trim().parse().map_err(|_| shape())?;
    Ok(json!({"menuItemId": id, "name": name, "quantity": quantity, "price": price}))
}

/// `m-1=3` → (`m-1`, 3).
fn parse_quantity(text: &str) -> Result<(String, u32), String> {
    let shape = || format!("{text:?} is not menuItemId=quantity");
    let (id, quantity) = text.rsplit_once('=').ok_or_else(shape)?;
    Ok((id.to_owned(), quantity.trim().parse().map_err(|_| shape())?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_and_quantities_read_as_written() {
        assert_eq!(
            parse_item("m-1:Chicken: Vindaloo:2:12.34"),
            Ok(
                json!({"menuItemId": "m-1", "name": "Chicken: Vindaloo", "quantity": 2, "price": "12.34"})
            )
        );
        assert!(parse_item("m-1:Vindaloo:two:12.34").is_err());
        assert!(parse_item("m-1:12.34").is_err());
        assert_eq!(parse_quantity("m-1=3"), Ok(("m-1".to_owned(), 3)));
        assert!(parse_quantity("m-1").is_err());
        assert_eq!(segment("o 1/2"), "o%201%2F2");
    }
}
