//! Resolving `-u name|uid|name:group|uid:gid` in the container's own `/etc/passwd` and
//! `/etc/group` (read after `pivot_root`, so only the image's files are consulted), with the
//! supplementary groups the user is listed in.

use std::fs;

use super::ChildError;
use crate::run::options::{check_id, validate_user as validate_spec};

/// Who the process runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
    pub home: String,
}

struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
}

fn passwd(text: &str) -> Vec<PasswdEntry> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 7 {
                return None;
            }
            Some(PasswdEntry {
                name: f[0].to_string(),
                uid: f[2].parse().ok()?,
                gid: f[3].parse().ok()?,
                home: f[5].to_string(),
            })
        })
        .collect()
}

/// (name, gid, members)
fn groups(text: &str) -> Vec<(String, u32, Vec<String>)> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() >= 4)
                .then(|| {
                    Some((
                        f[0].to_string(),
                        f[2].parse().ok()?,
                        f[3].split(',')
                            .filter(|m| !m.is_empty())
                            .map(str::to_string)
                            .collect(),
                    ))
                })
                .flatten()
        })
        .collect()
}

/// Resolve `spec` against the passwd and group files' contents.
pub fn resolve_with(spec: &str, passwd_text: &str, group_text: &str) -> Result<User, ChildError> {
    validate_spec(spec).map_err(ChildError::User)?;
    let users = passwd(passwd_text);
    let all_groups = groups(group_text);
    let (user_part, group_part) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let entry = users.iter().find(|e| e.name == user_part);
    let (uid, mut gid, name, home) = match (entry, user_part.parse::<u32>()) {
        (Some(e), _) => (e.uid, e.gid, Some(e.name.clone()), e.home.clone()),
        (None, Ok(uid)) => match users.iter().find(|e| e.uid == uid) {
            Some(e) => (uid, e.gid, Some(e.name.clone()), e.home.clone()),
            None => (uid, 0, None, "/".to_string()),
        },
        (None, Err(_)) => {
            return Err(ChildError::User(format!(
                "unable to find user {user_part}: no matching entries in the container's /etc/passwd"
            )));
        }
    };
    if let Some(g) = group_part {
        gid = match (all_groups.iter().find(|(n, _, _)| n == g), g.parse::<u32>()) {
            (Some((_, id, _)), _) => *id,
            (None, Ok(id)) => id,
            (None, Err(_)) => {
                return Err(ChildError::User(format!(
                    "unable to find group {g}: no matching entries in the container's /etc/group"
                )));
            }
        };
    }
    let mut supplementary: Vec<u32> = match &name {
        Some(n) => all_groups
            .iter()
            .filter(|(_, _, members)| members.iter().any(|m| m == n))
            .map(|(_, id, _)| *id)
            .collect(),
        None => Vec::new(),
    };
    if !supplementary.contains(&gid) {
        supplementary.insert(0, gid);
    }
    check_id(uid.into(), "user").map_err(ChildError::User)?;
    for g in &supplementary {
        check_id((*g).into(), "group").map_err(ChildError::User)?;
    }
    Ok(User {
        uid,
        gid,
        groups: supplementary,
        home,
    })
}

/// `--group-add` groups (comma-separated names or numbers), resolved in the current root's
/// `/etc/group`.
pub fn extra_groups(list: &str) -> Result<Vec<u32>, ChildError> {
    extra_groups_with(list, &fs::read_to_string("/etc/group").unwrap_or_default())
}

fn extra_groups_with(list: &str, group_text: &str) -> Result<Vec<u32>, ChildError> {
    let all = groups(group_text);
    list.split(',')
        .filter(|g| !g.is_empty())
        .map(|g| {
            let id = match (all.iter().find(|(n, _, _)| n == g), g.parse::<u32>()) {
                (Some((_, id, _)), _) => *id,
                (None, Ok(id)) => id,
                (None, Err(_)) => {
                    return Err(ChildError::User(format!(
                        "unable to find group {g} (--group-add): no matching entries in the container's /etc/group"
                    )));
                }
            };
            check_id(id.into(), "group").map_err(ChildError::User)?;
            Ok(id)
        })
        .collect()
}

/// Resolve `spec` in the current root's `/etc/passwd` and `/etc/group`.
pub fn resolve(spec: &str) -> Result<User, ChildError> {
    let p = fs::read_to_string("/etc/passwd").unwrap_or_default();
    let g = fs::read_to_string("/etc/group").unwrap_or_default();
    resolve_with(spec, &p, &g)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n";
    const GROUP: &str = "root:x:0:\napp:x:1000:\nwheel:x:10:app\n";

    #[test]
    fn added_groups_by_name_or_number() {
        let group = "root:x:0:\nwheel:x:10:app\n";
        assert_eq!(
            super::extra_groups_with("wheel,4242", group).unwrap(),
            [10, 4242]
        );
        assert!(super::extra_groups_with("nosuch", group).is_err());
    }

    #[test]
    fn names_ids_and_groups() {
        let u = resolve_with("app", PASSWD, GROUP).unwrap();
        assert_eq!(
            (u.uid, u.gid, u.groups.clone(), u.home.as_str()),
            (1000, 1000, vec![1000, 10], "/home/app")
        );
        let u = resolve_with("1000:10", PASSWD, GROUP).unwrap();
        assert_eq!((u.uid, u.gid), (1000, 10));
        let u = resolve_with("4242", PASSWD, GROUP).unwrap();
        assert_eq!((u.uid, u.gid, u.groups), (4242, 0, vec![0]));
        let u = resolve_with("app:wheel", PASSWD, GROUP).unwrap();
        assert_eq!(u.gid, 10);
        assert!(resolve_with("nobody", PASSWD, GROUP).is_err());
        assert!(resolve_with("app:staff", PASSWD, GROUP).is_err());
    }
}
