//! Plugin `async-upper` (WASI 0.3): the text in capitals, from an async export that first
//! waits a millisecond on `wasi:clocks/monotonic-clock@0.3.0#wait-for` (an async import).
//! An input starting `wait:N` waits N milliseconds instead (for deadline and concurrency
//! tests).
wit_bindgen::generate!({ path: "../wit", world: "async-text-plugin", generate_all });

use wasi::clocks::monotonic_clock;

struct AsyncUpper;

impl Guest for AsyncUpper {
    async fn process(input: String) -> Result<String, String> {
        let ms: u64 = input
            .strip_prefix("wait:")
            .and_then(|n| n.split(' ').next()?.parse().ok())
            .unwrap_or(1);
        monotonic_clock::wait_for(ms * 1_000_000).await;
        Ok(input.to_uppercase())
    }
}

export!(AsyncUpper);
