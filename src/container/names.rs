//! Container names: checked as Docker checks them, or made up (`adjective_noun`) when none
//! is given.

use super::ContainerError;
use crate::id::random_u64;

const ADJECTIVES: &[&str] = &[
    "amber", "brave", "calm", "clever", "crisp", "eager", "fancy", "gentle", "happy", "jolly",
    "keen", "lucid", "merry", "nimble", "proud", "quiet", "rapid", "sharp", "steady", "swift",
    "tidy", "vivid", "warm", "wise", "zesty",
];
const NOUNS: &[&str] = &[
    "anchor", "barge", "buoy", "cargo", "crane", "dock", "ferry", "harbor", "hull", "jetty",
    "keel", "lantern", "mast", "mooring", "pier", "pilot", "quay", "rudder", "sail", "skiff",
    "tide", "tug", "wharf", "yard", "yawl",
];

/// Check a user-given name: `[a-zA-Z0-9][a-zA-Z0-9_.-]*`, as Docker.
pub fn validate(name: &str) -> Result<(), ContainerError> {
    let mut chars = name.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        && name.len() <= 128;
    if ok {
        Ok(())
    } else {
        Err(ContainerError::BadName(name.to_string()))
    }
}

/// A name that `taken` says is free.
pub fn generate(taken: impl Fn(&str) -> bool) -> String {
    for i in 0u32.. {
        let r = random_u64(i);
        let base = format!(
            "{}_{}",
            ADJECTIVES[(r % ADJECTIVES.len() as u64) as usize],
            NOUNS[((r >> 16) % NOUNS.len() as u64) as usize]
        );
        let name = if i < 8 { base } else { format!("{base}{i}") };
        if !taken(&name) {
            return name;
        }
    }
    unreachable!("names run out only after u32::MAX tries")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_like_dockers() {
        for good in ["web", "a", "web-1", "my_app.v2", "X9"] {
            assert!(validate(good).is_ok(), "{good}");
        }
        for bad in ["", "-x", "_x", ".x", "a b", "a/b", "ä", &"a".repeat(129)] {
            assert!(validate(bad).is_err(), "{bad}");
        }
        let taken = ["calm_dock"];
        let n = generate(|n| taken.contains(&n));
        assert!(validate(&n).is_ok() && n != "calm_dock");
    }
}
