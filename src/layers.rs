//! The layer rule of `src/lib.rs`, checked: every `crate::` path in the library's sources
//! names a module of the same layer or a lower one.

use std::path::Path;

/// The layers, top first, as the crate's documentation lists them.
fn layers() -> Vec<Vec<String>> {
    let doc = include_str!("lib.rs");
    let table = doc
        .split("//! ```text\n")
        .nth(1)
        .and_then(|rest| rest.split("//! ```").next())
        .expect("src/lib.rs holds the layer table in a text block");
    table
        .lines()
        .map(|l| {
            let l = l.trim_start_matches("//!").trim();
            // The modules, then two or more spaces, then what they are.
            let modules = l.split("  ").next().unwrap_or_default();
            modules.split_whitespace().map(String::from).collect()
        })
        .filter(|m: &Vec<String>| !m.is_empty())
        .collect()
}

/// The layer of module path `m` (`image::unpack::layers`): its longest listed prefix.
fn layer_of(layers: &[Vec<String>], m: &str) -> Option<usize> {
    let mut best: Option<(usize, usize)> = None;
    for (i, layer) in layers.iter().enumerate() {
        for name in layer {
            let hit = m == name || m.starts_with(&format!("{name}::"));
            if hit && best.is_none_or(|(_, len)| name.len() > len) {
                best = Some((i, name.len()));
            }
        }
    }
    best.map(|(i, _)| i)
}

/// Every `crate::a::b` path in `code` outside comments: its first two segments (for a
/// group, `crate::{a::b, c}`, each member's, over as many lines as it takes).
fn crate_paths(code: &str) -> Vec<String> {
    let code: String = code
        .lines()
        .map(|l| l.split("//").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n");
    // A path's first two segments, up to a nested group's brace.
    let first_two = |path: &str| -> Option<String> {
        let segments: Vec<&str> = path
            .split('{')
            .next()
            .unwrap_or_default()
            .split("::")
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .take(2)
            .collect();
        (!segments.is_empty()).then(|| segments.join("::"))
    };
    // A group's members at its top level (`a::{b, c}, d` is two).
    let members = |group: &str| -> Vec<String> {
        let (mut depth, mut cur, mut all) = (0, String::new(), Vec::new());
        for c in group.chars() {
            match c {
                '}' if depth == 0 => break,
                ',' if depth == 0 => all.push(std::mem::take(&mut cur)),
                '{' | '}' => {
                    depth += if c == '{' { 1 } else { -1 };
                    cur.push(c);
                }
                _ => cur.push(c),
            }
        }
        all.push(cur);
        all
    };
    let mut out = Vec::new();
    let mut rest = code.as_str();
    while let Some(at) = rest.find("crate::") {
        let after = &rest[at + "crate::".len()..];
        if let Some(group) = after.strip_prefix('{') {
            out.extend(members(group).iter().filter_map(|m| first_two(m)));
        } else {
            let path: String = after
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            out.extend(first_two(&path));
        }
        rest = after;
    }
    out
}

/// The library's sources (not the binaries' `main.rs`, `cli/` and `bin/`), with the module
/// path of each.
fn sources(src: &Path) -> Vec<(String, std::path::PathBuf)> {
    let mut out = Vec::new();
    let mut dirs = vec![src.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
                continue;
            }
            let rel = p.strip_prefix(src).unwrap().with_extension("");
            let parts: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if p.extension().is_none_or(|x| x != "rs")
                || matches!(parts[0].as_str(), "main" | "lib" | "cli" | "bin" | "layers")
            {
                continue;
            }
            let mut module = parts;
            if module.last().is_some_and(|l| l == "mod") {
                module.pop();
            }
            out.push((module.join("::"), p));
        }
    }
    out
}

#[test]
fn imports_point_down() {
    let layers = layers();
    assert!(layers.len() >= 5, "the layer table: {layers:?}");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut wrong = Vec::new();
    let mut checked = 0;
    for (module, path) in sources(&src) {
        let Some(mine) = layer_of(&layers, &module) else {
            wrong.push(format!("{module}: in no layer of src/lib.rs's table"));
            continue;
        };
        let code = std::fs::read_to_string(&path).unwrap();
        for target in crate_paths(&code) {
            checked += 1;
            if let Some(theirs) = layer_of(&layers, &target)
                && theirs < mine
            {
                wrong.push(format!(
                    "{} uses crate::{target}, a higher layer ({} above {})",
                    path.display(),
                    layers[theirs].join(" "),
                    layers[mine].join(" ")
                ));
            }
        }
    }
    assert!(checked > 100, "only {checked} crate:: paths seen");
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn the_check_sees_what_it_must() {
    let layers = vec![
        vec!["compose".to_string()],
        vec!["image".to_string()],
        vec!["sys".to_string(), "run::options".to_string()],
    ];
    assert_eq!(layer_of(&layers, "image::unpack::layers"), Some(1));
    assert_eq!(layer_of(&layers, "run::options"), Some(2));
    assert_eq!(layer_of(&layers, "run"), None);
    let paths = crate_paths(
        "use crate::image::store::Store; // crate::compose in a comment\nlet x = crate::sys::is_root();\nuse crate::{compose::Project, sys};",
    );
    assert_eq!(
        paths,
        ["image::store", "sys::is_root", "compose::Project", "sys"]
    );
}
