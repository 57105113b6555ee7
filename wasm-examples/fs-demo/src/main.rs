//! Reads and writes files under a mounted directory, and reports what the sandbox allowed.
//!
//! `fs-demo DIR`: lists DIR, prints `DIR/input.txt`, writes `DIR/output.txt`, then tries to
//! leave DIR (`..`, an absolute path) and prints whether each attempt was refused.

use std::fs;

fn main() {
    let dir = std::env::args().nth(1).unwrap_or_else(|| "/data".into());
    let mut names: Vec<String> = match fs::read_dir(&dir) {
        Ok(rd) => rd.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect(),
        Err(e) => {
            eprintln!("cannot list {dir}: {e}");
            std::process::exit(2);
        }
    };
    names.sort();
    println!("list: {}", names.join(","));
    match fs::read_to_string(format!("{dir}/input.txt")) {
        Ok(s) => println!("input: {}", s.trim_end()),
        Err(e) => println!("input: error: {e}"),
    }
    match fs::write(format!("{dir}/output.txt"), b"written by wasm\n") {
        Ok(()) => println!("write: ok"),
        Err(e) => println!("write: error: {e}"),
    }
    for attempt in [format!("{dir}/../../etc/passwd"), "/etc/passwd".to_string()] {
        match fs::read_to_string(&attempt) {
            Ok(_) => println!("escape {attempt}: READ (sandbox broken)"),
            Err(e) => println!("escape {attempt}: refused ({e})"),
        }
    }
}
