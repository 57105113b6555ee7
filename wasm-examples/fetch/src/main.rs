//! `fetch http://HOST[:PORT]/PATH`: a WASI preview 2 command that looks HOST up and fetches
//! the page over a plain TCP socket (wasi-sockets and wasi:sockets/ip-name-lookup, through
//! Rust's std), printing the body. On a wharf network HOST is another container's name.
//! Exits 0 for a 2xx answer, non-zero otherwise (saying why on stderr).

use std::io::{Read, Write};
use std::net::TcpStream;

fn main() {
    let url = std::env::args().nth(1).unwrap_or_else(|| {
        eprintln!("usage: fetch http://HOST[:PORT]/PATH");
        std::process::exit(2)
    });
    let Some(rest) = url.strip_prefix("http://") else {
        eprintln!("fetch: only http:// URLs: {url}");
        std::process::exit(2)
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) => (h, p.parse().unwrap_or(80)),
        None => (authority, 80u16),
    };
    let mut stream = match TcpStream::connect((host, port)) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("fetch: connecting to {host}:{port}: {e}");
            std::process::exit(2)
        }
    };
    let request = format!("GET {path} HTTP/1.0\r\nHost: {authority}\r\nUser-Agent: wharf-fetch\r\n\r\n");
    if let Err(e) = stream.write_all(request.as_bytes()) {
        eprintln!("fetch: sending the request: {e}");
        std::process::exit(2)
    }
    let mut answer = Vec::new();
    if let Err(e) = stream.read_to_end(&mut answer) {
        eprintln!("fetch: reading the answer: {e}");
        std::process::exit(2)
    }
    let text = String::from_utf8_lossy(&answer);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status: u16 = head
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    print!("{body}");
    let _ = std::io::stdout().flush();
    eprintln!("fetch: {host}:{port}{path}: status {status}");
    std::process::exit(if (200..300).contains(&status) { 0 } else { 1 })
}
