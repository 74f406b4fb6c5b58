//! Which SCION paths a peer's lanes use.
//!
//! Greedy disjoint selection: candidates are ordered by the [`Preference`] (by default known
//! latency — an unknown one after every known —, hop count, MTU), the first is taken, then each next pick is the candidate sharing the fewest links with the
//! paths already chosen (zero = link-disjoint, preferred). Links are identified by the
//! interfaces at their ends (ISD-AS + interface id), so two paths that cross the same inter-AS
//! link are never called disjoint. Paths that recently failed are skipped while others exist.

use std::collections::HashSet;

use super::preference::Preference;
use crate::scion::{PathFingerprint, ScionPath};

/// Picks up to `max` paths, preferring link-disjoint ones. `avoid` lists paths that recently
/// died; they are used only if nothing else is left.
pub fn choose_paths(
    candidates: &[ScionPath],
    max: usize,
    avoid: &HashSet<PathFingerprint>,
    pref: &Preference,
) -> Vec<ScionPath> {
    let mut pool: Vec<&ScionPath> = candidates
        .iter()
        .filter(|p| !avoid.contains(&p.fingerprint()))
        .collect();
    if pool.is_empty() {
        pool = candidates.iter().collect();
    }
    pool.sort_by(|a, b| pref.compare(a, b));
    let mut chosen: Vec<ScionPath> = Vec::new();
    while chosen.len() < max && !pool.is_empty() {
        let (best, _) = pool
            .iter()
            .enumerate()
            .min_by_key(|(i, p)| (shared_links(p, &chosen), *i))
            .expect("pool is not empty");
        chosen.push(pool.remove(best).clone());
    }
    chosen
}

/// All link-disjoint paths among the candidates (the default lane count).
pub fn disjoint_count(candidates: &[ScionPath]) -> usize {
    let all = choose_paths(
        candidates,
        candidates.len(),
        &HashSet::new(),
        &Preference::default(),
    );
    let mut n = 0;
    for (i, p) in all.iter().enumerate() {
        if all[..i].iter().all(|q| !p.shares_link_with(q)) {
            n += 1;
        }
    }
    n.max(1)
}

fn shared_links(p: &ScionPath, chosen: &[ScionPath]) -> usize {
    let links: HashSet<_> = p.links().into_iter().collect();
    chosen
        .iter()
        .map(|c| c.links().iter().filter(|l| links.contains(l)).count())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scion::{parse_ia, PathInterface};
    use std::time::Duration;

    fn path(hops: &[(&str, u16)]) -> ScionPath {
        let mut p = ScionPath::local(parse_ia("1-ff00:0:111").unwrap());
        p.dst_ia = parse_ia("1-ff00:0:112").unwrap();
        p.raw = bytes::Bytes::from_static(b"x");
        p.interfaces = hops
            .iter()
            .map(|(ia, id)| PathInterface {
                ia: parse_ia(ia).unwrap(),
                id: *id,
            })
            .collect();
        p
    }

    #[test]
    fn prefers_disjoint_paths() {
        let a = path(&[
            ("1-ff00:0:111", 1),
            ("1-ff00:0:120", 1),
            ("1-ff00:0:120", 2),
            ("1-ff00:0:112", 1),
        ]);
        // shares the first link with a
        let b = path(&[
            ("1-ff00:0:111", 1),
            ("1-ff00:0:120", 1),
            ("1-ff00:0:120", 3),
            ("1-ff00:0:130", 1),
            ("1-ff00:0:130", 2),
            ("1-ff00:0:112", 3),
        ]);
        let c = path(&[
            ("1-ff00:0:111", 2),
            ("1-ff00:0:121", 1),
            ("1-ff00:0:121", 2),
            ("1-ff00:0:112", 2),
        ]);
        let got = choose_paths(
            &[a.clone(), b.clone(), c.clone()],
            2,
            &HashSet::new(),
            &Preference::default(),
        );
        assert_eq!(got, vec![a.clone(), c.clone()]);
        assert_eq!(disjoint_count(&[a.clone(), b.clone(), c.clone()]), 2);
        // all three when asked, the overlapping one last
        let all = choose_paths(
            &[b.clone(), a.clone(), c.clone()],
            3,
            &HashSet::new(),
            &Preference::default(),
        );
        assert_eq!(all.last(), Some(&b));
    }

    #[test]
    fn measured_latency_sorts_before_unknown_and_then_by_value() {
        let ms = |v| Some(Duration::from_millis(v));
        let mut unknown = path(&[("1-ff00:0:111", 1), ("1-ff00:0:112", 1)]);
        unknown.latency = vec![None];
        let mut slow = path(&[
            ("1-ff00:0:111", 2),
            ("1-ff00:0:121", 1),
            ("1-ff00:0:121", 2),
            ("1-ff00:0:112", 2),
        ]);
        slow.latency = vec![ms(40), ms(40)];
        let mut fast = path(&[
            ("1-ff00:0:111", 3),
            ("1-ff00:0:131", 1),
            ("1-ff00:0:131", 2),
            ("1-ff00:0:112", 3),
        ]);
        fast.latency = vec![ms(5), ms(10)];
        let none = path(&[("1-ff00:0:111", 4), ("1-ff00:0:112", 4)]);
        let got = choose_paths(
            &[unknown.clone(), none.clone(), slow.clone(), fast.clone()],
            4,
            &HashSet::new(),
            &Preference::default(),
        );
        assert_eq!(&got[..2], &[fast, slow], "measured first, fastest first");
        assert!(got[2..].contains(&unknown) && got[2..].contains(&none));
    }

    #[test]
    fn avoids_failed_paths_while_others_exist() {
        let a = path(&[("1-ff00:0:111", 1), ("1-ff00:0:112", 1)]);
        let c = path(&[
            ("1-ff00:0:111", 2),
            ("1-ff00:0:121", 1),
            ("1-ff00:0:121", 2),
            ("1-ff00:0:112", 2),
        ]);
        let avoid: HashSet<_> = [a.fingerprint()].into();
        assert_eq!(
            choose_paths(&[a.clone(), c.clone()], 1, &avoid, &Preference::default()),
            vec![c.clone()]
        );
        let avoid_all: HashSet<_> = [a.fingerprint(), c.fingerprint()].into();
        assert_eq!(
            choose_paths(&[a.clone(), c], 1, &avoid_all, &Preference::default()).len(),
            1
        );
    }
}
