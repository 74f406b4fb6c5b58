//! Transmission's arguments for daemon features added with issue 26: re-checking on demand
//! (torrent-verify), moving data (torrent-set-location), labels (our tags) and file choice
//! (files-wanted/-unwanted, priority-high/-low/-normal). Transmission keeps a file's priority
//! apart from whether it is wanted; the daemon has one value per file (`skip`, `low`,
//! `normal`, `high`), so an unwanted file is `skip`, wanting it again makes it `normal`, and a
//! priority given for a file that stays unwanted is not kept.

use serde_json::{Map, Value};

use super::envelope::{Args, RpcError, RpcResult};
use super::torrents::selected;
use super::Rpc;
use crate::client::control::{Command, FilePriority, InfoHash, TagChange};

pub async fn verify(rpc: &Rpc, mut args: Args) -> RpcResult<Map<String, Value>> {
    let hashes = selected(rpc, &mut args)?;
    args.finish("torrent-verify")?;
    for ih in hashes {
        rpc.app.client.call(|r| Command::Recheck(ih, r)).await?;
    }
    Ok(Map::new())
}

/// torrent-set-location with `move: true` (transmission-remote's `--move`): the data is moved
/// under the download root (renamed, or copied while the torrent keeps running). `move:
/// false` (`--find`: "the data already is there") is refused.
pub async fn set_location(rpc: &Rpc, mut args: Args) -> RpcResult<Map<String, Value>> {
    let hashes = selected(rpc, &mut args)?;
    let location = args
        .string("location")?
        .ok_or_else(|| RpcError::bad("torrent-set-location needs a 'location'"))?;
    let move_data = args.bool("move")?.unwrap_or(false);
    args.finish("torrent-set-location")?;
    let out_dir = rpc.app.root.resolve(&location)?;
    if !move_data {
        return Err(RpcError::unsupported(
            "torrent-set-location with move: false",
            "the daemon does not adopt data that already lies elsewhere; move it (move: true)",
        ));
    }
    for info_hash in hashes {
        let out_dir = out_dir.clone();
        rpc.app
            .client
            .call(|reply| Command::Move {
                info_hash,
                out_dir,
                reply,
            })
            .await?;
    }
    Ok(Map::new())
}

/// Transmission's priority numbers (`tr_priority_t`) and wanted flag of one of our priorities.
pub fn transmission_priority(p: FilePriority) -> (i64, bool) {
    match p {
        FilePriority::Skip => (0, false),
        FilePriority::Low => (-1, true),
        FilePriority::Normal => (0, true),
        FilePriority::High => (1, true),
    }
}

/// The file arguments of torrent-add and torrent-set.
#[derive(Debug, Default)]
pub struct FileArgs {
    wanted: Option<Vec<usize>>,
    unwanted: Option<Vec<usize>>,
    high: Option<Vec<usize>>,
    low: Option<Vec<usize>>,
    normal: Option<Vec<usize>>,
}

impl FileArgs {
    pub fn take(args: &mut Args) -> RpcResult<FileArgs> {
        Ok(FileArgs {
            wanted: args.indices("files-wanted")?,
            unwanted: args.indices("files-unwanted")?,
            high: args.indices("priority-high")?,
            low: args.indices("priority-low")?,
            normal: args.indices("priority-normal")?,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.wanted.is_none()
            && self.unwanted.is_none()
            && self.high.is_none()
            && self.low.is_none()
            && self.normal.is_none()
    }

    /// The files whose priority changes, from their `current` priorities (an empty list
    /// means every file, as in Transmission).
    pub fn changes(&self, current: &[FilePriority]) -> RpcResult<Vec<(usize, FilePriority)>> {
        let n = current.len();
        let each = |list: &Option<Vec<usize>>| -> RpcResult<Vec<usize>> {
            match list {
                None => Ok(Vec::new()),
                Some(l) if l.is_empty() => Ok((0..n).collect()),
                Some(l) => match l.iter().find(|&&i| i >= n) {
                    Some(i) => Err(RpcError::bad(format!(
                        "no file {i}: the torrent has {n} files"
                    ))),
                    None => Ok(l.clone()),
                },
            }
        };
        let mut new = current.to_vec();
        for i in each(&self.unwanted)? {
            new[i] = FilePriority::Skip;
        }
        for i in each(&self.wanted)? {
            if new[i] == FilePriority::Skip {
                new[i] = FilePriority::Normal;
            }
        }
        for (list, p) in [
            (&self.high, FilePriority::High),
            (&self.low, FilePriority::Low),
            (&self.normal, FilePriority::Normal),
        ] {
            for i in each(list)? {
                if new[i] != FilePriority::Skip {
                    new[i] = p;
                }
            }
        }
        Ok((0..n)
            .filter(|&i| new[i] != current[i])
            .map(|i| (i, new[i]))
            .collect())
    }
}

/// Applies `files` to a torrent whose files have `current` priorities.
pub async fn set_files(
    rpc: &Rpc,
    info_hash: InfoHash,
    current: &[FilePriority],
    files: &FileArgs,
) -> RpcResult<()> {
    let priorities = files.changes(current)?;
    if priorities.is_empty() {
        return Ok(());
    }
    rpc.app
        .client
        .call(|reply| Command::SetFilePriorities {
            info_hash,
            priorities,
            reply,
        })
        .await?;
    Ok(())
}

/// Replaces a torrent's labels (our tags).
pub async fn set_labels(rpc: &Rpc, info_hash: InfoHash, labels: Vec<String>) -> RpcResult<()> {
    rpc.app
        .client
        .call(|reply| Command::SetTags {
            info_hash,
            change: TagChange::Set(labels),
            reply,
        })
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use FilePriority::*;

    fn args(v: serde_json::Value) -> FileArgs {
        let mut a = Args(v.as_object().unwrap().clone());
        FileArgs::take(&mut a).unwrap()
    }

    #[test]
    fn wanted_and_priorities_fold_into_one_value() {
        let cur = [Normal, Normal, Skip];
        let c = args(
            serde_json::json!({"files-unwanted": [0], "files-wanted": [2], "priority-high": [1, 2]}),
        );
        assert_eq!(
            c.changes(&cur).unwrap(),
            vec![(0, Skip), (1, High), (2, High)]
        );
        // Empty lists mean every file; a priority for a file left unwanted is not kept.
        let all = args(serde_json::json!({"files-unwanted": [], "priority-low": []}));
        assert_eq!(all.changes(&cur).unwrap(), vec![(0, Skip), (1, Skip)]);
        assert!(args(serde_json::json!({"priority-low": [3]}))
            .changes(&cur)
            .is_err());
        assert!(args(serde_json::json!({})).is_empty());
        assert!(args(serde_json::json!({"files-wanted": [0]}))
            .changes(&cur)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn priorities_read_as_transmissions() {
        assert_eq!(transmission_priority(Skip), (0, false));
        assert_eq!(transmission_priority(Low), (-1, true));
        assert_eq!(transmission_priority(High), (1, true));
    }
}
