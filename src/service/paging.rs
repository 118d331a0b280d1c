//! Cloud Foundry's list conventions for every `GET /v3/<resources>`: `page` (from 1),
//! `per_page` (1–5000, default 50), `order_by` (a field, `-field` for descending), filters given
//! as comma-separated lists (`names`, `app_guids`, `states`, ...), and the `pagination` object
//! whose `first`/`last`/`next`/`previous` links keep the filters. A bad parameter is CF's 400
//! `CF-BadQueryParameter` (10005).
//!
//! The lists are sliced here, after the store returned the matching rows: fine for the number
//! of apps one dropship holds; a store that pages in SQL can take the same [`ListQuery`].

use super::error::{ApiError, ApiResult};
use crate::cfapi::{Link, Paginated, Pagination};
use std::collections::BTreeMap;

pub const DEFAULT_PER_PAGE: usize = 50;
pub const MAX_PER_PAGE: usize = 5000;

/// A list request: paging, order and filters, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    pub page: usize,
    pub per_page: usize,
    /// The field to order by and whether descending.
    pub order_by: (String, bool),
    /// Filters by name: the values the client listed.
    pub filters: BTreeMap<String, Vec<String>>,
}

/// What a list endpoint accepts besides paging: its filters and the fields it orders by (the
/// first one is the default order).
pub struct Accepts {
    pub filters: &'static [&'static str],
    pub order_by: &'static [&'static str],
}

fn bad(detail: impl Into<String>) -> ApiError {
    ApiError::bad_query(format!("The query parameter is invalid: {}", detail.into()))
}

fn number(name: &str, v: &str, max: usize) -> ApiResult<usize> {
    match v.parse::<usize>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ if max == usize::MAX => Err(bad(format!("{name} must be a positive integer"))),
        _ => Err(bad(format!("{name} must be between 1 and {max}"))),
    }
}

impl ListQuery {
    /// Parses the raw query pairs; unknown parameters are refused, as CF does.
    pub fn parse(pairs: &[(String, String)], accepts: &Accepts) -> ApiResult<ListQuery> {
        let mut q = ListQuery {
            page: 1,
            per_page: DEFAULT_PER_PAGE,
            order_by: (accepts.order_by[0].to_string(), false),
            filters: BTreeMap::new(),
        };
        for (k, v) in pairs {
            match k.as_str() {
                "page" => q.page = number("Page", v, usize::MAX)?,
                "per_page" => q.per_page = number("Per page", v, MAX_PER_PAGE)?,
                "order_by" => q.order_by = order_by(v, accepts)?,
                f if accepts.filters.contains(&f) => {
                    let values = v.split(',').map(str::trim).filter(|s| !s.is_empty());
                    q.filters
                        .insert(f.to_string(), values.map(String::from).collect());
                }
                other => return Err(bad(format!("Unknown query parameter(s): '{other}'"))),
            }
        }
        Ok(q)
    }

    /// Whether `value` passes the filter `name` (no filter: everything passes).
    pub fn allows(&self, name: &str, value: &str) -> bool {
        self.filters
            .get(name)
            .is_none_or(|vs| vs.iter().any(|v| v == value))
    }

    /// One page of `rows` (already filtered), ordered by `key` of the requested field, and
    /// the `pagination` object for `path`.
    pub fn page<T>(
        &self,
        mut rows: Vec<T>,
        key: impl Fn(&T, &str) -> String,
        base: &str,
        path: &str,
    ) -> (Vec<T>, Pagination) {
        let (field, descending) = &self.order_by;
        rows.sort_by_cached_key(|r| key(r, field));
        if *descending {
            rows.reverse();
        }
        let total = rows.len();
        let pages = total.div_ceil(self.per_page).max(1);
        let skip = (self.page - 1).saturating_mul(self.per_page);
        let page: Vec<T> = rows.into_iter().skip(skip).take(self.per_page).collect();
        (page, self.pagination(total, pages, base, path))
    }

    fn pagination(&self, total: usize, pages: usize, base: &str, path: &str) -> Pagination {
        let link = |page: usize| Link::to(base, &format!("{path}?{}", self.query(page)));
        Pagination {
            total_results: total,
            total_pages: pages,
            first: link(1),
            last: link(pages),
            next: (self.page < pages).then(|| link(self.page + 1)),
            previous: (self.page > 1).then(|| link((self.page - 1).min(pages))),
        }
    }

    /// The query string of page `page` of this list (filters and order kept).
    fn query(&self, page: usize) -> String {
        let mut pairs = url::form_urlencoded::Serializer::new(String::new());
        for (k, vs) in &self.filters {
            pairs.append_pair(k, &vs.join(","));
        }
        let (field, desc) = &self.order_by;
        pairs.append_pair(
            "order_by",
            &format!("{}{field}", if *desc { "-" } else { "" }),
        );
        pairs.append_pair("page", &page.to_string());
        pairs.append_pair("per_page", &self.per_page.to_string());
        pairs.finish()
    }
}

fn order_by(v: &str, accepts: &Accepts) -> ApiResult<(String, bool)> {
    let (field, descending) = match v.strip_prefix('-') {
        Some(f) => (f, true),
        None => (v.strip_prefix('+').unwrap_or(v), false),
    };
    if accepts.order_by.contains(&field) {
        return Ok((field.to_string(), descending));
    }
    let allowed = accepts.order_by.join("', '");
    Err(bad(format!("Order by can only be: '{allowed}'")))
}

/// The order key of a resource with only the two timestamps to order by.
pub fn by_time<'a>(created_at: &'a str, updated_at: &'a str, field: &str) -> String {
    match field {
        "updated_at" => updated_at,
        _ => created_at,
    }
    .to_string()
}

/// What lists of packages, builds and droplets order by.
pub const TIMES: &[&str] = &["created_at", "updated_at"];

/// A CF list: `pagination` and `resources` (nothing `included`).
pub fn list<T>(pagination: Pagination, resources: Vec<T>) -> Paginated<T> {
    Paginated {
        pagination,
        resources,
        included: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACCEPTS: Accepts = Accepts {
        filters: &["names", "app_guids"],
        order_by: &["created_at", "name"],
    };

    fn q(s: &str) -> ApiResult<ListQuery> {
        let pairs: Vec<(String, String)> = url::form_urlencoded::parse(s.as_bytes())
            .into_owned()
            .collect();
        ListQuery::parse(&pairs, &ACCEPTS)
    }

    #[test]
    fn pages_keep_filters_and_order_in_their_links() {
        let q = q("names=a,b,c,d,e&per_page=2&page=2&order_by=-name").unwrap();
        let rows = vec!["a", "b", "c", "d", "e"];
        let (page, p) = q.page(rows, |r, _| r.to_string(), "http://h", "/v3/apps");
        assert_eq!(page, ["c", "b"]);
        assert_eq!((p.total_results, p.total_pages), (5, 3));
        let next = &p.next.unwrap().href;
        assert_eq!(
            next,
            "http://h/v3/apps?names=a%2Cb%2Cc%2Cd%2Ce&order_by=-name&page=3&per_page=2"
        );
        assert!(p.previous.unwrap().href.contains("page=1"));
        assert!(p.last.href.contains("page=3"));
    }

    #[test]
    fn the_last_page_has_no_next_and_a_page_past_the_end_is_empty() {
        let q3 = q("per_page=2&page=3").unwrap();
        let (page, p) = q3.page(vec![1, 2, 3, 4, 5], |r, _| format!("{r}"), "", "/x");
        assert_eq!((page, p.next), (vec![5], None));
        let q9 = q("per_page=2&page=9").unwrap();
        let (page, p) = q9.page(vec![1, 2], |r, _| format!("{r}"), "", "/x");
        assert!(page.is_empty());
        assert!(p.previous.unwrap().href.contains("page=1"));
        let (_, p) = q("")
            .unwrap()
            .page(Vec::<u8>::new(), |_, _| String::new(), "", "/x");
        assert_eq!((p.total_pages, p.next), (1, None));
    }

    #[test]
    fn bad_parameters_are_cf_400s() {
        for (query, words) in [
            ("per_page=0", "Per page must be between 1 and 5000"),
            ("per_page=5001", "Per page must be between 1 and 5000"),
            ("page=0", "Page must be a positive integer"),
            ("page=x", "Page must be a positive integer"),
            (
                "order_by=guid",
                "Order by can only be: 'created_at', 'name'",
            ),
            ("space_guids=x", "Unknown query parameter(s): 'space_guids'"),
        ] {
            let e = q(query).unwrap_err();
            assert_eq!((e.status.as_u16(), e.code), (400, 10005), "{query}");
            assert!(e.detail.contains(words), "{query}: {}", e.detail);
        }
        assert!(q("names=x").unwrap().allows("names", "x"));
        assert!(!q("names=x").unwrap().allows("names", "y"));
        assert!(q("").unwrap().allows("names", "y"));
    }
}
