//! The original Go client's command line: single-dash camelCase flags, `-flag=value` or
//! `-flag value`, booleans as `-seed`, `-seed=true`, `-seed=false`.
//!
//! It is parsed by hand because clap cannot express single-dash long flags with Go's boolean
//! rules; the result is the same [`TransferArgs`] the modern subcommands produce.

use std::path::PathBuf;

use super::args::{Mode, TransferArgs};

/// Flags of the original client, and whether each takes a value.
const FLAGS: &[(&str, bool)] = &[
    ("inPath", true),
    ("outPath", true),
    ("peer", true),
    ("seed", false),
    ("file", true),
    ("local", true),
    ("logLevel", true),
    ("numPaths", true),
    ("enableDht", false),
    ("dhtPort", true),
    ("dhtBootstrapAddr", true),
    ("printMetrics", false),
    ("exportMetricsTo", true),
    ("dialBackStartPort", true),
    // Ours, in the same style: see `--path-policy`.
    ("pathPolicy", true),
    ("metricsJson", true),
    ("runtimes", true),
    ("tcpListen", true),
    ("tcp-listen", true),
    ("keepAlive", true),
    ("peerTimeout", true),
    ("encryption", true),
];

/// Flags of the original client (its HTTP API mode on the http-ui branch, and the older
/// path selection switch) that this client does not take: they are refused by name, not
/// read as clap's short options (`-httpApi` would be `-h`, help).
const NOT_HERE: &[&str] = &[
    "httpApi",
    "httpApiAddr",
    "httpApiMaxSize",
    "httpApiFileDir",
    "httpApiDbFile",
    "seedStartPort",
    "pathSelectionResponsibility",
];

/// Whether argv looks like the original client's (`-inPath=...`, not `--...` or a subcommand).
pub fn is_legacy(args: &[String]) -> bool {
    args.iter().skip(1).any(|a| {
        a.strip_prefix('-')
            .filter(|r| !r.starts_with('-'))
            .map(|r| r.split('=').next().unwrap_or(""))
            .is_some_and(|name| FLAGS.iter().any(|(f, _)| *f == name) || NOT_HERE.contains(&name))
    })
}

/// What is wrong with the original client's flags (all usage errors, exit code 2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LegacyFlagError {
    #[error("unexpected argument {0:?} (flags start with '-')")]
    NotAFlag(String),
    /// A flag of the Go client's HTTP API mode or path selection, which the `daemon`
    /// subcommand replaces.
    #[error(
        "flag provided but not defined: -{0} (the Go client's HTTP API mode and path \
         selection flags are not taken here; the `daemon` subcommand runs this client with an \
         HTTP API)"
    )]
    NotHere(String),
    #[error("flag provided but not defined: -{0}")]
    Undefined(String),
    #[error("flag needs an argument: -{0}")]
    NeedsArgument(String),
    #[error("invalid boolean value {value:?} for -{flag}")]
    NotBoolean { flag: String, value: String },
    /// A value that does not parse as what the flag takes (`what` says that).
    #[error("-{flag}: {value:?} is not {what}")]
    BadValue {
        flag: String,
        value: String,
        what: String,
    },
}

fn bad_value(flag: &str, value: &str, what: impl Into<String>) -> LegacyFlagError {
    LegacyFlagError::BadValue {
        flag: flag.into(),
        value: value.into(),
        what: what.into(),
    }
}

fn parse_bool(flag: &str, v: &str) -> Result<bool, LegacyFlagError> {
    match v {
        "true" | "1" | "t" | "T" | "TRUE" | "True" => Ok(true),
        "false" | "0" | "f" | "F" | "FALSE" | "False" => Ok(false),
        _ => Err(LegacyFlagError::NotBoolean {
            flag: flag.into(),
            value: v.into(),
        }),
    }
}

fn parse_secs(flag: &str, v: &str) -> Result<f64, LegacyFlagError> {
    v.trim_end_matches('s')
        .parse()
        .map_err(|_| bad_value(flag, v, "a number of seconds"))
}

/// Parses the original client's flags into transfer arguments.
pub fn parse(args: &[String]) -> Result<TransferArgs, LegacyFlagError> {
    let mut t = TransferArgs::default();
    let mut seed = false;
    let mut it = args.iter().skip(1).peekable();
    while let Some(arg) = it.next() {
        let body = arg
            .strip_prefix("--")
            .or_else(|| arg.strip_prefix('-'))
            .ok_or_else(|| LegacyFlagError::NotAFlag(arg.clone()))?;
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (body, None),
        };
        let takes_value = FLAGS
            .iter()
            .find(|(f, _)| *f == name)
            .map(|(_, v)| *v)
            .ok_or_else(|| match NOT_HERE.contains(&name) {
                true => LegacyFlagError::NotHere(name.into()),
                false => LegacyFlagError::Undefined(name.into()),
            })?;
        let value = if takes_value {
            match inline {
                Some(v) => v,
                None => it
                    .next()
                    .cloned()
                    .ok_or_else(|| LegacyFlagError::NeedsArgument(name.into()))?,
            }
        } else {
            inline.unwrap_or_else(|| "true".into())
        };
        match name {
            "inPath" => t.torrent = Some(PathBuf::from(value)),
            "outPath" => t.out = Some(PathBuf::from(value)),
            "file" => t.file = Some(PathBuf::from(value)),
            // A SCION address contains a comma, so several peers are separated by ';' (or
            // the flag is repeated).
            "peer" => t.peers.extend(
                value
                    .split(';')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from),
            ),
            "seed" => seed = parse_bool(name, &value)?,
            "local" => t.local = Some(value),
            "tcpListen" | "tcp-listen" => t.tcp_listen = Some(value),
            "logLevel" => t.log_level = value,
            "keepAlive" => t.keepalive = Some(parse_secs(name, &value)?),
            "peerTimeout" => t.peer_timeout = Some(parse_secs(name, &value)?),
            "encryption" => {
                t.encryption = Some(value.parse().map_err(|e: bt_mse::PolicyParseError| {
                    bad_value(name, &value, format!("a policy ({e})"))
                })?)
            }
            "numPaths" => {
                t.num_paths = Some(
                    value
                        .parse()
                        .map_err(|_| bad_value(name, &value, "a number"))?,
                )
            }
            "enableDht" => t.enable_dht = parse_bool(name, &value)?,
            "dhtPort" => {
                t.dht_port = Some(
                    value
                        .parse()
                        .map_err(|_| bad_value(name, &value, "a port"))?,
                )
            }
            "dhtBootstrapAddr" => t.dht_bootstrap.push(value),
            "dialBackStartPort" => {}
            "printMetrics" => t.print_metrics = parse_bool(name, &value)?,
            "pathPolicy" => {
                t.path_policy = value.parse().map_err(|e: crate::lanes::PolicyError| {
                    bad_value(name, &value, format!("a path policy ({e})"))
                })?
            }
            "metricsJson" => t.metrics_json = Some(PathBuf::from(value)),
            "runtimes" => {
                t.runtimes = Some(value.parse().map_err(|_| {
                    let most = crate::net::steering::MAX_RUNTIMES;
                    bad_value(name, &value, format!("a number from 1 to {most}"))
                })?)
            }
            "exportMetricsTo" => t.export_metrics = Some(PathBuf::from(value)),
            _ => unreachable!("flag table and match agree"),
        }
    }
    t.mode = if seed { Mode::Seed } else { Mode::Download };
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &[&str]) -> Vec<String> {
        std::iter::once("bittorrent-over-scion")
            .chain(s.iter().copied())
            .map(String::from)
            .collect()
    }

    #[test]
    fn encryption_policy_flag() {
        let t = parse(&argv(&["-inPath=x.torrent", "-encryption=required"])).unwrap();
        assert_eq!(t.encryption, Some(bt_mse::Policy::Required));
        let e = parse(&argv(&["-inPath=x.torrent", "-encryption=forced"])).unwrap_err();
        assert!(matches!(&e, LegacyFlagError::BadValue { flag, .. } if flag == "encryption"));
        assert!(e.to_string().contains("-encryption"), "{e}");
    }

    #[test]
    fn seeder_example_from_the_original_readme() {
        let a = argv(&[
            "-inPath=x.torrent",
            "-seed=true",
            "-file=x.bin",
            "-local=1-ff00:0:112,[127.0.0.1]:43000",
        ]);
        assert!(is_legacy(&a));
        let t = parse(&a).unwrap();
        assert_eq!(t.mode, Mode::Seed);
        assert_eq!(t.file, Some(PathBuf::from("x.bin")));
        assert_eq!(t.local.as_deref(), Some("1-ff00:0:112,[127.0.0.1]:43000"));
    }

    #[test]
    fn leecher_example_with_separate_values_and_bare_bool() {
        let a = argv(&[
            "-inPath",
            "x.torrent",
            "-outPath",
            "out.bin",
            "-peer=1-ff00:0:112,[127.0.0.1]:43000",
            "-seed=false",
            "-printMetrics",
            "-numPaths=2",
        ]);
        let t = parse(&a).unwrap();
        assert_eq!(t.mode, Mode::Download);
        assert_eq!(t.peers, vec!["1-ff00:0:112,[127.0.0.1]:43000".to_string()]);
        assert!(t.print_metrics);
        assert_eq!(t.num_paths, Some(2));
    }

    #[test]
    fn bad_flags_are_reported() {
        let e = parse(&argv(&["-nope=1"])).unwrap_err();
        assert_eq!(e, LegacyFlagError::Undefined("nope".into()));
        assert!(e.to_string().contains("not defined"));
        let e = parse(&argv(&["-seed=maybe"])).unwrap_err();
        assert!(e.to_string().contains("boolean"), "{e}");
        let e = parse(&argv(&["-inPath"])).unwrap_err();
        assert_eq!(e, LegacyFlagError::NeedsArgument("inPath".into()));
        assert!(e.to_string().contains("needs an argument"));
        assert!(!is_legacy(&argv(&["download", "--torrent", "x"])));
    }

    #[test]
    fn the_go_clients_api_mode_is_refused_by_name_even_alone() {
        for flag in [
            "-httpApi",
            "-httpApiAddr=127.0.0.1:8000",
            "-seedStartPort=44000",
        ] {
            let a = argv(&[flag]);
            assert!(is_legacy(&a), "{flag} would reach clap (-h: help, exit 0)");
            let e = parse(&a).unwrap_err();
            assert!(matches!(e, LegacyFlagError::NotHere(_)), "{e:?}");
            let e = e.to_string();
            assert!(e.starts_with("flag provided but not defined"), "{e}");
            assert!(e.contains("daemon"), "{e}");
        }
    }
}
