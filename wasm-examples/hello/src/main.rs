//! WASI preview 1 hello: prints its arguments and environment, one per line, so tests can
//! check that both reach the guest exactly. `EXIT_CODE=N` makes it exit with N.

fn main() {
    println!("hello from wasm");
    for (i, arg) in std::env::args().enumerate() {
        println!("arg[{i}]={arg}");
    }
    let mut vars: Vec<(String, String)> = std::env::vars().collect();
    vars.sort();
    for (k, v) in &vars {
        println!("env {k}={v}");
    }
    if let Some(code) = vars.iter().find(|(k, _)| k == "EXIT_CODE") {
        std::process::exit(code.1.parse().unwrap_or(1));
    }
}
