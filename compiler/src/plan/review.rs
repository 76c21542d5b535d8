//! Whether a plan may be applied: the refusals (conflicts, mass deletion),
//! and the comparison of a reviewed, saved plan with a fresh one.

use super::{Change, Plan, DEFAULT_MASS_DELETE_PERCENT};
use std::collections::BTreeMap;

/// Why a plan must not be applied (or, for `plan`, why it fails), if it
/// must not.
pub fn refusal(plan: &Plan, allow_mass_delete: bool) -> Option<String> {
    if !plan.conflicts.is_empty() {
        return Some(format!(
            "{} cannot be created because an object writ does not own has its name; rename the agent or remove that object",
            if plan.conflicts.len() == 1 {
                "1 object".to_string()
            } else {
                format!("{} objects", plan.conflicts.len())
            }
        ));
    }
    if let Some((deletes, managed)) = plan.mass_delete(DEFAULT_MASS_DELETE_PERCENT) {
        if !allow_mass_delete {
            return Some(format!(
                "refusing a plan that deletes {deletes} of the {managed} objects writ manages (more than {DEFAULT_MASS_DELETE_PERCENT}%); pass `--allow-mass-delete` if that is intended"
            ));
        }
    }
    None
}

/// What differs between a saved plan and a fresh one, in words; empty when
/// the saved plan is still exactly what would be done.
pub fn stale_differences(saved: &Plan, fresh: &Plan) -> Vec<String> {
    let mut differences = Vec::new();
    if saved.project != fresh.project {
        differences.push(format!(
            "the plan is for project `{}`, not `{}`",
            saved.project, fresh.project
        ));
    }
    let by_address = |plan: &Plan| -> BTreeMap<String, Change> {
        plan.changes
            .iter()
            .map(|c| (c.address.clone(), c.clone()))
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
