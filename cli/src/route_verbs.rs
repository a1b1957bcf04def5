//! The `ftgo order <verb>` and `ftgo delivery <verb>` subcommands of the body-free commands,
//! one per declared route (`ftgo_domain::route`, [`Route::cli_verb`]): `POST
//! /orders/{orderId}/approve` is `ftgo order approve ID`, `POST /deliveries/{orderId}/pickup`
//! is `ftgo delivery pickup ID`. A new route gets its subcommand without an edit here.

use std::marker::PhantomData;

use clap::error::ErrorKind;
use clap::{ArgMatches, Args, Command, FromArgMatches, Subcommand};
use ftgo_domain::access::Action;
use ftgo_domain::route::Route;

/// The noun a set of route subcommands hangs under (`order`, `delivery`), with the arguments
/// each of its verbs takes.
pub trait Noun: std::fmt::Debug {
    /// The noun as [`Route::cli_verb`] names it.
    const NOUN: &'static str;
    /// The arguments of every verb of the noun (the order id, `If-Match`, where the API is).
    type Args: Args + FromArgMatches + std::fmt::Debug;
}

/// One body-free command on one order or delivery: the route's action and the arguments.
#[derive(Debug)]
pub struct RouteVerb<N: Noun> {
    /// The declared route's action.
    pub action: Action,
    /// The order id, `If-Match`, `Idempotency-Key` and where the API is.
    pub args: N::Args,
    noun: PhantomData<N>,
}

/// The declared routes under `noun`, as `(action, verb, route)`.
pub fn verbs(noun: &str) -> impl Iterator<Item = (Action, &'static str, Route)> + '_ {
    Action::ALL.iter().filter_map(move |&action| {
        let route = action.route();
        let (its_noun, verb) = route.cli_verb()?;
        (its_noun == noun).then_some((action, verb, route))
    })
}

impl<N: Noun> FromArgMatches for RouteVerb<N> {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        Self::from_arg_matches_mut(&mut matches.clone())
    }

    fn from_arg_matches_mut(matches: &mut ArgMatches) -> Result<Self, clap::Error> {
        let Some((name, mut sub)) = matches.remove_subcommand() else {
            return Err(clap::Error::raw(
                ErrorKind::MissingSubcommand,
                "a subcommand is required",
            ));
        };
        let Some((action, _, _)) = verbs(N::NOUN).find(|(_, verb, _)| *verb == name) else {
            return Err(clap::Error::raw(
                ErrorKind::InvalidSubcommand,
                format!("no subcommand {name:?} of {}", N::NOUN),
            ));
        };
        Ok(Self {
            action,
            args: N::Args::from_arg_matches_mut(&mut sub)?,
            noun: PhantomData,
        })
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}

impl<N: Noun> Subcommand for RouteVerb<N> {
    fn augment_subcommands(command: Command) -> Command {
        verbs(N::NOUN).fold(command, |command, (_, verb, route)| {
            let about = format!("`{}`: {}", route.key, route.summary);
            command.subcommand(N::Args::augment_args(Command::new(verb).about(about)))
        })
    }

    fn augment_subcommands_for_update(command: Command) -> Command {
        Self::augment_subcommands(command)
    }

    fn has_subcommand(name: &str) -> bool {
        verbs(N::NOUN).any(|(_, verb, _)| verb == name)
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    /// The arguments of a verb, as the CLI's own (`api_cmd::CommandArgs`) start.
    #[derive(Args, Debug)]
    struct TestArgs {
        order_id: String,
        #[arg(long)]
        if_match: Option<u64>,
    }

    #[derive(Debug)]
    struct Orders;

    impl Noun for Orders {
        const NOUN: &'static str = "order";
        type Args = TestArgs;
    }

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(subcommand)]
        verb: RouteVerb<Orders>,
    }

    #[test]
    fn every_body_free_order_route_is_a_subcommand() {
        for (action, verb, _) in verbs("order") {
            let cli = Cli::try_parse_from(["ftgo-order", verb, "o-1", "--if-match", "3"])
                .unwrap_or_else(|e| panic!("{verb}: {e}"));
            assert_eq!(cli.verb.action, action);
            assert_eq!(cli.verb.args.order_id, "o-1");
            assert_eq!(cli.verb.args.if_match, Some(3));
        }
        let names: Vec<&str> = verbs("order").map(|(_, verb, _)| verb).collect();
        assert!(
            names.contains(&"approve") && names.contains(&"cancel"),
            "{names:?}"
        );
        let delivery: Vec<&str> = verbs("delivery").map(|(_, verb, _)| verb).collect();
        assert_eq!(delivery, ["pickup", "deliver"]);
        assert!(Cli::try_parse_from(["ftgo-order", "teleport", "o-1"]).is_err());
    }
}
