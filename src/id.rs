//! Identifiers: the 64-hex ids of containers and networks. Plain vocabulary: it imports
//! nothing of wharf, so every layer may use it.

use std::hash::{BuildHasher, Hasher};

/// A random number (seeded per process by the standard library's hasher keys).
pub fn random_u64(salt: u32) -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    h.write_u32(std::process::id());
    h.write_u32(salt);
    h.finish()
}

/// The first 12 digits of an id, as `ps` and Docker show it (all of it when shorter).
pub fn short(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

/// A new 64-hex-digit id (a container's, a network's).
pub fn new_id() -> String {
    let mut bytes = Vec::with_capacity(32);
    for i in 0..4u32 {
        bytes.extend_from_slice(&random_u64(i).to_le_bytes());
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_are_64_hex_digits_and_differ() {
        let (a, b) = (super::new_id(), super::new_id());
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
        assert_eq!(super::short(&a), &a[..12]);
        assert_eq!(super::short("abc"), "abc");
    }
}
