//! Compose's variable interpolation: `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`,
//! `${VAR:?error}`, `${VAR?error}`, `${VAR:+alternative}`, `${VAR+alternative}`, `$$` for a
//! dollar; defaults may themselves hold variables.

/// Defaults nested deeper than this are refused: each level rescans its part of the text,
/// so a bound on the depth keeps the work linear in the text's length (and the recursion
/// off the end of the stack: a hostile file nesting 5000 levels aborted wharf).
const MAX_NESTING: usize = 64;

/// Interpolate `text`; `lookup` gives a variable's value. Unset variables without a default
/// become empty and are reported in `unset`.
pub fn interpolate(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    unset: &mut Vec<String>,
) -> Result<String, String> {
    nested(text, lookup, unset, 0)
}

fn nested(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    unset: &mut Vec<String>,
    depth: usize,
) -> Result<String, String> {
    if depth > MAX_NESTING {
        return Err(format!(
            "variables nested more than {MAX_NESTING} levels deep in an interpolation"
        ));
    }
    let mut out = String::new();
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c != '$' {
            out.push(c);
            continue;
        }
        match chars.peek().map(|&(_, c)| c) {
            Some('$') => {
                chars.next();
                out.push('$');
            }
            Some('{') => {
                chars.next();
                // The matching brace (defaults may nest ${...}).
                let start = i + 2;
                let mut open = 1;
                let mut end = None;
                for (j, c) in chars.by_ref() {
                    match c {
                        '{' => open += 1,
                        '}' => {
                            open -= 1;
                            if open == 0 {
                                end = Some(j);
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                let end = end.ok_or_else(|| {
                    let shown: String = text.chars().take(80).collect();
                    format!("unclosed ${{ in {shown:?}")
                })?;
                out.push_str(&braced(&text[start..end], lookup, unset, depth)?);
            }
            Some(c) if c == '_' || c.is_ascii_alphabetic() => {
                let mut name = String::new();
                while let Some(&(_, c)) = chars.peek() {
                    if c == '_' || c.is_ascii_alphanumeric() {
                        name.push(c);
                        chars.next();
                    } else {
                        break;
                    }
                }
                match lookup(&name) {
                    Some(v) => out.push_str(&v),
                    None => unset.push(name),
                }
            }
            _ => out.push('$'),
        }
    }
    Ok(out)
}

fn braced(
    inner: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    unset: &mut Vec<String>,
    depth: usize,
) -> Result<String, String> {
    let name_len = inner
        .find(|c: char| !(c == '_' || c.is_ascii_alphanumeric()))
        .unwrap_or(inner.len());
    let (name, rest) = inner.split_at(name_len);
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(format!("invalid variable name in ${{{inner}}}"));
    }
    let value = lookup(name);
    let set = value.is_some();
    let nonempty = value.as_deref().is_some_and(|v| !v.is_empty());
    let (op, arg) = if let Some(a) = rest.strip_prefix(":-") {
        (":-", a)
    } else if let Some(a) = rest.strip_prefix(":?") {
        (":?", a)
    } else if let Some(a) = rest.strip_prefix(":+") {
        (":+", a)
    } else if let Some(a) = rest.strip_prefix('-') {
        ("-", a)
    } else if let Some(a) = rest.strip_prefix('?') {
        ("?", a)
    } else if let Some(a) = rest.strip_prefix('+') {
        ("+", a)
    } else if rest.is_empty() {
        ("", "")
    } else {
        return Err(format!("invalid interpolation ${{{inner}}}"));
    };
    let text = arg;
    let arg = |u: &mut Vec<String>| nested(text, lookup, u, depth + 1);
    Ok(match op {
        ":-" if !nonempty => arg(unset)?,
        "-" if !set => arg(unset)?,
        ":?" if !nonempty => {
            return Err(format!(
                "required variable {name} is missing a value: {}",
                arg(unset)?
            ));
        }
        "?" if !set => {
            return Err(format!(
                "required variable {name} is missing a value: {}",
                arg(unset)?
            ));
        }
        ":+" => {
            if nonempty {
                arg(unset)?
            } else {
                String::new()
            }
        }
        "+" => {
            if set {
                arg(unset)?
            } else {
                String::new()
            }
        }
        _ => match value {
            Some(v) => v,
            None => {
                unset.push(name.to_string());
                String::new()
            }
        },
    })
}

/// A `.env` file: `KEY=VALUE` lines (`export ` allowed, `#` comments, values optionally in
/// single or double quotes; double-quoted ones may use `\n` and `\"`).
pub fn parse_dotenv(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((k, v)) = line.split_once('=') else {
            return Err(format!("line {}: expected KEY=VALUE: {line:?}", n + 1));
        };
        let k = k.trim();
        if k.is_empty()
            || !k
                .chars()
                .all(|c| c == '_' || c == '.' || c.is_ascii_alphanumeric())
        {
            return Err(format!("line {}: invalid variable name {k:?}", n + 1));
        }
        let v = v.trim();
        // A quoted value ends at its closing quote (a comment may follow).
        let closing = |q: char| {
            let body = &v[1..];
            let mut escaped = false;
            body.char_indices()
                .find(|&(_, c)| {
                    let end = c == q && !escaped;
                    escaped = q == '"' && c == '\\' && !escaped;
                    end
                })
                .map(|(i, _)| &body[..i])
        };
        let v = if let Some(q) = v.starts_with('"').then(|| closing('"')).flatten() {
            q.replace("\\n", "\n").replace("\\\"", "\"")
        } else if let Some(q) = v.starts_with('\'').then(|| closing('\'')).flatten() {
            q.to_string()
        } else {
            // An unquoted value ends at a ` #` comment.
            v.split(" #").next().unwrap_or("").trim_end().to_string()
        };
        out.push((k.to_string(), v));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(text: &str) -> Result<(String, Vec<String>), String> {
        let env = |k: &str| match k {
            "SET" => Some("value".to_string()),
            "EMPTY" => Some(String::new()),
            "PORT" => Some("8080".to_string()),
            _ => None,
        };
        let mut unset = Vec::new();
        interpolate(text, &env, &mut unset).map(|s| (s, unset))
    }

    #[test]
    fn deep_nesting_is_refused_and_long_text_stays_linear() {
        let nest = |n: usize| format!("{}x{}", "${UNSET:-".repeat(n), "}".repeat(n));
        assert_eq!(run(&nest(MAX_NESTING)).unwrap().0, "x");
        // 5000 levels aborted wharf with a stack overflow: now an error naming the limit.
        let err = run(&nest(5000)).unwrap_err();
        assert!(err.contains("nested more than 64 levels"), "{err}");
        // Long text, wide rather than deep: one pass.
        let wide = "${UNSET:-${PORT}} ".repeat(200_000);
        let t = std::time::Instant::now();
        assert_eq!(run(&wide).unwrap().0.len(), 5 * 200_000);
        assert!(t.elapsed() < std::time::Duration::from_secs(5));
    }

    #[test]
    fn every_form_interpolates_as_compose_does() {
        let ok = |t: &str| run(t).unwrap().0;
        assert_eq!(ok("$SET and ${SET}"), "value and value");
        assert_eq!(ok("a$$b $$SET"), "a$b $SET");
        assert_eq!(
            ok("${UNSET:-dflt} ${EMPTY:-dflt} ${SET:-dflt}"),
            "dflt dflt value"
        );
        assert_eq!(ok("${UNSET-dflt} ${EMPTY-dflt}"), "dflt ");
        assert_eq!(
            ok("${SET:+alt} ${EMPTY:+alt} ${EMPTY+alt} ${UNSET+alt}"),
            "alt  alt "
        );
        assert_eq!(ok("${UNSET:-${PORT}}"), "8080", "defaults interpolate too");
        assert_eq!(ok("127.0.0.1:${PORT}:80"), "127.0.0.1:8080:80");
        assert_eq!(ok("cost: 5$"), "cost: 5$");
        let (s, unset) = run("x${UNSET}y$ALSO").unwrap();
        assert_eq!(s, "xy");
        assert_eq!(unset, ["UNSET", "ALSO"]);
        let e = run("${UNSET:?set UNSET first}").unwrap_err();
        assert!(e.contains("UNSET") && e.contains("set UNSET first"), "{e}");
        assert!(run("${EMPTY:?no}").is_err());
        assert_eq!(ok("${EMPTY?no}"), "");
        assert!(run("${SET").unwrap_err().contains("unclosed"));
        assert!(run("${SET!}").is_err());
    }

    #[test]
    fn dotenv_files_parse() {
        let vars = parse_dotenv(
            "# comment\nexport A=1\nB=\"two words\" # said\nC='$literal'\nD=plain # trailing\n\nE=\n",
        )
        .unwrap();
        assert_eq!(
            vars,
            [
                ("A".into(), "1".into()),
                ("B".into(), "two words".into()),
                ("C".into(), "$literal".into()),
                ("D".into(), "plain".into()),
                ("E".into(), String::new()),
            ]
        );
        assert!(
            parse_dotenv("no equals sign")
                .unwrap_err()
                .contains("line 1")
        );
    }
}
