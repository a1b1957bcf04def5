//! Conditional requests (RFC 9110 §8.8.3, §13.1): the `ETag`s this API hands out and the
//! `If-Match` / `If-None-Match` preconditions it checks.
//!
//! An aggregate's entity tag is its stream version, `"<version>"`: a command answer carries the
//! tag of the aggregate it changed. `GET /orders/{id}` answers the tag of the order view, which
//! shows the delivery too: `"<order version>"` until the delivery has an event, then
//! `"<order version>.<delivery version>"` — so that the tag changes whenever the answer does and
//! a `304` never hides a pickup.
//!
//! * `If-Match` (commands) uses the **strong** comparison: a weak tag (`W/"3"`) never matches;
//!   `*` matches an aggregate that exists; a list matches when any of its tags does. A tag
//!   matches a command's aggregate when it names that aggregate's current version: `"3"`, or
//!   the matching part of a view tag (`"3.2"`: order version 3, delivery version 2). A bare
//!   `3` is accepted as `"3"` (DESIGN: `If-Match: <version>`).
//! * `If-None-Match` (`GET /orders/{id}`) uses the **weak** comparison: `W/"3"` and `"3"` both
//!   match tag `"3"`; `*` matches any existing order.
//!
//! Anything else in these headers is a 400 naming the header.

use std::fmt;

use ftgo_domain::AggregateType;

/// One entity tag of a precondition header: its opaque part and whether it was weak.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntityTag {
    /// `W/` was given.
    pub weak: bool,
    /// What is between the quotes.
    pub opaque: String,
}

impl EntityTag {
    /// The version this tag names for an aggregate of `kind`: `"n"` names `n`; a view tag
    /// `"o.d"` names `o` for the order and `d` for the delivery.
    pub fn version_for(&self, kind: AggregateType) -> Option<u64> {
        match self.opaque.split_once('.') {
            None => self.opaque.parse().ok(),
            Some((order, delivery)) => match kind {
                AggregateType::Order => order.parse().ok(),
                AggregateType::Delivery => delivery.parse().ok(),
            },
        }
    }
}

/// A parsed `If-Match` or `If-None-Match` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Precondition {
    /// `*`: any current representation.
    Any,
    /// A list of entity tags (never empty).
    Tags(Vec<EntityTag>),
}

impl fmt::Display for Precondition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Precondition::Any => f.write_str("*"),
            Precondition::Tags(tags) => {
                for (index, tag) in tags.iter().enumerate() {
                    if index > 0 {
                        f.write_str(", ")?;
                    }
                    let weak = if tag.weak { "W/" } else { "" };
                    write!(f, "{weak}\"{}\"", tag.opaque)?;
                }
                Ok(())
            }
        }
    }
}

impl Precondition {
    /// Parses a header value: `*`, or a comma-separated list of entity tags (`"3"`, `W/"3"`;
    /// a bare version `3` counts as `"3"`). `Err` says what is wrong.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text == "*" {
            return Ok(Precondition::Any);
        }
        let mut tags = Vec::new();
        let mut bare = false;
        let mut rest = text;
        loop {
            rest = rest.trim_start_matches([' ', '\t', ',']);
            if rest.is_empty() {
                break;
            }
            bare |= !(rest.starts_with('"') || rest.starts_with("W/"));
            let (tag, after) = entity_tag(rest)?;
            tags.push(tag);
            rest = after.trim_start_matches([' ', '\t']);
            if !(rest.is_empty() || rest.starts_with(',')) {
                return Err(format!("expected `,` between entity tags at {rest:?}"));
            }
        }
        if tags.is_empty() {
            return Err("is empty: send `*` or entity tags such as \"3\"".into());
        }
        // A bare version (`3`) is accepted alone, as the API always did; a list takes the
        // quoted entity tags of RFC 9110 (`"1", "2"`).
        if bare && tags.len() > 1 {
            return Err("a list takes quoted entity tags, such as \"1\", \"2\"".into());
        }
        Ok(Precondition::Tags(tags))
    }

    /// `If-Match` on a command: whether an aggregate of `kind` at `version` (0: none yet)
    /// passes, by strong comparison.
    pub fn matches_strongly(&self, kind: AggregateType, version: u64) -> bool {
        match self {
            Precondition::Any => version > 0,
            Precondition::Tags(tags) => tags
                .iter()
                .any(|tag| !tag.weak && tag.version_for(kind) == Some(version)),
        }
    }

    /// `If-None-Match` on a read: whether the current tag `current` (its opaque part) is among
    /// the listed ones, by weak comparison (then the answer is 304).
    pub fn matches_weakly(&self, current: &str) -> bool {
        match self {
            Precondition::Any => true,
            Precondition::Tags(tags) => tags.iter().any(|tag| tag.opaque == current),
        }
    }
}

/// One entity tag at the start of `text`, and what follows it.
fn entity_tag(text: &str) -> Result<(EntityTag, &str), String> {
    let (weak, rest) = match text.strip_prefix("W/") {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    if let Some(quoted) = rest.strip_prefix('"') {
        let end = quoted
            .find('"')
            .ok_or_else(|| format!("{text:?} has no closing quote"))?;
        let opaque = &quoted[..end];
        // etagc: visible ASCII but `"`, and obs-text; no whitespace or controls.
        if opaque.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!("{text:?} is not an entity tag"));
        }
        let tag = EntityTag {
            weak,
            opaque: opaque.to_owned(),
        };
        return Ok((tag, &quoted[end + 1..]));
    }
    // The lenient form DESIGN allows: a bare version number.
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    if weak || end == 0 {
        return Err(format!(
            "{text:?} is not an entity tag such as \"3\" or a version number"
        ));
    }
    let tag = EntityTag {
        weak: false,
        opaque: rest[..end].to_owned(),
    };
    Ok((tag, &rest[end..]))
}

/// The entity tag of an order view: `3`, or `3.2` once the delivery has version 2 (the opaque
/// part; the header value is it in quotes).
pub fn view_tag(order_version: u64, delivery_version: Option<u64>) -> String {
    match delivery_version {
        None | Some(0) => order_version.to_string(),
        Some(delivery) => format!("{order_version}.{delivery}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use AggregateType::{Delivery, Order};

    fn parse(text: &str) -> Precondition {
        Precondition::parse(text).unwrap_or_else(|e| panic!("{text:?}: {e}"))
    }

    #[test]
    fn if_match_compares_strongly() {
        assert!(parse("\"3\"").matches_strongly(Order, 3));
        assert!(parse("3").matches_strongly(Order, 3), "bare version");
        assert!(!parse("\"3\"").matches_strongly(Order, 4));
        assert!(!parse("W/\"3\"").matches_strongly(Order, 3), "weak never");
        assert!(!parse("W/\"3\", W/\"4\"").matches_strongly(Order, 4));
        assert!(parse("W/\"3\", \"4\"").matches_strongly(Order, 4));
        assert!(parse("\"1\",\"2\" , \"5\"").matches_strongly(Order, 5));
        assert!(parse("\"1\",\"2\" , \"5\"").matches_strongly(Order, 1));
        assert!(!parse("\"1\",\"2\" , \"5\"").matches_strongly(Order, 3));
        assert!(parse("*").matches_strongly(Order, 1));
        assert!(
            !parse("*").matches_strongly(Order, 0),
            "* needs an aggregate"
        );
        assert!(!parse("\"x\"").matches_strongly(Order, 0));
    }

    #[test]
    fn a_view_tag_names_each_aggregate_its_own_part() {
        let tag = parse(&format!("\"{}\"", view_tag(3, Some(2))));
        assert!(tag.matches_strongly(Order, 3));
        assert!(tag.matches_strongly(Delivery, 2));
        assert!(!tag.matches_strongly(Order, 2));
        assert_eq!(view_tag(3, None), "3");
        assert_eq!(view_tag(3, Some(0)), "3");
    }

    #[test]
    fn if_none_match_compares_weakly() {
        assert!(parse("W/\"3\"").matches_weakly("3"));
        assert!(parse("\"3\"").matches_weakly("3"));
        assert!(parse("\"1\", \"3.2\"").matches_weakly("3.2"));
        assert!(!parse("\"3\"").matches_weakly("3.2"));
        assert!(parse("*").matches_weakly("7"));
    }

    #[test]
    fn malformed_values_are_refused() {
        for bad in [
            "",
            " ",
            ",",
            "soon",
            "\"3",
            "W/3",
            "\"3\" \"4\"",
            "\"a b\"",
            "3x",
            "-1",
            "1, 2",
            "\"1\", 2",
        ] {
            assert!(Precondition::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_precondition_displays_as_sent() {
        assert_eq!(parse("W/\"3\",\"4\"").to_string(), "W/\"3\", \"4\"");
        assert_eq!(parse("*").to_string(), "*");
    }
}
