//! The range assignor (Kafka's default for the classic protocol): per topic, members in
//! sorted order each get a contiguous range of partitions; the first `partitions % members`
//! get one extra.

use std::collections::BTreeMap;

/// Assigns each topic's partitions to the members subscribed to it.
/// `subscriptions`: member -> topics; `partitions`: topic -> partition count.
/// Returns member -> (topic, partition) list, every member present (possibly empty).
pub fn range_assign(
    subscriptions: &BTreeMap<String, Vec<String>>,
    partitions: &BTreeMap<String, i32>,
) -> BTreeMap<String, Vec<(String, i32)>> {
    let mut out: BTreeMap<String, Vec<(String, i32)>> = subscriptions
        .keys()
        .map(|m| (m.clone(), Vec::new()))
        .collect();
    for (topic, &count) in partitions {
        let members: Vec<&String> = subscriptions
            .iter()
            .filter(|(_, topics)| topics.contains(topic))
            .map(|(m, _)| m)
            .collect();
        if members.is_empty() || count <= 0 {
            continue;
        }
        let n = members.len() as i32;
        let (per, extra) = (count / n, count % n);
        let mut next = 0;
        for (i, member) in members.into_iter().enumerate() {
            let take = per + i32::from((i as i32) < extra);
            if let Some(list) = out.get_mut(member) {
                list.extend((next..next + take).map(|p| (topic.clone(), p)));
            }
            next += take;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_cover_every_partition_once() {
        let subs: BTreeMap<String, Vec<String>> = ["a", "b", "c"]
            .iter()
            .map(|m| (m.to_string(), vec!["t".to_string()]))
            .collect();
        let parts: BTreeMap<String, i32> = [("t".to_string(), 7)].into_iter().collect();
        let a = range_assign(&subs, &parts);
        let sizes: Vec<usize> = a.values().map(Vec::len).collect();
        assert_eq!(sizes, vec![3, 2, 2]);
        let mut all: Vec<i32> = a.values().flatten().map(|(_, p)| *p).collect();
        all.sort_unstable();
        assert_eq!(all, (0..7).collect::<Vec<_>>());
    }
}
