//! A WASI 0.3 command component (`wasi:cli/run@0.3.0`, an async export): greets, echoes its
//! arguments, and with `--stdin` upper-cases what it reads on standard input, with
//! `--read PATH` prints a file from a preopened directory, with `--exit N` exits with N.
//! It imports only WASI 0.3 interfaces: its stdio are `stream<u8>`s.

wit_bindgen::generate!({
    path: "../wit/p3",
    world: "wharf:examples/p3-command",
    generate_all,
});

use wasi::cli::{environment, exit, stdin, stdout};
use wit_bindgen::StreamResult;

struct Command;

export!(Command);

impl exports::wasi::cli::run::Guest for Command {
    async fn run() -> Result<(), ()> {
        let args = environment::get_arguments();
        let mut out = String::from("hello from a WASI 0.3 component\n");
        for (i, arg) in args.iter().enumerate() {
            out.push_str(&format!("arg[{i}]={arg}\n"));
        }
        if let Some((_, v)) = environment::get_environment()
            .into_iter()
            .find(|(k, _)| k == "GREETING")
        {
            out.push_str(&format!("GREETING={v}\n"));
        }
        if args.iter().any(|a| a == "--stdin") {
            let (mut input, done) = stdin::read_via_stream();
            let mut bytes = Vec::new();
            loop {
                let (result, chunk) = input.read(Vec::with_capacity(16 * 1024)).await;
                bytes.extend_from_slice(&chunk);
                match result {
                    StreamResult::Complete(_) => {}
                    StreamResult::Dropped | StreamResult::Cancelled => break,
                }
            }
            drop(input);
            let _ = done.await;
            out.push_str(&String::from_utf8_lossy(&bytes).to_uppercase());
        }
        if let Some(pos) = args.iter().position(|a| a == "--read") {
            let path = args.get(pos + 1).cloned().unwrap_or_default();
            match read_file(&path).await {
                Ok(text) => out.push_str(&text),
                Err(e) => out.push_str(&format!("cannot read {path}: {e}\n")),
            }
        }
        write_stdout(out.into_bytes()).await;
        if let Some(pos) = args.iter().position(|a| a == "--exit") {
            let code = args.get(pos + 1).and_then(|c| c.parse().ok()).unwrap_or(1);
            exit::exit_with_code(code);
        }
        Ok(())
    }
}

async fn write_stdout(bytes: Vec<u8>) {
    let (mut tx, rx) = wit_stream::new::<u8>();
    let done = stdout::write_via_stream(rx);
    let rest = tx.write_all(bytes).await;
    drop(tx);
    let _ = done.await;
    debug_assert!(rest.is_empty());
}

/// Reads `path` (absolute, under a preopened directory) whole.
async fn read_file(path: &str) -> Result<String, String> {
    use wasi::filesystem::{preopens, types};
    let (dir, rel) = preopens::get_directories()
        .into_iter()
        .filter_map(|(d, name)| {
            let rest = path.strip_prefix(name.trim_end_matches('/'))?;
            let rest = rest.trim_start_matches('/').to_string();
            Some((d, rest, name.len()))
        })
        .max_by_key(|(_, _, len)| *len)
        .map(|(d, rest, _)| (d, rest))
        .ok_or_else(|| "not under a preopened directory".to_string())?;
    let file = dir
        .open_at(
            types::PathFlags::empty(),
            rel,
            types::OpenFlags::empty(),
            types::DescriptorFlags::READ,
        )
        .await
        .map_err(|e| format!("{e:?}"))?;
    let (mut data, done) = file.read_via_stream(0);
    let mut bytes = Vec::new();
    loop {
        let (result, chunk) = data.read(Vec::with_capacity(16 * 1024)).await;
        bytes.extend_from_slice(&chunk);
        if !matches!(result, StreamResult::Complete(_)) {
            break;
        }
    }
    drop(data);
    done.await.map_err(|e| format!("{e:?}"))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}
