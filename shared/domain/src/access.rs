//! Who may do what (DESIGN §3): the caller a verified token names, and the pure policy that
//! decides each route for it. No HTTP, no AWS: the adapters read the caller from the request
//! and turn a [`Verdict`] into an answer.
//!
//! Who may call each route is declared with the route ([`crate::route::Action::route`]: its
//! `owner` and `roles`); [`Scope::Admin`] may do everything.
//!
//! Which claims name the roles is the deployment's choice ([`RoleClaims`]): Cognito groups
//! (`cognito:groups`) by default — with Cognito, custom scopes belong to an app client, not to
//! a user — and `scope` where the deployment accepts it.
//!
//! Refusals do not leak: to a caller who may not read it, another consumer's order answers as
//! if it did not exist ([`Verdict::Hidden`]); a caller who may read every order (restaurant,
//! courier) is told it is [`Verdict::Forbidden`]; creating for, or reading the history of,
//! another consumer is [`Verdict::Forbidden`].

use std::collections::BTreeSet;

pub use crate::route::Action;
pub use crate::scope::Scope;

/// A token claim that may name the caller's roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, strum::VariantArray)]
pub enum RoleClaim {
    /// `cognito:groups`: group names (`restaurant`, `courier`, `admin`).
    Groups,
    /// `scope`: scope names (`ftgo/restaurant`, `ftgo/courier`, `ftgo/admin`).
    Scope,
}

impl RoleClaim {
    /// Every role claim.
    pub const ALL: &'static [RoleClaim] = <Self as strum::VariantArray>::VARIANTS;

    /// The claim's name in a token.
    pub fn name(self) -> &'static str {
        match self {
            RoleClaim::Groups => "cognito:groups",
            RoleClaim::Scope => "scope",
        }
    }

    /// The claim named `text` exactly.
    pub fn parse(text: &str) -> Option<RoleClaim> {
        RoleClaim::ALL
            .iter()
            .copied()
            .find(|claim| claim.name() == text)
    }

    /// The role one value of this claim names, if any (values of other APIs are ignored).
    pub fn role(self, value: &str) -> Option<Scope> {
        match self {
            RoleClaim::Groups => Scope::from_group(value),
            RoleClaim::Scope => Scope::parse(value),
        }
    }
}

/// The claims a deployment reads roles from: never empty; [`RoleClaim::Groups`] alone by
/// default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleClaims(BTreeSet<RoleClaim>);

impl Default for RoleClaims {
    fn default() -> Self {
        Self::only(RoleClaim::Groups)
    }
}

impl RoleClaims {
    /// Roles from `claim` alone.
    pub fn only(claim: RoleClaim) -> Self {
        Self(BTreeSet::from([claim]))
    }

    /// Roles from every claim this API knows (the local stack).
    pub fn all() -> Self {
        Self(RoleClaim::ALL.iter().copied().collect())
    }

    /// A comma-separated list of claim names, such as `cognito:groups,scope`; `Err` names what
    /// is not a role claim (or says the list is empty).
    pub fn parse(text: &str) -> Result<Self, String> {
        let claims = text
            .split(',')
            .map(str::trim)
            .filter(|name| !name.is_empty())
            .map(|name| {
                RoleClaim::parse(name).ok_or_else(|| {
                    format!(
                        "{name:?} is not one of {}",
                        RoleClaim::ALL
                            .iter()
                            .map(|claim| claim.name())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                })
            })
            .collect::<Result<BTreeSet<_>, _>>()?;
        if claims.is_empty() {
            return Err("names no claim".into());
        }
        Ok(Self(claims))
    }

    /// Whether roles are read from `claim`.
    pub fn accepts(&self, claim: RoleClaim) -> bool {
        self.0.contains(&claim)
    }

    /// The claims roles are read from.
    pub fn iter(&self) -> impl Iterator<Item = RoleClaim> + '_ {
        self.0.iter().copied()
    }
}

/// The policy's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Go ahead.
    Allowed,
    /// Refused, and the caller may know why (403).
    Forbidden,
    /// Refused as if the order did not exist (404), so that ids of other consumers' orders
    /// reveal nothing.
    Hidden,
}

/// Who calls: the verified token's subject and the roles this API knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    subject: String,
    scopes: BTreeSet<Scope>,
}

impl Caller {
    /// The caller named by a token: its `sub` (`None` when blank) and its space-separated
    /// `scope` claim (scopes of other APIs are ignored).
    pub fn new<'a>(subject: &str, scopes: impl IntoIterator<Item = &'a str>) -> Option<Self> {
        Self::with_roles(
            subject,
            scopes
                .into_iter()
                .flat_map(str::split_whitespace)
                .filter_map(Scope::parse),
        )
    }

    /// The caller `subject` (`None` when blank) holding `roles`.
    pub fn with_roles(subject: &str, roles: impl IntoIterator<Item = Scope>) -> Option<Self> {
        // Compared exactly (never trimmed or folded): the subject is an identity.
        if subject.trim().is_empty() {
            return None;
        }
        Some(Self {
            subject: subject.to_owned(),
            scopes: roles.into_iter().collect(),
        })
    }

    /// The token's subject: for a consumer, its consumer id.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// Whether the caller holds `scope`.
    pub fn has(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope)
    }

    /// Whether a scope lets the caller do `action` to anything, whoever owns it (so that the
    /// owner need not be read first).
    pub fn may_regardless_of_owner(&self, action: Action) -> bool {
        self.scopes.iter().any(|scope| action.allowed_by(*scope))
    }

    /// May the caller do `action` to what `owner` owns? `owner` is the consumer id of the
    /// order (`None`: there is no such order), of the new order's body, or of the history
    /// asked for.
    pub fn may(&self, action: Action, owner: Option<&str>) -> Verdict {
        if self.may_regardless_of_owner(action) {
            return Verdict::Allowed;
        }
        let owns = owner == Some(self.subject.as_str());
        if owns {
            return if action.allowed_to_owner() {
                Verdict::Allowed
            } else {
                Verdict::Forbidden
            };
        }
        if !action.targets_an_order() {
            return Verdict::Forbidden;
        }
        // Another consumer's order (or none): its existence is no secret only to those who
        // may read every order.
        match owner {
            Some(_) if self.may_regardless_of_owner(Action::ReadOrder) => Verdict::Forbidden,
            _ => Verdict::Hidden,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use Action::*;
    use Verdict::*;

    #[test]
    fn scopes_are_read_from_a_space_separated_claim_and_unknown_ones_ignored() {
        let who =
            Caller::new("u-1", ["openid  ftgo/courier\tftgo/restaurant", "email"]).expect("caller");
        assert!(who.has(Scope::Courier) && who.has(Scope::Restaurant));
        assert!(!who.has(Scope::Admin));
        // A scope must match exactly: no prefix, suffix or case games.
        for lookalike in ["ftgo/admin2", "FTGO/ADMIN", "ftgo/", "admin", "ftgo/admin/"] {
            let who = Caller::new("u-1", [lookalike]).expect("caller");
            assert_eq!(who.may(ApproveOrder, Some("u-2")), Hidden, "{lookalike}");
        }
    }

    #[test]
    fn groups_and_scopes_name_the_same_roles() {
        for &role in Scope::ALL {
            assert_eq!(RoleClaim::Groups.role(role.group()), Some(role));
            assert_eq!(RoleClaim::Scope.role(role.as_str()), Some(role));
            // A group is not a scope, nor the other way round.
            assert_eq!(RoleClaim::Groups.role(role.as_str()), None);
            assert_eq!(RoleClaim::Scope.role(role.group()), None);
        }
        assert_eq!(RoleClaim::Groups.role("Admin"), None, "exact names only");
        let restaurant = Caller::with_roles("r-1", [Scope::Restaurant]).expect("caller");
        assert_eq!(restaurant.may(ApproveOrder, Some("c-9")), Allowed);
    }

    #[test]
    fn role_claims_parse_from_a_comma_separated_list() {
        assert_eq!(RoleClaims::default(), RoleClaims::only(RoleClaim::Groups));
        assert_eq!(
            RoleClaims::parse("cognito:groups, scope"),
            Ok(RoleClaims::all())
        );
        assert_eq!(
            RoleClaims::parse("scope"),
            Ok(RoleClaims::only(RoleClaim::Scope))
        );
        let groups = RoleClaims::parse("cognito:groups").expect("groups");
        assert!(groups.accepts(RoleClaim::Groups) && !groups.accepts(RoleClaim::Scope));
        assert!(RoleClaims::parse("").is_err());
        assert!(RoleClaims::parse(" , ").is_err());
        let unknown = RoleClaims::parse("cognito:groups,roles").expect_err("unknown");
        assert!(unknown.contains("\"roles\""), "{unknown}");
    }

    #[test]
    fn an_empty_subject_is_nobody() {
        assert_eq!(Caller::new("", ["ftgo/admin"]), None);
        assert_eq!(Caller::new("  ", [""]), None);
        let padded = Caller::new(" c-1", [""]).expect("caller");
        assert_eq!(
            padded.may(ReadHistory, Some("c-1")),
            Forbidden,
            "no trimming"
        );
    }
}
