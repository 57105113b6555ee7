//! Plugin `hostile`: misbehaves on request, to show the host's limits hold.
//! `loop` spins forever, `alloc` allocates until something stops it, `sleep` waits 30 s in
//! one host call, `read PATH` reads a file (outside its grant it must be denied), anything
//! else is echoed.
wit_bindgen::generate!({ path: "../wit", world: "text-plugin" });

struct Hostile;

impl Guest for Hostile {
    fn process(input: String) -> Result<String, String> {
        let input = input.trim();
        if input == "loop" {
            let mut n: u64 = 0;
            loop {
                n = std::hint::black_box(n.wrapping_add(1));
            }
        }
        if input == "alloc" {
            // Asks for memory without writing it, so the memory limit ends the call, not
            // the time page faults take on a loaded host (under wine, 32 MiB written in
            // 1 MiB pieces by 8 threads once outlasted the 500 ms timeout).
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                hoard.push(Vec::with_capacity(4 << 20));
                std::hint::black_box(&hoard);
            }
        }
        if input == "sleep" {
            std::thread::sleep(std::time::Duration::from_secs(30));
            return Ok("woke up".into());
        }
        if let Some(path) = input.strip_prefix("read ") {
            return std::fs::read_to_string(path).map_err(|e| format!("reading {path}: {e}"));
        }
        Ok(input.to_string())
    }
}

export!(Hostile);
