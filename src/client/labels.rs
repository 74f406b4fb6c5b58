//! Category and tag names (what a name may be) and how a torrent's tags change. Both APIs
//! other tools speak list tags comma-separated, so a tag holds no comma; categories nest with
//! `/` as qBittorrent's do, so a category name has no empty part.

use std::collections::BTreeSet;

use super::control::{ControlError, TagChange};

/// Longest category or tag name, in bytes.
pub const MAX_NAME: usize = 255;

fn check_name(what: &str, name: &str) -> Result<(), ControlError> {
    let bad = |why: &str| {
        Err(ControlError::BadRequest(format!(
            "bad {what} {name:?}: {why}"
        )))
    };
    if name.trim().is_empty() {
        return bad("empty");
    }
    if name.trim() != name {
        return bad("white space around it");
    }
    if name.len() > MAX_NAME {
        return bad("longer than 255 bytes");
    }
    if name.chars().any(char::is_control) {
        return bad("control characters");
    }
    Ok(())
}

/// A category name: not empty, no white space around it or control characters, and no empty
/// part between `/`s.
pub fn check_category(name: &str) -> Result<(), ControlError> {
    check_name("category", name)?;
    if name.split('/').any(|part| part.trim().is_empty()) {
        return Err(ControlError::BadRequest(format!(
            "bad category {name:?}: an empty part between '/'s"
        )));
    }
    Ok(())
}

/// A tag: not empty, no white space around it, no control characters, no comma.
pub fn check_tag(tag: &str) -> Result<(), ControlError> {
    check_name("tag", tag)?;
    if tag.contains(',') {
        return Err(ControlError::BadRequest(format!(
            "bad tag {tag:?}: a comma (tags are listed comma-separated)"
        )));
    }
    Ok(())
}

/// Applies `change` to `tags`; a bad tag changes nothing.
pub fn change_tags(tags: &mut BTreeSet<String>, change: &TagChange) -> Result<(), ControlError> {
    let given = match change {
        TagChange::Set(t) | TagChange::Add(t) | TagChange::Remove(t) => t,
    };
    given.iter().try_for_each(|t| check_tag(t))?;
    match change {
        TagChange::Set(t) => *tags = t.iter().cloned().collect(),
        TagChange::Add(t) => tags.extend(t.iter().cloned()),
        TagChange::Remove(t) => tags.retain(|x| !t.contains(x)),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn category_names() {
        for ok in ["tv", "TV Shows", "tv/series", "ünïcode"] {
            assert!(check_category(ok).is_ok(), "{ok}");
        }
        for bad in ["", " ", " tv", "tv ", "a//b", "/a", "a/", "a\nb"] {
            assert!(check_category(bad).is_err(), "{bad:?}");
        }
        assert!(check_category(&"x".repeat(MAX_NAME + 1)).is_err());
    }

    #[test]
    fn tags_change_as_asked_and_a_bad_one_changes_nothing() {
        let mut tags = BTreeSet::new();
        let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        change_tags(&mut tags, &TagChange::Add(v(&["b", "a"]))).unwrap();
        change_tags(&mut tags, &TagChange::Add(v(&["a", "c"]))).unwrap();
        assert_eq!(tags.iter().collect::<Vec<_>>(), ["a", "b", "c"]);
        change_tags(&mut tags, &TagChange::Remove(v(&["b", "zz"]))).unwrap();
        assert_eq!(tags.iter().collect::<Vec<_>>(), ["a", "c"]);
        assert!(change_tags(&mut tags, &TagChange::Set(v(&["x", "y,z"]))).is_err());
        assert_eq!(tags.iter().collect::<Vec<_>>(), ["a", "c"]);
        change_tags(&mut tags, &TagChange::Set(v(&["x"]))).unwrap();
        assert_eq!(tags.iter().collect::<Vec<_>>(), ["x"]);
        assert!(change_tags(&mut tags, &TagChange::Add(v(&[""]))).is_err());
    }
}
