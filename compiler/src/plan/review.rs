//! Whether a plan may be applied: the refusals (conflicts, mass deletion),
//! and the comparison of a reviewed, saved plan with a fresh one.

use super::{Change, Plan, DEFAULT_MASS_DELETE_PERCENT, MASS_DELETE_CAP};
use std::collections::BTreeMap;

/// Why a plan must not be applied (or, for `plan`, why it fails), if it
/// must not.
pub fn refusal(plan: &Plan, allow_mass_delete: bool) -> Option<String> {
    // A conflict blocks its own agent (see [`Plan::blocked_agents`]); one
    // that names no agent blocks the plan.
    if plan.conflicts.iter().any(|c| c.agent.is_none()) {
        return Some(format!(
            "{} cannot be created because an object writ does not own has its name; rename the agent or remove that object",
            if plan.conflicts.len() == 1 {
                "1 object".to_string()
            } else {
                format!("{} objects", plan.conflicts.len())
            }
        ));
    }
    if let Some((removed, managed)) = plan.mass_delete(DEFAULT_MASS_DELETE_PERCENT) {
        if !allow_mass_delete {
            let (_, replaces) = plan.removals();
            let replaced = if replaces > 0 {
                format!(" ({replaces} of them replaced: deleted and made again, so each new IAM role gets a new role id, and policies elsewhere that name the old one stop matching)")
            } else {
                String::new()
            };
            return Some(format!(
                "refusing a plan that deletes or replaces {removed} of the {managed} objects writ manages{replaced}: more than {DEFAULT_MASS_DELETE_PERCENT}%, or more than {MASS_DELETE_CAP}; pass `--allow-mass-delete` if that is intended"
            ));
        }
    }
    None
}

/// Where and how the saved plan was made, against the fresh one: another
/// account or cluster, a snapshot instead of the live providers, another
/// writ, another source.
fn origin_differences(saved: &Plan, fresh: &Plan) -> Vec<String> {
    let mut differences = Vec::new();
    if saved.format_version != fresh.format_version {
        differences.push(format!(
            "the plan is of format version {}, this writ makes version {}",
            saved.format_version, fresh.format_version
        ));
    }
    fn made(plan: &Plan) -> Option<&str> {
        plan.origin.as_ref().map(|o| o.observed.as_str())
    }
    match (made(saved), &saved.origin, &fresh.origin) {
        (None, _, _) => differences.push(
            "the plan does not say how it was made (an older writ, or edited): make a new plan"
                .to_string(),
        ),
        (Some(made), _, _) if made != "live" => differences.push(
            "the plan was made from a snapshot, not from the live providers: it may describe another place entirely"
                .to_string(),
        ),
        (_, Some(saved_origin), Some(fresh_origin)) => {
            if saved_origin.writ_version != fresh_origin.writ_version {
                differences.push(format!(
                    "the plan was made by writ {}, this is writ {}",
                    saved_origin.writ_version, fresh_origin.writ_version
                ));
            }
            if saved_origin.source_digest != fresh_origin.source_digest {
                differences.push("the source changed since the plan was made".to_string());
            }
        }
        _ => {}
    }
    for identity in &fresh.identities {
        match saved
            .identities
            .iter()
            .find(|s| s.provider == identity.provider)
        {
            Some(was) if was.place != identity.place => differences.push(format!(
                "`{}` is {} now, but the plan was made against {}",
                identity.provider, identity.place, was.place
            )),
            Some(_) => {}
            None if made(saved) == Some("live") => {
                differences.push(format!("the plan was made without `{}`", identity.provider))
            }
            None => {}
        }
    }
    differences
}

/// What differs between a saved plan and a fresh one, in words; empty when
/// the saved plan is still exactly what would be done.
pub fn stale_differences(saved: &Plan, fresh: &Plan) -> Vec<String> {
    let mut differences = origin_differences(saved, fresh);
    if saved.project != fresh.project {
        differences.push(format!(
            "the plan is for project `{}`, not `{}`",
            saved.project, fresh.project
        ));
    }
    // What a change does, not how it is worded: a reason can read
    // otherwise once a run's record is found or cleared.
    let by_address = |plan: &Plan| -> BTreeMap<String, Change> {
        plan.changes
            .iter()
            .map(|c| {
                (
                    c.address.clone(),
                    Change {
                        reason: String::new(),
                        ..c.clone()
                    },
                )
            })
            .collect()
    };
    let (old, new) = (by_address(saved), by_address(fresh));
    for (address, change) in &old {
        match new.get(address) {
            None => differences.push(format!("{address}: in the saved plan, no longer needed")),
            Some(now) if now != change => {
                let what = if now.after != change.after {
                    "the source changed"
                } else if now.before != change.before {
                    "the live object changed"
                } else {
                    "the change differs"
                };
                differences.push(format!("{address}: {what} since the plan was made"));
            }
            Some(_) => {}
        }
    }
    for address in new.keys().filter(|a| !old.contains_key(*a)) {
        differences.push(format!("{address}: needed now, not in the saved plan"));
    }
    differences
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{plan_of_changes, Action};
    use crate::resource::ResourceKind;

    fn change(i: usize, actions: Vec<Action>) -> Change {
        Change {
            address: format!("aws.prod/role/a{i}"),
            provider: "aws.prod".into(),
            kind: ResourceKind::AwsRole,
            agent: Some(format!("a{i}")),
            actions,
            before: None,
            after: None,
            changed_paths: Vec::new(),
            replace_because: None,
            reason: String::new(),
        }
    }

    fn planned(deletes: usize, replaces: usize, managed: usize) -> Plan {
        let mut changes: Vec<Change> = (0..deletes)
            .map(|i| change(i, vec![Action::Delete]))
            .collect();
        changes
            .extend((0..replaces).map(|i| change(1000 + i, vec![Action::Delete, Action::Create])));
        let mut plan = plan_of_changes(changes);
        plan.summary.managed = managed;
        plan
    }

    #[test]
    fn the_breaker_counts_replacements_has_a_cap_and_a_floor() {
        // Replacing 20 of 40 roles gives each a new role id: refused.
        let refused = refusal(&planned(0, 20, 40), false).unwrap();
        assert!(refused.contains("20 of them replaced"), "{refused}");
        assert!(refusal(&planned(0, 20, 40), true).is_none());
        // Past the cap, whatever the share.
        assert!(refusal(&planned(51, 0, 100_000), false).is_some());
        assert!(refusal(&planned(50, 0, 100_000), false).is_none());
        // One agent of three: over the share, under the floor.
        assert!(refusal(&planned(3, 0, 9), false).is_none());
        assert!(refusal(&planned(6, 0, 9), false).is_some());
    }
}
