//! Broker-side assignors of the KIP-848 consumer protocol: `uniform` (balanced and
//! sticky) and `range` (contiguous ranges per topic, as the classic RangeAssignor).

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

/// Partitions by topic id.
pub(crate) type Assignment = BTreeMap<Uuid, BTreeSet<i32>>;

/// What an assignor sees of one member.
pub(crate) struct AssignorMember<'a> {
    pub(crate) member_id: &'a str,
    /// The topics the member subscribes to that exist.
    pub(crate) topics: BTreeSet<Uuid>,
    /// The member's previous target assignment, for stickiness.
    pub(crate) previous: Option<&'a Assignment>,
}

/// The assignor names this broker accepts; the first is the default.
pub(crate) const ASSIGNORS: &[&str] = &["uniform", "range"];

/// Runs the named assignor; `partitions` gives each subscribed topic's partition count.
pub(crate) fn assign(
    name: &str,
    members: &[AssignorMember<'_>],
    partitions: &BTreeMap<Uuid, i32>,
) -> BTreeMap<String, Assignment> {
    match name {
        "range" => range(members, partitions),
        _ => uniform(members, partitions),
    }
}

fn range(
    members: &[AssignorMember<'_>],
    partitions: &BTreeMap<Uuid, i32>,
) -> BTreeMap<String, Assignment> {
    let mut out: BTreeMap<String, Assignment> = members
        .iter()
        .map(|m| (m.member_id.to_string(), Assignment::new()))
        .collect();
    for (topic, count) in partitions {
        let mut subscribers: Vec<&str> = members
            .iter()
            .filter(|m| m.topics.contains(topic))
            .map(|m| m.member_id)
            .collect();
        subscribers.sort_unstable();
        if subscribers.is_empty() {
            continue;
        }
        let n = subscribers.len() as i32;
        let (per, extra) = (count / n, count % n);
        let mut next = 0;
        for (i, member) in subscribers.iter().enumerate() {
            let take = per + i32::from((i as i32) < extra);
            let parts: BTreeSet<i32> = (next..next + take).collect();
            next += take;
            if !parts.is_empty() {
                if let Some(a) = out.get_mut(*member) {
                    a.insert(*topic, parts);
                }
            }
        }
    }
    out
}

/// Keeps each partition with its previous owner where that owner still subscribes, gives
/// the rest to the least-loaded subscriber, then moves partitions from the most to the
/// least loaded subscriber of their topic until no move narrows the gap.
fn uniform(
    members: &[AssignorMember<'_>],
    partitions: &BTreeMap<Uuid, i32>,
) -> BTreeMap<String, Assignment> {
    let mut owner: BTreeMap<(Uuid, i32), usize> = BTreeMap::new();
    let mut load = vec![0usize; members.len()];
    // Stickiness: previous owners keep what they still subscribe to.
    for (i, m) in members.iter().enumerate() {
        for (topic, parts) in m.previous.into_iter().flatten() {
            let Some(count) = partitions.get(topic) else {
                continue;
            };
            if !m.topics.contains(topic) {
                continue;
            }
            for p in parts {
                if *p < *count && !owner.contains_key(&(*topic, *p)) {
                    owner.insert((*topic, *p), i);
                    load[i] += 1;
                }
            }
        }
    }
    for (topic, count) in partitions {
        for p in 0..*count {
            if owner.contains_key(&(*topic, p)) {
                continue;
            }
            let best = (0..members.len())
                .filter(|i| members[*i].topics.contains(topic))
                .min_by_key(|i| (load[*i], members[*i].member_id));
            if let Some(i) = best {
                owner.insert((*topic, p), i);
                load[i] += 1;
            }
        }
    }
    // Balance: each move takes a partition from a member with at least two more than
    // a fellow subscriber; the sum of squared loads falls, so this ends.
    loop {
        let mut moved = false;
        let keys: Vec<(Uuid, i32)> = owner.keys().rev().cloned().collect();
        for key in keys {
            let Some(&from) = owner.get(&key) else {
                continue;
            };
            let to = (0..members.len())
                .filter(|i| members[*i].topics.contains(&key.0))
                .min_by_key(|i| (load[*i], members[*i].member_id));
            if let Some(to) = to {
                if load[from] >= load[to] + 2 {
                    owner.insert(key, to);
                    load[from] -= 1;
                    load[to] += 1;
                    moved = true;
                }
            }
        }
        if !moved {
            break;
        }
    }
    let mut out: BTreeMap<String, Assignment> = members
        .iter()
        .map(|m| (m.member_id.to_string(), Assignment::new()))
        .collect();
    for ((topic, p), i) in owner {
        if let Some(a) = out.get_mut(members[i].member_id) {
            a.entry(topic).or_default().insert(p);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member<'a>(
        id: &'a str,
        topics: &[Uuid],
        previous: Option<&'a Assignment>,
    ) -> AssignorMember<'a> {
        AssignorMember {
            member_id: id,
            topics: topics.iter().cloned().collect(),
            previous,
        }
    }

    fn counts(a: &BTreeMap<String, Assignment>) -> Vec<usize> {
        a.values()
            .map(|x| x.values().map(BTreeSet::len).sum())
            .collect()
    }

    fn union(a: &BTreeMap<String, Assignment>, topic: Uuid) -> Vec<i32> {
        let mut all: Vec<i32> = a
            .values()
            .flat_map(|x| x.get(&topic).into_iter().flatten().cloned())
            .collect();
        all.sort_unstable();
        all
    }

    #[test]
    fn uniform_balances_and_covers_every_partition_once() {
        let t = Uuid::from_u128(1);
        let parts = BTreeMap::from([(t, 12)]);
        let ms = [
            member("a", &[t], None),
            member("b", &[t], None),
            member("c", &[t], None),
        ];
        let a = assign("uniform", &ms, &parts);
        assert_eq!(counts(&a), vec![4, 4, 4]);
        assert_eq!(union(&a, t), (0..12).collect::<Vec<_>>());
    }

    #[test]
    fn uniform_is_sticky_when_a_member_joins() {
        let t = Uuid::from_u128(1);
        let parts = BTreeMap::from([(t, 12)]);
        let before = assign(
            "uniform",
            &[member("a", &[t], None), member("b", &[t], None)],
            &parts,
        );
        let ms = [
            member("a", &[t], before.get("a")),
            member("b", &[t], before.get("b")),
            member("c", &[t], None),
        ];
        let after = assign("uniform", &ms, &parts);
        assert_eq!(counts(&after), vec![4, 4, 4]);
        assert_eq!(union(&after, t), (0..12).collect::<Vec<_>>());
        for m in ["a", "b"] {
            let kept = after[m][&t].is_subset(&before[m][&t]);
            assert!(kept, "{m} only lost partitions, it gained none");
        }
    }

    #[test]
    fn range_gives_contiguous_ranges_per_topic() {
        let t = Uuid::from_u128(7);
        let parts = BTreeMap::from([(t, 5)]);
        let a = assign(
            "range",
            &[member("m2", &[t], None), member("m1", &[t], None)],
            &parts,
        );
        assert_eq!(a["m1"][&t], BTreeSet::from([0, 1, 2]));
        assert_eq!(a["m2"][&t], BTreeSet::from([3, 4]));
    }

    #[test]
    fn only_subscribers_get_a_topic() {
        let (t1, t2) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let parts = BTreeMap::from([(t1, 4), (t2, 4)]);
        let a = assign(
            "uniform",
            &[member("a", &[t1], None), member("b", &[t1, t2], None)],
            &parts,
        );
        assert!(!a["a"].contains_key(&t2));
        assert_eq!(union(&a, t1), vec![0, 1, 2, 3]);
        assert_eq!(union(&a, t2), vec![0, 1, 2, 3]);
    }
}
