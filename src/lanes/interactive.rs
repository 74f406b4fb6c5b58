//! Interactive path choice (`-i`, as scion-apps' tools have it): the candidate paths are
//! listed numbered, best first, and the user types the number of the one to use.

use std::io::{BufRead, Write};
use std::sync::Arc;

use crate::scion::{Ia, ScionPath};

/// Lines read before giving up on a user who never types a valid number.
const MAX_TRIES: usize = 5;

#[derive(Debug, Clone, thiserror::Error)]
pub enum ChoiceError {
    #[error("no path to AS {0} to choose from")]
    NoPaths(Ia),
    #[error("no path chosen for AS {0}: standard input ended")]
    Eof(Ia),
    #[error("no path chosen for AS {dst}: {tries} answers were not a number from 0 to {max}")]
    Invalid { dst: Ia, tries: usize, max: usize },
    /// Shared so the error stays cloneable (it ends up in cloneable error enums).
    #[error("reading the choice: {0}")]
    Io(Arc<std::io::Error>),
}

impl From<std::io::Error> for ChoiceError {
    fn from(e: std::io::Error) -> Self {
        ChoiceError::Io(Arc::new(e))
    }
}

/// One line per path: `[ 0] 1-ff00:0:111 2>1 1-ff00:0:110 3>4 1-ff00:0:112  hops 2  mtu
/// 1400  latency 12.0 ms`, the interfaces as `scion showpaths` writes them.
pub fn describe(p: &ScionPath) -> String {
    let mut route = String::new();
    let ifs = &p.interfaces;
    if ifs.is_empty() {
        route.push_str(&format!("{} (same AS)", p.src_ia));
    }
    for (i, f) in ifs.iter().enumerate() {
        if i == 0 {
            route.push_str(&format!("{} {}", f.ia, f.id));
        } else if i % 2 == 1 {
            route.push_str(&format!(">{} {}", f.id, f.ia));
        } else {
            route.push_str(&format!(" {}", f.id));
        }
    }
    let mtu = match p.mtu {
        0 => "unknown".to_string(),
        m => m.to_string(),
    };
    let latency = p.total_latency().map_or("unknown".to_string(), |l| {
        format!("{:.1} ms", l.as_secs_f64() * 1e3)
    });
    let bandwidth = p
        .min_bandwidth()
        .map_or("unknown".to_string(), |b| format!("{b} kbit/s"));
    format!(
        "{route}  hops {}  mtu {mtu}  latency {latency}  bandwidth {bandwidth}",
        p.hop_count()
    )
}

/// Lists `paths` (already in preference order) on `out` and reads the user's pick from
/// `input`; an invalid answer is asked again, a few times.
pub fn choose(
    dst: Ia,
    paths: &[ScionPath],
    input: &mut dyn BufRead,
    out: &mut dyn Write,
) -> Result<ScionPath, ChoiceError> {
    if paths.is_empty() {
        return Err(ChoiceError::NoPaths(dst));
    }
    writeln!(out, "Available paths to {dst}:")?;
    for (i, p) in paths.iter().enumerate() {
        writeln!(out, "[{i:2}] {}", describe(p))?;
    }
    let max = paths.len() - 1;
    for _ in 0..MAX_TRIES {
        write!(out, "Choose path (0-{max}): ")?;
        out.flush()?;
        let mut line = String::new();
        // Bounded: a line longer than this is not a number anyway.
        if std::io::Read::take(&mut *input, 256).read_line(&mut line)? == 0 {
            return Err(ChoiceError::Eof(dst));
        }
        match line.trim().parse::<usize>() {
            Ok(i) if i <= max => {
                writeln!(out, "Using path [{i}]")?;
                return Ok(paths[i].clone());
            }
            _ => writeln!(out, "Invalid choice {:?}", line.trim())?,
        }
    }
    Err(ChoiceError::Invalid {
        dst,
        tries: MAX_TRIES,
        max,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scion::{parse_ia, PathInterface};

    fn path(via: &str, id: u16) -> ScionPath {
        let src = parse_ia("1-ff00:0:111").unwrap();
        let mut p = ScionPath::local(src);
        p.dst_ia = parse_ia("1-ff00:0:112").unwrap();
        p.raw = bytes::Bytes::from_static(b"x");
        let via = parse_ia(via).unwrap();
        p.interfaces = vec![
            PathInterface { ia: src, id },
            PathInterface { ia: via, id: 1 },
            PathInterface { ia: via, id: 2 },
            PathInterface { ia: p.dst_ia, id },
        ];
        p
    }

    #[test]
    fn lists_and_takes_the_typed_number() {
        let paths = [path("1-ff00:0:110", 1), path("1-ff00:0:120", 2)];
        let dst = paths[0].dst_ia;
        let mut out = Vec::new();
        let got = choose(dst, &paths, &mut &b"x\n7\n 1 \n"[..], &mut out).unwrap();
        assert_eq!(got, paths[1]);
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains("[ 0] 1-ff00:0:111 1>1 1-ff00:0:110 2>1 1-ff00:0:112"),
            "{text}"
        );
        assert!(text.contains("Invalid choice \"x\"") && text.contains("Invalid choice \"7\""));
    }

    #[test]
    fn gives_up_without_an_answer() {
        let paths = [path("1-ff00:0:110", 1)];
        let dst = paths[0].dst_ia;
        assert!(matches!(
            choose(dst, &paths, &mut &b""[..], &mut Vec::new()),
            Err(ChoiceError::Eof(_))
        ));
        assert!(matches!(
            choose(
                dst,
                &paths,
                &mut &b"a\nb\nc\nd\ne\n0\n"[..],
                &mut Vec::new()
            ),
            Err(ChoiceError::Invalid { tries: 5, .. })
        ));
        assert!(matches!(
            choose(dst, &[], &mut &b"0\n"[..], &mut Vec::new()),
            Err(ChoiceError::NoPaths(_))
        ));
    }
}
