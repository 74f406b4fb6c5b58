//! The seeding policy: when a seeding torrent has reached its ratio or time.

use super::*;

/// Where a seeding torrent stands against the seeding policy.
#[derive(Debug, PartialEq)]
pub(super) enum SeedGoal {
    Never,
    /// Not yet; the time limit is due then.
    At(Instant),
    Reached(String),
}

pub(super) fn seed_goal(policy: &SeedPolicy, ratio: f64, since: Instant, now: Instant) -> SeedGoal {
    if let Some(r) = policy.stop_at_ratio {
        if ratio >= r {
            return SeedGoal::Reached(format!("ratio {ratio:.2} >= {r}"));
        }
    }
    // A deadline past what the clock can hold is never reached (policies are validated, but
    // the clock's own range is the platform's).
    match policy
        .stop_after_secs
        .and_then(|secs| Some((secs, since.checked_add(Duration::from_secs(secs))?)))
    {
        Some((secs, at)) if now >= at => SeedGoal::Reached(format!("seeded for {secs} s")),
        Some((_, at)) => SeedGoal::At(at),
        None => SeedGoal::Never,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::control::MAX_SEED_SECS;

    #[test]
    fn a_seed_deadline_past_the_clock_is_never_reached() {
        let now = Instant::now();
        let forever = SeedPolicy {
            stop_at_ratio: None,
            stop_after_secs: Some(u64::MAX),
        };
        assert!(matches!(
            seed_goal(&forever, 0.0, now, now),
            SeedGoal::Never
        ));
        let longest = SeedPolicy {
            stop_after_secs: Some(MAX_SEED_SECS),
            ..forever
        };
        assert!(matches!(seed_goal(&longest, 0.0, now, now), SeedGoal::At(at) if at > now));
        let short = SeedPolicy {
            stop_after_secs: Some(5),
            ..forever
        };
        let later = now + Duration::from_secs(5);
        assert!(matches!(
            seed_goal(&short, 0.0, now, later),
            SeedGoal::Reached(_)
        ));
    }
}
