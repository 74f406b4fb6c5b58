//! How a rate-limited download budget is split over a torrent's lanes.
//!
//! Without a limit every lane fills its own pipeline. Under a limit the budget is scarce, and
//! handing it to the fastest lane first (the unlimited order) starves the others for good: a
//! lane that gets no requests never shows a rate, so it stays last. Here the budget is
//! water-filled instead: every lane gets an equal share unless its free pipeline is smaller,
//! what it cannot take goes to the others, and the few blocks left over go to the lanes with
//! the fewest requests in flight, on a tie to the one that waited longest — so a budget that
//! trickles in one block at a time still reaches every lane, in turn.

/// One lane's room for new requests, the requests it already has in flight, and when it was
/// last given some (any increasing count; smaller = longer ago).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LaneRoom {
    pub free: usize,
    pub in_flight: usize,
    pub last_asked: u64,
}

/// Blocks to request on each lane (same order as `lanes`) within `budget` blocks, written to
/// `shares` (a buffer the caller keeps: this runs on every tick of a busy torrent).
pub fn fair_shares(lanes: &[LaneRoom], budget: usize, shares: &mut Vec<usize>) {
    shares.clear();
    let wanted = lanes.iter().fold(0usize, |s, l| s.saturating_add(l.free));
    if wanted <= budget {
        shares.extend(lanes.iter().map(|l| l.free));
        return;
    }
    shares.resize(lanes.len(), 0);
    let mut left = budget;
    // Smallest rooms first: a lane whose room is below an equal share of what is left takes
    // it all; from the first that does not, every lane gets the same level.
    let mut by_room: Vec<usize> = (0..lanes.len()).collect();
    by_room.sort_by_key(|&i| lanes[i].free);
    for (k, &i) in by_room.iter().enumerate() {
        let sharing = lanes.len() - k;
        if lanes[i].free.saturating_mul(sharing) <= left {
            shares[i] = lanes[i].free;
            left -= lanes[i].free;
        } else {
            let level = left / sharing;
            for &j in &by_room[k..] {
                shares[j] = level;
            }
            left -= level * sharing;
            break;
        }
    }
    // Fewer than lanes.len() blocks remain: one each to the lanes with least in flight; on a
    // tie the one that waited longest for a request.
    let mut by_load: Vec<usize> = (0..lanes.len()).collect();
    by_load.sort_by_key(|&i| (lanes[i].in_flight + shares[i], lanes[i].last_asked));
    for i in by_load {
        if left == 0 {
            break;
        }
        if shares[i] < lanes[i].free {
            shares[i] += 1;
            left -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fair_shares(lanes: &[LaneRoom], budget: usize) -> Vec<usize> {
        let mut shares = Vec::new();
        super::fair_shares(lanes, budget, &mut shares);
        shares
    }

    fn room(free: usize, in_flight: usize) -> LaneRoom {
        LaneRoom {
            free,
            in_flight,
            last_asked: 0,
        }
    }

    #[test]
    fn enough_budget_fills_every_pipeline() {
        let lanes = [room(10, 0), room(3, 5)];
        assert_eq!(fair_shares(&lanes, 100), vec![10, 3]);
        assert_eq!(fair_shares(&lanes, usize::MAX), vec![10, 3]);
    }

    #[test]
    fn a_scarce_budget_is_split_equally() {
        let lanes = [room(100, 50), room(100, 0), room(100, 0)];
        assert_eq!(fair_shares(&lanes, 30), vec![10, 10, 10]);
    }

    #[test]
    fn what_a_small_pipeline_cannot_take_goes_to_the_others() {
        let lanes = [room(100, 0), room(2, 0), room(100, 0)];
        assert_eq!(fair_shares(&lanes, 30), vec![14, 2, 14]);
    }

    #[test]
    fn a_trickling_budget_goes_to_the_least_loaded_lane() {
        // The first lane is the fastest and has most in flight; one block goes elsewhere.
        let lanes = [room(40, 60), room(16, 0), room(16, 3)];
        assert_eq!(fair_shares(&lanes, 1), vec![0, 1, 0]);
        assert_eq!(fair_shares(&lanes, 2), vec![0, 1, 1]);
    }

    #[test]
    fn on_a_tie_the_trickle_takes_turns() {
        // Lanes that deliver at once have nothing in flight: the one asked longest ago wins.
        let mut lanes = [room(40, 0), room(16, 0), room(16, 0)];
        let mut got = [0; 3];
        for turn in 1..=30 {
            let shares = fair_shares(&lanes, 1);
            let i = shares.iter().position(|&s| s == 1).unwrap();
            got[i] += 1;
            lanes[i].last_asked = turn;
        }
        assert_eq!(got, [10, 10, 10]);
    }

    #[test]
    fn never_more_than_the_budget_or_the_room() {
        for budget in 0..50 {
            let lanes = [room(7, 1), room(0, 9), room(13, 0), room(5, 5)];
            let shares = fair_shares(&lanes, budget);
            assert!(shares.iter().sum::<usize>() <= budget);
            assert_eq!(
                shares.iter().sum::<usize>(),
                budget.min(25),
                "budget {budget}"
            );
            for (s, l) in shares.iter().zip(&lanes) {
                assert!(*s <= l.free);
            }
        }
    }
}
