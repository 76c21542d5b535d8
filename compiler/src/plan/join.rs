//! Step 1 of a plan: the two sides joined by address. Lowering writes the
//! desired objects sorted by address, and providers and snapshots report
//! observed ones nearly so; one merge of the two sorted lists pairs every
//! address with what the source wants and what a provider holds. Every
//! later step walks these rows in order instead of looking objects up in
//! hash maps, which keeps the plan's cost linear in the estate and its
//! memory reads sequential.

use super::diff::normalised;
use crate::resource::Resource;
use std::borrow::Cow;

/// Whose an observed object is, as far as the plan is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Side {
    /// The project's: compared with the source, updated or deleted.
    Ours,
    /// The project's revocation (`writ revoke`): kept, never diffed.
    Revocation,
    /// Another writ project's: never changed, never listed.
    OtherProject,
    /// No writ project's: never changed; listed when it is an identity.
    Unmanaged,
    /// No writ project's yet: the source adopts it (`adopts`), and nothing
    /// keeps writ from taking it over.
    Adopting,
}

/// One address, with what the source wants there and what a provider holds.
#[derive(Debug, Clone, Copy)]
pub(super) struct Row<'a> {
    pub address: &'a str,
    pub desired: Option<&'a Resource>,
    /// In canonical form.
    pub observed: Option<&'a Resource>,
    /// The observed object is exactly what the source wants.
    pub identical: bool,
    /// Whose the observed object is (set by the ownership step).
    pub side: Option<Side>,
}

impl<'a> Row<'a> {
    /// A row for an object only a provider holds.
    fn observed_only(resource: &'a Cow<'a, Resource>) -> Row<'a> {
        Row {
            address: &resource.address,
            desired: None,
            observed: Some(resource.as_ref()),
            identical: false,
            side: None,
        }
    }

    /// The observed object, if it is the project's.
    pub fn owned(&self) -> Option<&'a Resource> {
        self.observed.filter(|_| self.side == Some(Side::Ours))
    }

    /// The observed object, if the source adopts it.
    pub fn adopting(&self) -> Option<&'a Resource> {
        self.observed.filter(|_| self.side == Some(Side::Adopting))
    }

    /// The observed object, if it is someone else's.
    pub fn taken(&self) -> Option<&'a Resource> {
        self.observed
            .filter(|_| matches!(self.side, Some(Side::OtherProject | Side::Unmanaged)))
    }
}

/// References sorted by address, without sorting what is sorted already;
/// of two objects at one address, the later one is kept.
fn by_address(resources: &[Resource]) -> Vec<&Resource> {
    let mut sorted: Vec<&Resource> = resources.iter().collect();
    if !sorted.is_sorted_by(|a, b| a.address < b.address) {
        sorted.sort_by(|a, b| a.address.cmp(&b.address));
        let mut unique: Vec<&Resource> = Vec::with_capacity(sorted.len());
        for resource in sorted {
            match unique.last_mut() {
                Some(last) if last.address == resource.address => *last = resource,
                _ => unique.push(resource),
            }
        }
        sorted = unique;
    }
    sorted
}

/// The observed objects in canonical form: borrowed where they are exactly
/// what the source wants (in a large estate, nearly all; lowering writes
/// canonical documents), normalised otherwise. Returns them sorted by
/// address, with, for each, the index of its desired object and whether it
/// is identical to it.
pub(super) fn canonical<'a>(
    desired: &[&'a Resource],
    observed: &'a [Resource],
) -> Vec<(Cow<'a, Resource>, Option<usize>, bool)> {
    let observed = by_address(observed);
    let mut out = Vec::with_capacity(observed.len());
    let mut next = 0;
    for resource in observed {
        while next < desired.len() && desired[next].address < resource.address {
            next += 1;
        }
        let matched =
            (next < desired.len() && desired[next].address == resource.address).then_some(next);
        let same = matched.is_some_and(|i| desired[i].same_as(resource));
        let canonical = if same {
            Cow::Borrowed(resource)
        } else {
            Cow::Owned(normalised(resource))
        };
        out.push((canonical, matched, same));
    }
    out
}

/// The rows: every desired and every observed address once, in order.
pub(super) fn rows<'a>(
    desired: &[&'a Resource],
    observed: &'a [(Cow<'a, Resource>, Option<usize>, bool)],
) -> Vec<Row<'a>> {
    let mut rows = Vec::with_capacity(desired.len() + observed.len() / 8);
    let mut observed = observed.iter().peekable();
    for &want in desired {
        while let Some((resource, matched, _)) = observed.peek() {
            if matched.is_some() || resource.address.as_str() > want.address.as_str() {
                break;
            }
            rows.push(Row::observed_only(resource));
            observed.next();
        }
        let pair = observed
            .next_if(|(resource, matched, _)| matched.is_some() && resource.address == want.address)
            .map(|(resource, _, same)| (resource.as_ref(), *same));
        rows.push(Row {
            address: &want.address,
            desired: Some(want),
            observed: pair.map(|(resource, _)| resource),
            identical: pair.is_some_and(|(_, same)| same),
            side: None,
        });
    }
    for (resource, _, _) in observed {
        rows.push(Row::observed_only(resource));
    }
    rows
}

/// The desired objects, sorted by address (lowering sorts them; anything
/// else is sorted here).
pub(super) fn desired_by_address(resources: &[Resource]) -> Vec<&Resource> {
    let mut sorted: Vec<&Resource> = resources.iter().collect();
    if !sorted.is_sorted_by(|a, b| a.address <= b.address) {
        sorted.sort_by(|a, b| a.address.cmp(&b.address));
    }
    sorted
}

/// The row at `address`, if any.
pub(super) fn find<'r, 'a>(rows: &'r [Row<'a>], address: &str) -> Option<&'r Row<'a>> {
    rows.binary_search_by(|row| row.address.cmp(address))
        .ok()
        .map(|index| &rows[index])
}

/// The rows whose address starts with `prefix`, which sort together after
/// `from` (a role's inline policies, `<role>/policy/…`, after the role):
/// a few steps forward, a binary search when more rows come between.
pub(super) fn prefixed<'r, 'a>(rows: &'r [Row<'a>], from: usize, prefix: &str) -> &'r [Row<'a>] {
    let after = &rows[(from + 1).min(rows.len())..];
    let mut start = 0;
    while start < after.len() && start < 8 && after[start].address < prefix {
        start += 1;
    }
    if start == 8 {
        start = after.partition_point(|row| row.address < prefix);
    }
    let tail = &after[start..];
    let len = tail
        .iter()
        .position(|row| !row.address.starts_with(prefix))
        .unwrap_or(tail.len());
    &tail[..len]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::ResourceKind;
    use std::collections::BTreeMap;

    fn resource(address: &str, version: u8) -> Resource {
        Resource {
            address: address.to_string(),
            provider: "aws.prod".to_string(),
            kind: ResourceKind::AwsRole,
            agent: None,
            attributes: BTreeMap::from([("v".to_string(), serde_json::json!(version))]).into(),
        }
    }

    #[test]
    fn every_address_is_one_row_whatever_the_order_of_the_observed_side() {
        let desired = vec![resource("a", 1), resource("c", 1), resource("e", 1)];
        // Unsorted, with a duplicate (the later one counts) and objects the
        // source does not want before, between and after.
        let observed = vec![
            resource("f", 1),
            resource("c", 2),
            resource("b", 1),
            resource("c", 1),
            resource("0", 1),
            resource("a", 2),
        ];
        let wanted = desired_by_address(&desired);
        let canonical = canonical(&wanted, &observed);
        let rows = rows(&wanted, &canonical);
        let shown: Vec<(&str, bool, bool, bool)> = rows
            .iter()
            .map(|r| {
                (
                    r.address,
                    r.desired.is_some(),
                    r.observed.is_some(),
                    r.identical,
                )
            })
            .collect();
        assert_eq!(
            shown,
            vec![
                ("0", false, true, false),
                ("a", true, true, false),
                ("b", false, true, false),
                ("c", true, true, true),
                ("e", true, false, false),
                ("f", false, true, false),
            ]
        );
        assert_eq!(find(&rows, "c").map(|r| r.address), Some("c"));
        assert!(find(&rows, "d").is_none());
    }

    #[test]
    fn a_prefix_is_found_however_many_rows_come_between() {
        let mut addresses = vec!["r/a".to_string()];
        // Names that sort between `r/a` and `r/a/policy/`.
        for i in 0..20 {
            addresses.push(format!("r/a-{i:02}"));
        }
        addresses.push("r/a/policy/x".to_string());
        addresses.push("r/a/policy/y".to_string());
        addresses.push("r/b".to_string());
        addresses.sort();
        let desired: Vec<Resource> = addresses.iter().map(|a| resource(a, 1)).collect();
        let wanted = desired_by_address(&desired);
        let canonical = canonical(&wanted, &[]);
        let rows = rows(&wanted, &canonical);
        let found: Vec<&str> = prefixed(&rows, 0, "r/a/policy/")
            .iter()
            .map(|r| r.address)
            .collect();
        assert_eq!(found, vec!["r/a/policy/x", "r/a/policy/y"]);
        let near = rows.iter().position(|r| r.address == "r/a-19").unwrap();
        assert!(prefixed(&rows, near, "r/a-19/policy/").is_empty());
        assert!(prefixed(&rows, rows.len() - 1, "r/b/policy/").is_empty());
    }
}
