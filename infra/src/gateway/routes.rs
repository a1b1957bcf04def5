//! The gateway's routes, from the template's `HttpApi` events, matched with [`matchit`] as API
//! Gateway matches them: per method (a method's own routes, then `ANY`), literal segments before
//! `{parameter}` segments before a final greedy `{proxy+}`.

use std::collections::HashMap;

use http::Method;
use percent_encoding::percent_decode_str;

pub use crate::template::Route;
use crate::{Error, Result};

/// A request matched to a route, with its path parameters (decoded).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Matched<'a> {
    /// The route.
    pub route: &'a Route,
    /// `{name}` → value.
    pub path_parameters: HashMap<String, String>,
}

/// The routes of the API: one [`matchit`] router per declared method, each holding that
/// method's routes and the `ANY` routes on paths the method does not declare, and one for the
/// methods only `ANY` serves.
#[derive(Clone, Debug, Default)]
pub struct RouteTable {
    routes: Vec<Route>,
    by_method: HashMap<Method, matchit::Router<usize>>,
    any: matchit::Router<usize>,
}

impl RouteTable {
    /// A table of `routes`; two routes the router cannot tell apart (the same path twice for a
    /// method, `{id}` and `{name}` as the last segment of the same path, or a parameter and a
    /// greedy `{proxy+}` in the same place) are a template error.
    pub fn new(routes: Vec<Route>) -> Result<Self> {
        let insert = |router: &mut matchit::Router<usize>, index: usize| {
            let route = &routes[index];
            router
                .insert(router_path(&route.path), index)
                .map_err(|e| Error::template(format!("route {}: {e}", route.route_key())))
        };
        let mut by_method: HashMap<Method, matchit::Router<usize>> = HashMap::new();
        let mut any = matchit::Router::new();
        for (index, route) in routes.iter().enumerate() {
            match &route.method {
                Some(method) => insert(by_method.entry(method.clone()).or_default(), index)?,
                None => insert(&mut any, index)?,
            }
        }
        // `ANY` serves a declared method too, on the paths that method does not declare itself.
        for (index, route) in routes.iter().enumerate() {
            if route.method.is_some() {
                continue;
            }
            for (method, router) in &mut by_method {
                let declared = routes
                    .iter()
                    .any(|r| r.method.as_ref() == Some(method) && r.path == route.path);
                if !declared {
                    insert(router, index)?;
                }
            }
        }
        Ok(Self {
            routes,
            by_method,
            any,
        })
    }

    /// The route serving `method` on `path` (the raw, still percent-encoded path), if any, with
    /// its parameters percent-decoded once. An empty segment fills no parameter.
    pub fn find(&self, method: &Method, path: &str) -> Option<Matched<'_>> {
        let found = self
            .by_method
            .get(method)
            .unwrap_or(&self.any)
            .at(path)
            .ok()?;
        let route = self.routes.get(*found.value)?;
        let mut path_parameters = HashMap::new();
        for (name, raw) in found.params.iter() {
            if raw.is_empty() {
                return None;
            }
            let value = percent_decode_str(raw).decode_utf8_lossy().into_owned();
            path_parameters.insert(name.to_owned(), value);
        }
        Some(Matched {
            route,
            path_parameters,
        })
    }
}

/// An API Gateway path template in the router's syntax: `{name}` stays, a greedy `{name+}`
/// becomes the catch-all `{*name}`.
fn router_path(path: &str) -> String {
    path.split('/')
        .map(
            |segment| match segment.strip_prefix('{').and_then(|s| s.strip_suffix("+}")) {
                Some(name) => format!("{{*{name}}}"),
                None => segment.to_owned(),
            },
        )
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub(in crate::gateway) fn table() -> RouteTable {
        RouteTable::new(vec![
            Route::new("POST", "/orders", "order-commands"),
            Route::new("post", "/orders/{orderId}/approve", "order-commands"),
            Route::new("GET", "/orders/{orderId}", "order-history-query"),
            Route::new("GET", "/orders/special", "special"),
            Route::new("ANY", "/files/{proxy+}", "files"),
            Route::new("GET", "/files/readme", "readme"),
        ])
        .expect("routes")
    }

    #[test]
    fn a_parameterised_route_matches_and_decodes_its_parameter() {
        let t = table();
        let m = t
            .find(&Method::POST, "/orders/o%201/approve")
            .expect("route");
        assert_eq!(m.route.route_key(), "POST /orders/{orderId}/approve");
        assert_eq!(m.path_parameters["orderId"], "o 1");
        let m = t.find(&Method::GET, "/orders/a%252Fb").expect("route");
        assert_eq!(m.path_parameters["orderId"], "a%2Fb", "decoded once");
        let m = t.find(&Method::GET, "/orders/a%2Fb").expect("route");
        assert_eq!(
            m.path_parameters["orderId"], "a/b",
            "an encoded slash stays in its segment"
        );
    }

    #[test]
    fn the_method_must_match() {
        assert!(table().find(&Method::GET, "/orders").is_none());
        assert!(table().find(&Method::DELETE, "/orders/o-1").is_none());
    }

    #[test]
    fn literal_segments_beat_parameters_and_parameters_beat_greedy() {
        let t = table();
        assert_eq!(
            t.find(&Method::GET, "/orders/special")
                .expect("route")
                .route
                .function,
            "special"
        );
        assert_eq!(
            t.find(&Method::GET, "/files/readme")
                .expect("route")
                .route
                .function,
            "readme"
        );
        let greedy = t.find(&Method::PUT, "/files/a/b/c").expect("route");
        assert_eq!(greedy.route.route_key(), "ANY /files/{proxy+}");
        assert_eq!(greedy.path_parameters["proxy"], "a/b/c");
        let greedy = t.find(&Method::GET, "/files/a%20b/c").expect("route");
        assert_eq!(greedy.route.function, "files", "ANY serves GET too");
        assert_eq!(greedy.path_parameters["proxy"], "a b/c");
    }

    #[test]
    fn an_empty_segment_does_not_fill_a_parameter() {
        assert!(table().find(&Method::POST, "/orders//approve").is_none());
        assert!(table().find(&Method::GET, "/orders/").is_none());
        assert!(table().find(&Method::GET, "/orders/o-1/").is_none());
        assert!(table().find(&Method::PUT, "/files/").is_none());
    }

    #[test]
    fn routes_the_router_cannot_tell_apart_are_a_template_error() {
        let clash = RouteTable::new(vec![
            Route::new("GET", "/orders/{orderId}", "a"),
            Route::new("GET", "/orders/{id}", "b"),
        ]);
        assert!(matches!(clash, Err(Error::Template(m)) if m.contains("GET /orders/{id}")));
        let greedy = RouteTable::new(vec![
            Route::new("GET", "/files/{name}", "a"),
            Route::new("ANY", "/files/{proxy+}", "b"),
        ]);
        assert!(greedy.is_err());
        let twice = RouteTable::new(vec![
            Route::new("GET", "/orders", "a"),
            Route::new("GET", "/orders", "b"),
        ]);
        assert!(twice.is_err());
    }
}
