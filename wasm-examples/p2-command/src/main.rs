//! A WASI preview 2 command component (`wasi:cli/run`): greets, echoes its arguments, and
//! with `--stdin` upper-cases what it reads on standard input. `--exit N` exits with N.

use std::io::Read;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    println!("hello from a component");
    for (i, arg) in args.iter().enumerate() {
        println!("arg[{i}]={arg}");
    }
    if let Ok(greeting) = std::env::var("GREETING") {
        println!("GREETING={greeting}");
    }
    if args.iter().any(|a| a == "--stdin") {
        let mut input = String::new();
        std::io::stdin().read_to_string(&mut input).expect("reading stdin");
        print!("{}", input.to_uppercase());
    }
    if let Some(pos) = args.iter().position(|a| a == "--exit") {
        let code = args.get(pos + 1).and_then(|c| c.parse().ok()).unwrap_or(1);
        std::process::exit(code);
    }
}
