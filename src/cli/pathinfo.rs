//! What `paths` prints under each path: the summary line, then what the daemon says about each
//! step of the route (inter-AS links and the crossings of transit ASes), the routers'
//! positions and the ASes' notes. Unknown values say so; none is printed as 0.

use std::time::SystemTime;

use crate::scion::{Geo, LinkType, ScionPath};

/// The lines describing `p`, unindented, as of `now`.
pub fn describe(p: &ScionPath, now: SystemTime) -> Vec<String> {
    let mut lines = vec![summary(p, now)];
    if p.interfaces.len() < 2 {
        return lines;
    }
    for (i, w) in p.interfaces.windows(2).enumerate() {
        let (a, b) = (w[0], w[1]);
        let latency = ms(p.latency.get(i).copied().flatten());
        let bandwidth = kbps(p.bandwidth.get(i).copied().flatten());
        // Even steps cross a link between ASes; odd ones cross a transit AS.
        let what = if i % 2 == 0 {
            let t = p.meta.link_types.get(i / 2).copied();
            format!("link {a} > {b}  type {}", t.unwrap_or(LinkType::Unknown))
        } else {
            let hops = p.meta.internal_hops.get(i / 2).copied().flatten();
            format!(
                "in {} #{} > #{}  internal hops {}",
                a.ia,
                a.id,
                b.id,
                hops.map_or("unknown".into(), |h| h.to_string())
            )
        };
        lines.push(format!("{what}  latency {latency}  bandwidth {bandwidth}"));
    }
    let geo: Vec<String> = p
        .interfaces
        .iter()
        .enumerate()
        .map(|(i, intf)| format!("{intf} {}", geo(p.meta.geo.get(i).and_then(Option::as_ref))))
        .collect();
    lines.push(format!("geo  {}", geo.join(" | ")));
    let notes: Vec<String> = p
        .ases()
        .into_iter()
        .enumerate()
        .map(
            |(i, ia)| match p.meta.notes.get(i).and_then(Option::as_ref) {
                Some(n) => format!("{ia} {n:?}"),
                None => format!("{ia} unknown"),
            },
        )
        .collect();
    lines.push(format!("notes  {}", notes.join(" | ")));
    lines
}

/// `hops 2  mtu 1472  expires in 21599s  latency 13.0 ms  bandwidth 50000 kbit/s  next hop A`
fn summary(p: &ScionPath, now: SystemTime) -> String {
    let expiry = match p.expiry {
        None => "expiry unknown".to_string(),
        Some(e) => match e.duration_since(now) {
            Ok(d) => format!("expires in {}s", d.as_secs()),
            Err(_) => "expired".to_string(),
        },
    };
    let mtu = if p.mtu == 0 {
        "unknown".to_string()
    } else {
        p.mtu.to_string()
    };
    format!(
        "hops {}  mtu {mtu}  {expiry}  latency {}  bandwidth {}  next hop {}",
        p.hop_count(),
        latency_total(p),
        kbps(p.min_bandwidth()),
        p.first_hop
            .map(|h| h.to_string())
            .unwrap_or_else(|| "direct".into())
    )
}

/// The path's total latency; with some links unannounced, the announced part as a lower bound.
fn latency_total(p: &ScionPath) -> String {
    if let Some(total) = p.total_latency() {
        return ms(Some(total));
    }
    let known: Vec<_> = p.latency.iter().flatten().collect();
    if known.is_empty() {
        return "unknown".into();
    }
    let sum = known
        .iter()
        .try_fold(std::time::Duration::ZERO, |a, l| a.checked_add(**l));
    match sum {
        Some(sum) => format!(
            ">= {} ({} of {} unknown)",
            ms(Some(sum)),
            p.latency.len() - known.len(),
            p.latency.len()
        ),
        None => "unknown".into(),
    }
}

fn ms(d: Option<std::time::Duration>) -> String {
    d.map_or("unknown".into(), |d| {
        format!("{:.1} ms", d.as_secs_f64() * 1000.0)
    })
}

fn kbps(b: Option<u64>) -> String {
    b.map_or("unknown".into(), |b| format!("{b} kbit/s"))
}

fn geo(g: Option<&Geo>) -> String {
    g.map_or("unknown".into(), |g| g.to_string())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::scion::{parse_ia, PathInterface, PathMeta};

    fn path() -> ScionPath {
        let ia = |s| parse_ia(s).unwrap();
        let mut p = ScionPath::local(ia("1-ff00:0:111"));
        p.dst_ia = ia("1-ff00:0:112");
        p.raw = bytes::Bytes::from_static(b"x");
        p.first_hop = Some("127.0.0.1:30042".parse().unwrap());
        p.interfaces = [
            ("1-ff00:0:111", 1),
            ("1-ff00:0:110", 1),
            ("1-ff00:0:110", 2),
        ]
        .into_iter()
        .chain([("1-ff00:0:112", 1)])
        .map(|(s, id)| PathInterface { ia: ia(s), id })
        .collect();
        p
    }

    #[test]
    fn nothing_known_is_unknown_never_zero() {
        let p = path();
        let lines = describe(&p, SystemTime::now());
        assert_eq!(
            lines[0],
            "hops 2  mtu unknown  expiry unknown  latency unknown  bandwidth unknown  \
             next hop 127.0.0.1:30042"
        );
        assert_eq!(
            lines[1],
            "link 1-ff00:0:111#1 > 1-ff00:0:110#1  type unknown  latency unknown  \
             bandwidth unknown"
        );
        assert_eq!(
            lines[2],
            "in 1-ff00:0:110 #1 > #2  internal hops unknown  latency unknown  bandwidth unknown"
        );
        assert!(
            lines[4].starts_with("geo  1-ff00:0:111#1 unknown | "),
            "{}",
            lines[4]
        );
        assert_eq!(
            lines[5],
            "notes  1-ff00:0:111 unknown | 1-ff00:0:110 unknown | 1-ff00:0:112 unknown"
        );
        assert!(lines.iter().all(|l| !l.contains(" 0 ")), "{lines:#?}");
        assert_eq!(
            describe(&ScionPath::local(p.src_ia), SystemTime::now()).len(),
            1
        );
    }

    #[test]
    fn everything_known() {
        let mut p = path();
        let ms = |n| Some(Duration::from_millis(n));
        p.mtu = 1472;
        let now = SystemTime::now();
        p.expiry = Some(now + Duration::from_secs(100));
        p.latency = vec![ms(5), ms(1), None];
        p.bandwidth = vec![Some(50_000), Some(1_000_000), None];
        p.meta = PathMeta {
            geo: vec![
                Some(Geo {
                    latitude: 47.5,
                    longitude: 8.25,
                    address: "Zürich".into(),
                }),
                None,
                None,
                None,
            ],
            link_types: vec![LinkType::Direct, LinkType::OpenNet],
            internal_hops: vec![Some(2)],
            notes: vec![Some("leaf \"A\"".into()), None, None],
        };
        let lines = describe(&p, now);
        assert_eq!(
            lines[0],
            "hops 2  mtu 1472  expires in 100s  latency >= 6.0 ms (1 of 3 unknown)  \
             bandwidth 50000 kbit/s  next hop 127.0.0.1:30042"
        );
        assert!(lines[1].contains("type direct  latency 5.0 ms  bandwidth 50000 kbit/s"));
        assert!(lines[2].contains("internal hops 2  latency 1.0 ms  bandwidth 1000000 kbit/s"));
        assert!(lines[3].contains("type opennet  latency unknown  bandwidth unknown"));
        assert!(lines[4].starts_with("geo  1-ff00:0:111#1 47.5000,8.2500 (Zürich) | "));
        assert!(lines[5].starts_with("notes  1-ff00:0:111 \"leaf \\\"A\\\"\" | "));
        p.latency[2] = ms(7);
        assert!(describe(&p, now)[0].contains("latency 13.0 ms  "));
        p.expiry = Some(now - Duration::from_secs(1));
        assert!(describe(&p, now)[0].contains("mtu 1472  expired  latency"));
    }
}
