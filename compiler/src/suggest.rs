//! "Did you mean …?": the closest candidate by edit distance.

/// The candidate closest to `word`, if one is close enough to be a likely
/// typo: within a third of the word's length (at least one edit), compared
/// case-insensitively, with an exact case-insensitive match preferred.
pub fn closest<'a>(word: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let word_lower = word.to_ascii_lowercase();
    let limit = (word.chars().count() / 3).max(1);
    let mut best: Option<(usize, &'a str)> = None;
    for candidate in candidates {
        if candidate == word {
            continue;
        }
        let candidate_lower = candidate.to_ascii_lowercase();
        let distance = if candidate_lower == word_lower {
            0
        } else {
            match bounded_distance(&word_lower, &candidate_lower, limit) {
                Some(distance) => distance,
                None => continue,
            }
        };
        if best.is_none_or(|(best_distance, _)| distance < best_distance) {
            best = Some((distance, candidate));
        }
    }
    best.map(|(_, candidate)| candidate)
}

/// Levenshtein distance (with adjacent transposition counted as one edit),
/// or `None` when it exceeds `limit`.
pub fn bounded_distance(a: &str, b: &str, limit: usize) -> Option<usize> {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    if a.len().abs_diff(b.len()) > limit {
        return None;
    }
    let mut previous_previous: Vec<usize> = vec![0; b.len() + 1];
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        current[0] = i;
        let mut row_min = current[0];
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut value = (previous[j] + 1)
                .min(current[j - 1] + 1)
                .min(previous[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                value = value.min(previous_previous[j - 2] + 1);
            }
            current[j] = value;
            row_min = row_min.min(value);
        }
        if row_min > limit {
            return None;
        }
        std::mem::swap(&mut previous_previous, &mut previous);
        std::mem::swap(&mut previous, &mut current);
    }
    let distance = previous[b.len()];
    (distance <= limit).then_some(distance)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_the_nearest_name_within_reach() {
        let names = ["invoices_read", "reports_write", "billing_bot"];
        assert_eq!(
            closest("invoice_read", names.into_iter()),
            Some("invoices_read")
        );
        assert_eq!(
            closest("reprots_write", names.into_iter()),
            Some("reports_write")
        );
        assert_eq!(closest("something_else", names.into_iter()), None);
        assert_eq!(
            closest("s3:getobject", ["s3:GetObject"].into_iter()),
            Some("s3:GetObject")
        );
    }
}
