//! The roles a caller may hold beyond a consumer's own rights: the routes declare which roles
//! may call them ([`crate::route`]), and the access policy reads them from a token
//! ([`crate::access`]). Apart from both so that neither imports the other.

/// A role that grants more than a consumer's own rights, named by a scope (`ftgo/<role>`) or
/// by a group (`<role>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, strum::VariantArray)]
pub enum Scope {
    /// `ftgo/restaurant`: approve and reject any order, read any order.
    Restaurant,
    /// `ftgo/courier`: pick up and deliver any order's delivery, read any order.
    Courier,
    /// `ftgo/admin`: everything.
    Admin,
}

impl Scope {
    /// Every scope.
    pub const ALL: &'static [Scope] = <Self as strum::VariantArray>::VARIANTS;

    /// The scope as it appears in a token's `scope` claim.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Restaurant => "ftgo/restaurant",
            Scope::Courier => "ftgo/courier",
            Scope::Admin => "ftgo/admin",
        }
    }

    /// The role as a group name (`cognito:groups`): `restaurant`, `courier`, `admin`.
    pub fn group(self) -> &'static str {
        match self {
            Scope::Restaurant => "restaurant",
            Scope::Courier => "courier",
            Scope::Admin => "admin",
        }
    }

    /// The scope named `text` exactly; `None` for any other scope (tokens may carry scopes of
    /// other APIs, such as `openid`).
    pub fn parse(text: &str) -> Option<Scope> {
        Scope::ALL
            .iter()
            .copied()
            .find(|scope| scope.as_str() == text)
    }

    /// The role of group `text` exactly; `None` for any other group.
    pub fn from_group(text: &str) -> Option<Scope> {
        Scope::ALL
            .iter()
            .copied()
            .find(|scope| scope.group() == text)
    }
}
