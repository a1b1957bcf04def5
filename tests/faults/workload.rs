//! The random workload of a seed: orders created and driven through their life by concurrent
//! clients, each order by one client in turn (so that every event of it is owed to a command
//! the client knows), and some orders raced by two clients at once (approve against reject).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use ftgo_aws::commands::CommandService;
use rand::Rng;
use rand::rngs::StdRng;

use super::clients::{self, Command, Kind};

/// The life of one order.
#[derive(Debug, Clone)]
pub struct Plan {
    marker: String,
    keyed_create: bool,
    transitions: Vec<(Kind, bool)>,
    race: bool,
}

/// `count` plans drawn from `rng`.
pub fn plans(rng: &mut StdRng, run: &str, count: usize) -> Vec<Plan> {
    (0..count)
        .map(|n| {
            let keyed = |rng: &mut StdRng| rng.random_bool(0.6);
            let lives: [&[Kind]; 4] = [
                &[Kind::Approve, Kind::Cancel],
                &[Kind::Reject],
                &[Kind::Approve],
                &[],
            ];
            let life = lives[rng.random_range(0..lives.len())];
            Plan {
                marker: format!("{run}-{n}"),
                keyed_create: keyed(rng),
                transitions: life.iter().map(|kind| (*kind, keyed(rng))).collect(),
                race: rng.random_bool(0.15),
            }
        })
        .collect()
}

/// Runs `plans` with `clients` concurrent clients; answers every command sent.
pub async fn run(service: &CommandService, plans: Vec<Plan>, clients: usize) -> Vec<Command> {
    let queue = Arc::new(Mutex::new(VecDeque::from(plans)));
    let done = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (queue, done, service) = (queue.clone(), done.clone(), service.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let Some(plan) = queue.lock().expect("queue").pop_front() else {
                    return;
                };
                let commands = live(&service, plan).await;
                done.lock().expect("done").extend(commands);
            }
        }));
    }
    for task in tasks {
        task.await.expect("a client");
    }
    std::mem::take(&mut *done.lock().expect("done"))
}

/// One order's life: its create, then its transitions while every answer is a success.
async fn live(service: &CommandService, plan: Plan) -> Vec<Command> {
    let key = |suffix: &str, keyed: bool| keyed.then(|| format!("{}-{suffix}", plan.marker));
    let mut create = Command::new(
        Kind::Create,
        None,
        key("create", plan.keyed_create),
        plan.marker.clone(),
    );
    clients::send(service, &mut create).await;
    let Some(order_id) = create
        .last()
        .filter(|a| a.is_success())
        .and(create.order_id.clone())
    else {
        return vec![create];
    };
    let mut commands = vec![create];
    if plan.race {
        let command = |kind: Kind| {
            Command::new(
                kind,
                Some(order_id.clone()),
                key(&format!("{kind:?}"), true),
                plan.marker.clone(),
            )
        };
        let (mut approve, mut reject) = (command(Kind::Approve), command(Kind::Reject));
        let (service_a, service_b) = (service.clone(), service.clone());
        let a = tokio::spawn(async move {
            clients::send(&service_a, &mut approve).await;
            approve
        });
        let b = tokio::spawn(async move {
            clients::send(&service_b, &mut reject).await;
            reject
        });
        commands.push(a.await.expect("racer"));
        commands.push(b.await.expect("racer"));
        return commands;
    }
    for (kind, keyed) in plan.transitions {
        let mut command = Command::new(
            kind,
            Some(order_id.clone()),
            key(&format!("{kind:?}"), keyed),
            plan.marker.clone(),
        );
        clients::send(service, &mut command).await;
        let ok = command.last().is_some_and(|a| a.is_success());
        commands.push(command);
        if !ok {
            break;
        }
    }
    commands
}
