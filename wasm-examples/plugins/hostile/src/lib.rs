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
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                hoard.push(vec![1u8; 1 << 20]);
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
