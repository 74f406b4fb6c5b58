//! The choker, as a policy of its own (libtorrent keeps its choker apart from the peer
//! connection the same way): every round it picks the interested peers we upload to — the best
//! `upload_slots - 1` by rate plus one optimistic slot that rotates, so a new peer gets a
//! chance — and then which of their lanes are served, so that leechers behind the same SCION
//! links do not all fight on every link. It decides; the session tells the peers.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use rustc_hash::FxHashMap;

use super::session::{LaneId, PeerId};

/// How often the unchoked set is chosen again.
pub const CHOKE_ROUND: Duration = Duration::from_secs(10);
/// How long the optimistic slot stays with one peer.
pub const OPTIMISTIC_ROUND: Duration = Duration::from_secs(30);

/// An interested peer as the choker sees it.
#[derive(Debug, Clone, Copy)]
pub struct Candidate {
    pub peer: PeerId,
    /// What it gives us while we leech, what we give it while we seed (bytes/s).
    pub rate: f64,
    /// It holds the optimistic slot now.
    pub optimistic: bool,
}

/// One round's choice.
#[derive(Debug, Default, PartialEq)]
pub struct Unchoked {
    pub peers: HashSet<PeerId>,
    pub optimistic: Option<PeerId>,
}

/// When the rounds are due.
pub struct Choker {
    next_round: Instant,
    next_optimistic: Instant,
}

impl Choker {
    pub fn new(now: Instant) -> Self {
        Self {
            next_round: now,
            next_optimistic: now + OPTIMISTIC_ROUND,
        }
    }

    /// When the next round is due.
    pub fn next_round(&self) -> Instant {
        self.next_round
    }

    /// Something changed (a peer got interested, a lane opened or closed): choose now.
    pub fn wake(&mut self, now: Instant) {
        self.next_round = now;
    }

    pub fn is_due(&self, now: Instant) -> bool {
        now >= self.next_round
    }

    /// Chooses the peers to unchoke among `interested` with `upload_slots` slots.
    pub fn round(
        &mut self,
        mut interested: Vec<Candidate>,
        upload_slots: usize,
        now: Instant,
    ) -> Unchoked {
        self.next_round = now + CHOKE_ROUND;
        let rotate = now >= self.next_optimistic;
        if rotate {
            self.next_optimistic = now + OPTIMISTIC_ROUND;
        }
        interested.sort_by(|a, b| b.rate.total_cmp(&a.rate).then(a.peer.cmp(&b.peer)));
        let regular = upload_slots.saturating_sub(1).max(1);
        let mut peers: HashSet<PeerId> = interested.iter().take(regular).map(|c| c.peer).collect();
        // The optimistic slot: kept until rotation, else the next choked peer.
        let rest: Vec<&Candidate> = interested.iter().skip(regular).collect();
        let current = rest.iter().find(|c| c.optimistic).map(|c| c.peer);
        let optimistic = match (current, rotate) {
            (Some(c), false) => Some(c),
            _ if rest.is_empty() => None,
            _ => {
                let k = (now.elapsed().as_nanos() as usize + rest.len()) % rest.len();
                Some(rest[k].peer)
            }
        };
        peers.extend(optimistic);
        Unchoked { peers, optimistic }
    }
}

/// Fairness between leechers competing for our upload: when several peers are unchoked, their
/// lanes are admitted round-robin, one lane per peer per round, and a lane only if it shares no
/// link with lanes already admitted. Every unchoked peer keeps at least its first lane, and no
/// peer more than `cap`. So two leechers behind the same three paths get disjoint subsets of
/// them instead of all six lanes fighting on every link (the original client's fairness idea,
/// without its dial-back). Returns the lanes of `unchoked` peers that are *not* admitted.
pub fn lanes_not_admitted(
    unchoked: &[(PeerId, Vec<LaneId>)],
    links: &FxHashMap<LaneId, Vec<u64>>,
    cap: usize,
) -> HashSet<LaneId> {
    let cap = cap.max(1);
    let mut refused: HashSet<LaneId> = HashSet::new();
    if unchoked.len() < 2 {
        // One peer: its first lanes, up to the cap.
        for (_, lanes) in unchoked {
            refused.extend(lanes.iter().skip(cap));
        }
        return refused;
    }
    let no_links: Vec<u64> = Vec::new();
    let links_of = |id: &LaneId| links.get(id).unwrap_or(&no_links);
    let mut remaining: Vec<Vec<LaneId>> = unchoked.iter().map(|(_, l)| l.clone()).collect();
    refused.extend(remaining.iter().flatten().copied());
    let mut used: HashSet<u64> = HashSet::new();
    let mut admitted = vec![0usize; remaining.len()];
    let mut first_round = true;
    loop {
        let mut progress = false;
        for (lanes, admitted) in remaining.iter_mut().zip(admitted.iter_mut()) {
            if *admitted >= cap {
                continue;
            }
            let overlap = |id: &LaneId| links_of(id).iter().filter(|x| used.contains(x)).count();
            let best = lanes
                .iter()
                .enumerate()
                .min_by_key(|(i, id)| (overlap(id), *i))
                .map(|(i, id)| (i, overlap(id)));
            let Some((i, o)) = best else { continue };
            // After the first round (everyone keeps one lane), only link-disjoint lanes.
            if o > 0 && !first_round {
                continue;
            }
            let id = lanes.remove(i);
            used.extend(links_of(&id).iter().copied());
            refused.remove(&id);
            *admitted += 1;
            progress = true;
        }
        first_round = false;
        if !progress {
            break;
        }
    }
    refused
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(tag: u8, rate: f64) -> Candidate {
        Candidate {
            peer: [tag; 20],
            rate,
            optimistic: false,
        }
    }

    #[test]
    fn the_fastest_peers_and_one_optimistic_slot_are_unchoked() {
        let now = Instant::now();
        let mut choker = Choker::new(now);
        let interested: Vec<Candidate> = (1..=5)
            .map(|k| candidate(k, f64::from(k) * 100.0))
            .collect();
        let u = choker.round(interested.clone(), 3, now);
        // Two regular slots: the two fastest; the third is optimistic, among the others.
        assert!(u.peers.contains(&[5; 20]) && u.peers.contains(&[4; 20]));
        assert_eq!(u.peers.len(), 3);
        let o = u.optimistic.expect("an optimistic slot");
        assert!(o != [5; 20] && o != [4; 20]);
        // Before the optimistic round ends the slot stays where it is.
        let mut again = interested;
        for c in &mut again {
            c.optimistic = c.peer == o;
        }
        let later = now + CHOKE_ROUND;
        assert_eq!(choker.round(again, 3, later).optimistic, Some(o));
        assert_eq!(choker.next_round(), later + CHOKE_ROUND);
    }

    #[test]
    fn two_leechers_behind_the_same_links_get_disjoint_lanes() {
        // Peer 1's lanes 1,2,3 and peer 2's lanes 4,5,6 run over links a,b,c pairwise.
        let links: FxHashMap<LaneId, Vec<u64>> = [
            (1, vec![10]),
            (2, vec![20]),
            (3, vec![30]),
            (4, vec![10]),
            (5, vec![20]),
            (6, vec![30]),
        ]
        .into_iter()
        .collect();
        let unchoked = vec![([1; 20], vec![1, 2, 3]), ([2; 20], vec![4, 5, 6])];
        let refused = lanes_not_admitted(&unchoked, &links, usize::MAX);
        let admitted: Vec<LaneId> = (1..=6).filter(|l| !refused.contains(l)).collect();
        // Each keeps at least one lane and no link carries two admitted lanes.
        assert!(admitted.iter().any(|l| *l <= 3) && admitted.iter().any(|l| *l > 3));
        let mut used: Vec<u64> = admitted.iter().flat_map(|l| links[l].clone()).collect();
        used.sort_unstable();
        used.dedup();
        assert_eq!(used.len(), admitted.len(), "{admitted:?}");
        // One peer alone gets its lanes up to the cap.
        let alone = lanes_not_admitted(&unchoked[..1], &links, 2);
        assert_eq!(alone, HashSet::from([3]));
    }
}
