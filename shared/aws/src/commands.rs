//! The command application service: load the aggregate, let it decide, append its events
//! conditionally, and on a lost race reload, re-decide and retry a bounded number of times.
//!
//! Every request reads each aggregate it needs once (docs/DESIGN.md "Commands at their floor"):
//! the owner check ([`OwnerCheck`]) runs on the aggregate the command loads anyway, and a
//! guarded command's two aggregates (the order's and the delivery's streams) are loaded in
//! parallel.
//!
//! A command with an `Idempotency-Key` ([`CommandContext::key`]) is bound to its write
//! ([`key_binding`]): its ids derive from the key, its events carry the key's digests, and the
//! load before every decision looks for them. When an earlier call with that key wrote, the
//! command is not decided again: it answers what that call answered (or 422 when that call had
//! another body) — whatever happened to the idempotency record in between.

use std::time::Duration;

use ftgo_domain::access::{Action, Caller, RoleClaims, Verdict};
use ftgo_domain::delivery::{Delivery, DeliveryCommand};
use ftgo_domain::event::{EventStamp, KeyStamp, Metadata, StoredEvent};
use ftgo_domain::guard::{CrossAggregate, Reading};
use ftgo_domain::order::{CreateOrder, Order, OrderCommand};
use ftgo_domain::token::ConsistencyToken;
use ftgo_domain::{Aggregate, AggregateType};
use rand::Rng;
use time::OffsetDateTime;

use crate::error::Error;
use crate::store::event_store::{Appended, Earlier, EventStore, Loaded, StreamHead};

pub mod key_binding;

/// How often and how patiently a command retries after losing a race.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts in all (the first included).
    pub max_attempts: u32,
    /// Backoff before the second attempt; doubles each time, with full jitter.
    pub base_delay: Duration,
    /// Upper bound of one backoff.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 6,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(200),
        }
    }
}

impl RetryPolicy {
    /// The jittered delay before attempt `attempt + 1` (full jitter: uniform in `0..=cap`).
    fn backoff(&self, attempt: u32) -> Duration {
        let cap = self
            .base_delay
            .saturating_mul(1 << attempt.min(16))
            .min(self.max_delay);
        let millis = u64::try_from(cap.as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(rand::rng().random_range(0..=millis))
    }
}

/// The most `Idempotency-Key` digests a snapshot records (64 characters each).
const MAX_SNAPSHOT_KEYS: usize = 1_000;

/// Who asks, and under which expectation.
#[derive(Debug, Clone, Default)]
pub struct CommandContext {
    /// The request id, recorded as each event's correlation id.
    pub request_id: String,
    /// The client's `If-Match`: what the aggregate's version must match (strongly).
    pub expected_version: Option<crate::conditional::Precondition>,
    /// The request's `Idempotency-Key`, when it has one: the command's ids derive from it and
    /// its events carry it.
    pub key: Option<KeyStamp>,
    /// Whose order the command must be on, checked on the loaded order (none: no check).
    pub owner: Option<OwnerCheck>,
}

/// The caller's right to do `action` to an existing order, checked against the order's owner
/// as the command loads it (DESIGN §7: 404 for another consumer's order, as for none).
#[derive(Debug, Clone)]
pub struct OwnerCheck {
    /// Who calls.
    pub caller: Caller,
    /// What the caller does.
    pub action: Action,
}

impl OwnerCheck {
    /// Whether the check needs the order's owner at all (a scope may allow the action on
    /// every order).
    fn needs_owner(&self) -> bool {
        !self.caller.may_regardless_of_owner(self.action)
    }

    /// The verdict on an order owned by `owner` (`None`: no such order), as an error.
    fn enforce(&self, owner: Option<&str>) -> Result<(), Error> {
        match self.caller.may(self.action, owner) {
            Verdict::Allowed => Ok(()),
            verdict => Err(Error::Refused(Box::new(crate::error::Refusal {
                verdict,
                action: self.action,
                caller: self.caller.clone(),
            }))),
        }
    }
}

/// What an aggregate knows of the consumer who owns its order.
pub trait Owned {
    /// The owning consumer's id, when this aggregate records it and exists.
    fn owner(&self) -> Option<&str>;
}

impl Owned for Order {
    fn owner(&self) -> Option<&str> {
        self.status.is_some().then_some(self.consumer_id.as_str())
    }
}

impl Owned for Delivery {
    fn owner(&self) -> Option<&str> {
        None
    }
}

/// The result of a command that succeeded.
#[derive(Debug, Clone)]
pub struct Outcome<A> {
    /// The aggregate's id.
    pub aggregate_id: String,
    /// Its state after the command.
    pub aggregate: A,
    /// Its stream version after the command.
    pub version: u64,
    /// Whether an earlier call with the same `Idempotency-Key` had written this outcome: the
    /// answer repeats that call's.
    pub replayed: bool,
}

impl<A: Aggregate> Outcome<A> {
    /// The read-your-writes token of this outcome.
    pub fn token(&self) -> String {
        ConsistencyToken {
            aggregate_type: A::TYPE,
            aggregate_id: self.aggregate_id.clone(),
            version: self.version,
        }
        .encode()
    }
}

/// What a command read of the other aggregate of its order, and where that stream ended.
#[derive(Debug, Clone)]
struct OtherAggregate {
    head: StreamHead,
    reading: Reading,
    /// The order's consumer, when the other aggregate is the order.
    owner: Option<String>,
}

/// Whether a command starts a new stream (under a fresh id) or works on an existing one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stream {
    New,
    Existing,
}

/// Runs commands against the event store.
#[derive(Debug, Clone)]
pub struct CommandService {
    store: EventStore,
    retry: RetryPolicy,
    snapshot_interval: u64,
    role_claims: RoleClaims,
}

impl CommandService {
    /// A service over `store`, snapshotting every `snapshot_interval` events (and loading with
    /// that interval: [`EventStore::with_snapshot_interval`]).
    pub fn new(store: EventStore, retry: RetryPolicy, snapshot_interval: u64) -> Self {
        Self {
            store: store.with_snapshot_interval(snapshot_interval),
            retry,
            snapshot_interval: snapshot_interval.max(1),
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

    /// The event store underneath.
    pub fn store(&self) -> &EventStore {
        &self.store
    }

    /// Places a new order under a fresh time-ordered id, or, with an `Idempotency-Key`, under
    /// the id that key derives (so that its retries meet the same order).
    pub async fn create_order(
        &self,
        command: CreateOrder,
        context: &CommandContext,
    ) -> Result<Outcome<Order>, Error> {
        let order_id = match &context.key {
            Some(key) => key_binding::order_id(key),
            None => uuid::Uuid::now_v7().to_string(),
        };
        self.execute::<Order>(&order_id, context, Stream::New, None, |_| {
            Ok(OrderCommand::Create(command.clone()))
        })
        .await
    }

    /// Runs `command` on order `order_id` (see [`CommandService::run`]).
    pub async fn order_action(
        &self,
        order_id: &str,
        command: OrderCommand,
        context: &CommandContext,
    ) -> Result<Outcome<Order>, Error> {
        self.run::<Order>(order_id, command, context).await
    }

    /// Runs `command` on the delivery of order `order_id` (see [`CommandService::run`]).
    pub async fn delivery_action(
        &self,
        order_id: &str,
        command: DeliveryCommand,
        context: &CommandContext,
    ) -> Result<Outcome<Delivery>, Error> {
        self.run::<Delivery>(order_id, command, context).await
    }

    /// Runs `command` on the existing aggregate `id`. When the domain's cross-aggregate rule
    /// ([`CrossAggregate`]) says the command depends on the order's other aggregate, that one
    /// is read, completes the command, and the append lands only while its stream still ends
    /// where it was read.
    pub async fn run<A: CrossAggregate + Owned>(
        &self,
        id: &str,
        command: A::Command,
        context: &CommandContext,
    ) -> Result<Outcome<A>, Error>
    where
        A::Command: Clone,
    {
        let depends_on = A::depends_on(&command);
        self.execute::<A>(id, context, Stream::Existing, depends_on, |other| {
            Ok(A::complete(command.clone(), other.map(|o| &o.reading))?)
        })
        .await
    }

    /// What a command reads of the other aggregate of its order.
    async fn read_other(
        &self,
        kind: AggregateType,
        order_id: &str,
    ) -> Result<OtherAggregate, Error> {
        let stream_id = kind.stream_id(order_id);
        Ok(match kind {
            AggregateType::Order => {
                let order = self.store.load::<Order>(order_id).await?;
                OtherAggregate {
                    head: StreamHead {
                        stream_id,
                        version: order.version,
                    },
                    reading: Reading {
                        order_status: order.aggregate.status,
                        delivery_status: None,
                    },
                    owner: order.aggregate.owner().map(str::to_owned),
                }
            }
            AggregateType::Delivery => {
                let delivery = self.store.load::<Delivery>(order_id).await?;
                OtherAggregate {
                    head: StreamHead {
                        stream_id,
                        version: delivery.version,
                    },
                    reading: Reading {
                        order_status: None,
                        delivery_status: delivery.aggregate.status,
                    },
                    owner: None,
                }
            }
        })
    }

    /// Loads aggregate `id` (keyed) and, in parallel, the other aggregate `other` of its order.
    async fn load_both<A: Aggregate>(
        &self,
        id: &str,
        key: Option<&KeyStamp>,
        other: Option<AggregateType>,
    ) -> Result<(Loaded<A>, Option<Earlier<A>>, Option<OtherAggregate>), Error> {
        let own = self.store.load_keyed::<A>(id, key);
        Ok(match other {
            Some(kind) => {
                let ((loaded, earlier), other) = tokio::try_join!(own, self.read_other(kind, id))?;
                (loaded, earlier, Some(other))
            }
            None => {
                let (loaded, earlier) = own.await?;
                (loaded, earlier, None)
            }
        })
    }

    /// Load (the aggregate the command depends on, or whose owner it checks, in parallel),
    /// check the owner and `If-Match`, decide, append (guarded by the head of the aggregate the
    /// command depends on); on a lost race start over, up to the retry policy's bound.
    async fn execute<A: Aggregate + Owned>(
        &self,
        id: &str,
        context: &CommandContext,
        stream: Stream,
        depends_on: Option<AggregateType>,
        command: impl Fn(Option<&OtherAggregate>) -> Result<A::Command, Error>,
    ) -> Result<Outcome<A>, Error> {
        let key = context.key.as_ref();
        let owner_check = context.owner.as_ref().filter(|check| check.needs_owner());
        // The order's owner is on the order: a command on the delivery that does not depend on
        // the order anyway reads it for the check alone (no guard).
        let other_kind = depends_on.or_else(|| {
            owner_check
                .is_some()
                .then_some(AggregateType::Order)
                .filter(|order| *order != A::TYPE)
        });
        let mut attempt = 0;
        loop {
            let (loaded, earlier, other) = match stream {
                // A fresh id has no events yet: decide (and validate) without a read. The
                // conditional append still refuses a taken version.
                Stream::New if attempt == 0 => (
                    Loaded {
                        aggregate: A::default(),
                        version: 0,
                        snapshot_version: 0,
                        keys: Vec::new(),
                    },
                    None,
                    None,
                ),
                _ => self.load_both::<A>(id, key, other_kind).await?,
            };
            if let Some(check) = owner_check {
                let owner = loaded
                    .aggregate
                    .owner()
                    .or_else(|| other.as_ref().and_then(|o| o.owner.as_deref()));
                check.enforce(owner)?;
            }
            if let Some(earlier) = earlier {
                return answered_before(id, key, earlier);
            }
            if let Some(expected) = &context.expected_version
                && !expected.matches_strongly(A::TYPE, loaded.version)
            {
                return Err(Error::VersionMismatch {
                    expected: expected.to_string(),
                    actual: loaded.version,
                });
            }
            let other = other.filter(|_| depends_on.is_some());
            let events = loaded.aggregate.handle(command(other.as_ref())?)?;
            let mut aggregate = loaded.aggregate.clone();
            let mut stored = Vec::with_capacity(events.len());
            for (offset, event) in (1..).zip(&events) {
                aggregate.apply(event);
                let version = loaded.version + offset;
                let stamp = EventStamp {
                    event_id: match key {
                        Some(key) => key_binding::event_id(key, &A::TYPE.stream_id(id), version),
                        None => uuid::Uuid::now_v7().to_string(),
                    },
                    occurred_at: OffsetDateTime::now_utc(),
                };
                let metadata = Metadata {
                    correlation_id: context.request_id.clone(),
                    causation_id: None,
                    idempotency: key.cloned(),
                };
                stored.push(StoredEvent::record(
                    A::TYPE,
                    id,
                    version,
                    event,
                    stamp,
                    metadata,
                )?);
            }
            let version = loaded.version + stored.len() as u64;
            let guards: Vec<StreamHead> = other.into_iter().map(|o| o.head).collect();
            // An append that finds its own events stored (the SDK retried a write whose answer
            // was lost, or a keyed call's retry raced it) succeeded: answer as if the write had
            // just landed.
            match self.store.append(&stored, &guards).await {
                Ok(appended) => {
                    let mut keys = loaded.keys;
                    keys.extend(key.map(|key| key.key.clone()));
                    self.snapshot_if_due(id, &aggregate, loaded.version, version, keys)
                        .await;
                    return Ok(Outcome {
                        aggregate_id: id.to_owned(),
                        aggregate,
                        version,
                        replayed: key.is_some() && appended == Appended::AlreadyStored,
                    });
                }
                Err(Error::Conflict(reason)) => {
                    attempt += 1;
                    if attempt >= self.retry.max_attempts {
                        return Err(Error::Conflict(format!(
                            "gave up after {attempt} attempts: {reason}"
                        )));
                    }
                    tracing::info!(stream = %A::TYPE.stream_id(id), attempt, %reason, "lost a race; reloading");
                    crate::telemetry::count(crate::telemetry::names::COMMAND_CONFLICTS, 1);
                    tokio::time::sleep(self.retry.backoff(attempt)).await;
                }
                Err(other) => return Err(other),
            }
        }
    }

    /// Writes a snapshot when this append crossed a multiple of the interval. Best effort: a
    /// failed snapshot only costs a longer load later.
    async fn snapshot_if_due<A: Aggregate>(
        &self,
        id: &str,
        aggregate: &A,
        before: u64,
        after: u64,
        mut keys: Vec<String>,
    ) {
        if before / self.snapshot_interval == after / self.snapshot_interval {
            return;
        }
        // The keys of the events since the previous snapshot (bounded, so that the item stays
        // far below DynamoDB's 400 KB even when earlier snapshots failed).
        keys.dedup();
        let excess = keys.len().saturating_sub(MAX_SNAPSHOT_KEYS);
        keys.drain(..excess);
        if let Err(error) = self.store.write_snapshot(id, aggregate, after, keys).await {
            tracing::warn!(stream = %A::TYPE.stream_id(id), %error, "snapshot not written");
        }
    }
}

/// The answer to a keyed command whose key already wrote `earlier` to stream `id`: that
/// call's outcome when it asked the same, 422 when it had another body.
fn answered_before<A: Aggregate>(
    id: &str,
    key: Option<&KeyStamp>,
    earlier: Earlier<A>,
) -> Result<Outcome<A>, Error> {
    if key.is_some_and(|key| key.request != earlier.request) {
        return Err(Error::IdempotencyKeyReused);
    }
    tracing::info!(stream = %A::TYPE.stream_id(id), version = earlier.version, "the key wrote before; answering that write");
    Ok(Outcome {
        aggregate_id: id.to_owned(),
        aggregate: earlier.aggregate,
        version: earlier.version,
        replayed: true,
    })
}

impl CommandService {
    /// The service the command Lambdas run: a DynamoDB client from `sdk`, tables (events,
    /// snapshots) from `config`.
    pub fn from_config(
        sdk: &aws_config::SdkConfig,
        config: &crate::config::Config,
    ) -> Result<Self, Error> {
        crate::config::Config::require(&config.events_table, "EVENTS_TABLE")?;
        crate::config::Config::require(&config.snapshots_table, "SNAPSHOTS_TABLE")?;
        let client = aws_sdk_dynamodb::Client::new(sdk);
        let store = EventStore::new(client, &config.events_table, &config.snapshots_table);
        Ok(
            Self::new(store, RetryPolicy::default(), config.snapshot_interval)
                .with_role_claims(config.role_claims.clone()),
        )
    }
}
