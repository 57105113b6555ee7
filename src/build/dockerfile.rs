//! A Dockerfile read into stages of steps. The grammar (line continuations, the `escape`
//! directive, JSON and shell forms, flags, here-documents) is taiki-e's `parse-dockerfile`;
//! this module turns its syntax tree into what the builder does, refusing by name and line
//! what it does not do, and expands variables as Docker's builder does (`$V`, `${V}`,
//! `${V:-default}`, `${V:+alt}`, quotes and escapes).

use std::collections::BTreeMap;

use parse_dockerfile::{Command, Flag, Instruction, JsonOrStringArray, Source};

/// What is wrong with a Dockerfile.
#[derive(Debug, thiserror::Error)]
pub enum DockerfileError {
    #[error("Dockerfile parse error: {0}")]
    Parse(String),
    #[error("Dockerfile line {line}: {why}")]
    Line { line: usize, why: String },
}

fn at(line: usize, why: impl Into<String>) -> DockerfileError {
    DockerfileError::Line {
        line,
        why: why.into(),
    }
}

/// A command as written: JSON (exec) form or shell form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cmd {
    Exec(Vec<String>),
    Shell(String),
}

impl Cmd {
    /// The argv it runs under `shell` (`SHELL`, by default `/bin/sh -c`).
    pub fn argv(&self, shell: &[String]) -> Vec<String> {
        match self {
            Cmd::Exec(v) => v.clone(),
            Cmd::Shell(s) => shell.iter().cloned().chain([s.clone()]).collect(),
        }
    }
}

/// `COPY` or `ADD`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyStep {
    pub add: bool,
    pub from: Option<String>,
    pub chown: Option<String>,
    pub chmod: Option<String>,
    pub sources: Vec<String>,
    pub dest: String,
}

/// One instruction of a stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepKind {
    Run(Cmd),
    Copy(CopyStep),
    /// `ENV`: raw `KEY=VALUE` words (expanded when the step runs).
    Env(String),
    /// `ARG`: names with their defaults, raw.
    Arg(Vec<(String, Option<String>)>),
    Label(String),
    Workdir(String),
    User(String),
    Cmd(Cmd),
    Entrypoint(Cmd),
    Expose(Vec<String>),
    Volume(Vec<String>),
    StopSignal(String),
    Shell(Vec<String>),
    /// `HEALTHCHECK NONE` (None) or a test with its options.
    Healthcheck(Option<(Vec<String>, BTreeMap<String, String>)>),
    Maintainer(String),
}

/// An instruction with where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub line: usize,
    /// As written (continuations joined): the history's `created_by` and the cache key.
    pub text: String,
    pub kind: StepKind,
}

/// `FROM ... [AS name]` and what follows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    pub line: usize,
    pub base: String,
    pub platform: Option<String>,
    pub name: Option<String>,
    pub steps: Vec<Step>,
}

/// A whole Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    /// `ARG`s before the first `FROM` (usable in `FROM` lines).
    pub global_args: Vec<(String, Option<String>)>,
    pub stages: Vec<Stage>,
}

/// The longest Dockerfile read (Docker's own limit is far above any real one; this bounds
/// memory and time for a hostile one).
pub const MAX_BYTES: usize = 16 << 20;

/// Read `text` as a Dockerfile.
pub fn parse(text: &str) -> Result<Dockerfile, DockerfileError> {
    if text.len() > MAX_BYTES {
        return Err(DockerfileError::Parse(format!(
            "it is {} bytes, more than the {MAX_BYTES} read",
            text.len()
        )));
    }
    let parsed =
        parse_dockerfile::parse(text).map_err(|e| DockerfileError::Parse(e.to_string()))?;
    let escape = parsed
        .parser_directives
        .escape
        .as_ref()
        .map_or('\\', |d| d.value.value);
    // Where each line starts: an offset's line by binary search (a rescan per instruction
    // would be quadratic in a long file).
    let line_starts: Vec<usize> = std::iter::once(0)
        .chain(text.match_indices('\n').map(|(i, _)| i + 1))
        .collect();
    let line_of = |offset: usize| line_starts.partition_point(|&s| s <= offset);
    let mut out = Dockerfile {
        global_args: Vec::new(),
        stages: Vec::new(),
    };
    let starts: Vec<usize> = parsed.instructions.iter().map(start_of).collect();
    for (n, inst) in parsed.instructions.iter().enumerate() {
        let start = starts[n];
        let end = starts.get(n + 1).copied().unwrap_or(text.len());
        let line = line_of(start);
        let text_of = join_lines(&text[start..end.max(start)], escape);
        if let Instruction::From(f) = inst {
            let mut platform = None;
            for flag in &f.options {
                match (flag.name.value.as_ref(), &flag.value) {
                    ("platform", Some(v)) => platform = Some(v.value.to_string()),
                    (name, _) => return Err(at(line, format!("FROM --{name} is not supported"))),
                }
            }
            out.stages.push(Stage {
                line,
                base: f.image.value.to_string(),
                platform,
                name: f.as_.as_ref().map(|(_, n)| n.value.to_ascii_lowercase()),
                steps: Vec::new(),
            });
            continue;
        }
        let kind = step_kind(inst, line, escape)?;
        match out.stages.last_mut() {
            Some(stage) => stage.steps.push(Step {
                line,
                text: text_of,
                kind,
            }),
            None => match kind {
                StepKind::Arg(args) => out.global_args.extend(args),
                _ => return Err(at(line, "only ARG may come before the first FROM")),
            },
        }
    }
    if out.stages.is_empty() {
        return Err(DockerfileError::Parse(
            "no FROM: a Dockerfile starts its first stage with FROM".into(),
        ));
    }
    Ok(out)
}

/// Where an instruction starts in the text: its keyword.
fn start_of(inst: &Instruction<'_>) -> usize {
    match inst {
        Instruction::Add(i) => i.add.span.start,
        Instruction::Arg(i) => i.arg.span.start,
        Instruction::Cmd(i) => i.cmd.span.start,
        Instruction::Copy(i) => i.copy.span.start,
        Instruction::Entrypoint(i) => i.entrypoint.span.start,
        Instruction::Env(i) => i.env.span.start,
        Instruction::Expose(i) => i.expose.span.start,
        Instruction::From(i) => i.from.span.start,
        Instruction::Healthcheck(i) => i.healthcheck.span.start,
        Instruction::Label(i) => i.label.span.start,
        Instruction::Maintainer(i) => i.maintainer.span.start,
        Instruction::Onbuild(i) => i.onbuild.span.start,
        Instruction::Run(i) => i.run.span.start,
        Instruction::Shell(i) => i.shell.span.start,
        Instruction::Stopsignal(i) => i.stopsignal.span.start,
        Instruction::User(i) => i.user.span.start,
        Instruction::Volume(i) => i.volume.span.start,
        Instruction::Workdir(i) => i.workdir.span.start,
        _ => 0,
    }
}

/// Continuation lines joined as Docker joins them: `escape` + newline removed, comment lines
/// inside the instruction dropped; the instruction ends at its first line without a
/// continuation (here-documents after it are not part of its text).
fn join_lines(raw: &str, escape: char) -> String {
    let mut out = String::new();
    for (i, line) in raw.split('\n').enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if i > 0 && line.trim_start().starts_with('#') {
            continue;
        }
        match line.strip_suffix(escape) {
            Some(body) => out.push_str(body),
            None => {
                out.push_str(line);
                break;
            }
        }
    }
    out.trim().to_string()
}

fn command(c: &Command<'_>, line: usize, escape: char, what: &str) -> Result<Cmd, DockerfileError> {
    match c {
        Command::Exec(v) => Ok(Cmd::Exec(
            v.value.iter().map(|s| s.value.to_string()).collect(),
        )),
        Command::Shell(s) => {
            let joined = join_lines(s.value, escape);
            if joined.is_empty() {
                return Err(at(line, format!("{what} needs a command")));
            }
            Ok(Cmd::Shell(joined))
        }
        _ => Err(at(line, format!("{what}: this form is not supported"))),
    }
}

fn refuse_flags(flags: &[Flag<'_>], line: usize, what: &str) -> Result<(), DockerfileError> {
    match flags.first() {
        Some(f) => Err(at(
            line,
            format!(
                "{what} --{} is not supported by wharf build (it is refused rather than ignored)",
                f.name.value
            ),
        )),
        None => Ok(()),
    }
}

fn step_kind(
    inst: &Instruction<'_>,
    line: usize,
    escape: char,
) -> Result<StepKind, DockerfileError> {
    Ok(match inst {
        Instruction::Run(r) => {
            refuse_flags(&r.options, line, "RUN")?;
            match (r.here_docs.as_slice(), &r.arguments) {
                ([], args) => StepKind::Run(command(args, line, escape, "RUN")?),
                ([doc], Command::Shell(s))
                    if s.value.trim().is_empty()
                        || s.value.trim().starts_with("<<") && !s.value.contains(' ') =>
                {
                    StepKind::Run(Cmd::Shell(doc.value.to_string()))
                }
                _ => {
                    return Err(at(
                        line,
                        "RUN with a here-document is supported as `RUN <<EOF` alone (the document is the script); this form is not",
                    ));
                }
            }
        }
        Instruction::Copy(c) => {
            let mut step = copy_step(&c.options, &c.src, &c.dest.value, line, false)?;
            step.add = false;
            StepKind::Copy(step)
        }
        Instruction::Add(a) => {
            StepKind::Copy(copy_step(&a.options, &a.src, &a.dest.value, line, true)?)
        }
        Instruction::Env(e) => StepKind::Env(join_lines(&e.arguments.value, escape)),
        Instruction::Label(l) => StepKind::Label(join_lines(&l.arguments.value, escape)),
        Instruction::Arg(a) => {
            let raw = a.arguments.value.trim();
            let mut args = Vec::new();
            for word in split_words(raw) {
                let (name, default) = match word.split_once('=') {
                    Some((n, d)) => (n.to_string(), Some(d.to_string())),
                    None => (word.clone(), None),
                };
                if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    return Err(at(line, format!("ARG {name:?}: not a variable name")));
                }
                args.push((name, default));
            }
            if args.is_empty() {
                return Err(at(line, "ARG needs a name"));
            }
            StepKind::Arg(args)
        }
        Instruction::Workdir(w) => StepKind::Workdir(w.arguments.value.trim().to_string()),
        Instruction::User(u) => StepKind::User(u.arguments.value.trim().to_string()),
        Instruction::Cmd(c) => StepKind::Cmd(command(&c.arguments, line, escape, "CMD")?),
        Instruction::Entrypoint(e) => {
            StepKind::Entrypoint(command(&e.arguments, line, escape, "ENTRYPOINT")?)
        }
        Instruction::Expose(e) => {
            StepKind::Expose(e.arguments.iter().map(|p| p.value.to_string()).collect())
        }
        Instruction::Volume(v) => StepKind::Volume(match &v.arguments {
            JsonOrStringArray::Json(j) => j.value.iter().map(|s| s.value.to_string()).collect(),
            JsonOrStringArray::String(s) => s.iter().map(|s| s.value.to_string()).collect(),
        }),
        Instruction::Stopsignal(s) => StepKind::StopSignal(s.arguments.value.trim().to_string()),
        Instruction::Shell(s) => {
            StepKind::Shell(s.arguments.iter().map(|a| a.value.to_string()).collect())
        }
        Instruction::Maintainer(m) => StepKind::Maintainer(m.name.value.to_string()),
        Instruction::Healthcheck(h) => {
            let mut opts = BTreeMap::new();
            for f in &h.options {
                let name = f.name.value.to_string();
                if !matches!(
                    name.as_str(),
                    "interval" | "timeout" | "start-period" | "start-interval" | "retries"
                ) {
                    return Err(at(line, format!("HEALTHCHECK --{name} is not an option")));
                }
                let value = f
                    .value
                    .as_ref()
                    .map(|v| v.value.to_string())
                    .unwrap_or_default();
                opts.insert(name, value);
            }
            StepKind::Healthcheck(match &h.arguments {
                parse_dockerfile::HealthcheckArguments::Cmd { arguments, .. } => {
                    let test = match command(arguments, line, escape, "HEALTHCHECK CMD")? {
                        Cmd::Exec(v) => std::iter::once("CMD".to_string()).chain(v).collect(),
                        Cmd::Shell(s) => vec!["CMD-SHELL".to_string(), s],
                    };
                    Some((test, opts))
                }
                _ => None,
            })
        }
        Instruction::Onbuild(_) => {
            return Err(at(
                line,
                "ONBUILD is not supported by wharf build (triggers are refused rather than stored unrun)",
            ));
        }
        Instruction::From(_) => unreachable!("FROM is read by the caller"),
        _ => return Err(at(line, "this instruction is not supported by wharf build")),
    })
}

fn copy_step(
    flags: &[Flag<'_>],
    src: &[Source<'_>],
    dest: &str,
    line: usize,
    add: bool,
) -> Result<CopyStep, DockerfileError> {
    let what = if add { "ADD" } else { "COPY" };
    let mut step = CopyStep {
        add,
        from: None,
        chown: None,
        chmod: None,
        sources: Vec::new(),
        dest: dest.to_string(),
    };
    for f in flags {
        let value = f.value.as_ref().map(|v| v.value.to_string());
        match (f.name.value.as_ref(), value) {
            ("from", Some(v)) if !add => step.from = Some(v),
            ("chown", Some(v)) => step.chown = Some(v),
            ("chmod", Some(v)) => step.chmod = Some(v),
            (name, _) => {
                return Err(at(
                    line,
                    format!("{what} --{name} is not supported by wharf build"),
                ));
            }
        }
    }
    for s in src {
        match s {
            Source::Path(p) => step.sources.push(p.value.to_string()),
            _ => {
                return Err(at(
                    line,
                    format!("{what} from a here-document is not supported by wharf build"),
                ));
            }
        }
    }
    if step.sources.is_empty() {
        return Err(at(line, format!("{what} needs a source and a destination")));
    }
    Ok(step)
}

/// Split at unquoted whitespace, keeping quotes and escapes for [`expand`] to read.
pub fn split_words(s: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, c) if c.is_whitespace() => {
                if !cur.is_empty() {
                    words.push(std::mem::take(&mut cur));
                }
            }
            (None, '"' | '\'') => {
                quote = Some(c);
                cur.push(c);
            }
            (Some(q), c) if c == q => {
                quote = None;
                cur.push(c);
            }
            (q, '\\') if q != Some('\'') => {
                cur.push('\\');
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            (_, c) => cur.push(c),
        }
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    words
}

/// Expand `$V`, `${V}`, `${V:-word}`, `${V-word}`, `${V:+word}`, `${V+word}` in `word`
/// with `vars`, and remove its quotes and escapes (single quotes expand nothing).
pub fn expand(word: &str, vars: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::new();
    let chars: Vec<char> = word.chars().collect();
    let mut i = 0;
    let mut quote: Option<char> = None;
    while i < chars.len() {
        let c = chars[i];
        match (quote, c) {
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (Some('\''), c) => out.push(c),
            (_, '\\') if i + 1 < chars.len() => {
                i += 1;
                let n = chars[i];
                // In double quotes a backslash escapes only `$`, `"`, `\` and the newline.
                if quote == Some('"') && !matches!(n, '$' | '"' | '\\') {
                    out.push('\\');
                }
                out.push(n);
            }
            (_, '$') if i + 1 < chars.len() && chars[i + 1] == '{' => {
                let close = chars[i + 2..]
                    .iter()
                    .position(|&c| c == '}')
                    .ok_or_else(|| format!("{word:?}: ${{ without }}"))?;
                let inner: String = chars[i + 2..i + 2 + close].iter().collect();
                out.push_str(&substitute(&inner, vars)?);
                i += 2 + close;
            }
            (_, '$')
                if i + 1 < chars.len()
                    && (chars[i + 1].is_ascii_alphabetic() || chars[i + 1] == '_') =>
            {
                let name: String = chars[i + 1..]
                    .iter()
                    .take_while(|c| c.is_ascii_alphanumeric() || **c == '_')
                    .collect();
                out.push_str(&vars(&name).unwrap_or_default());
                i += name.chars().count();
            }
            (_, c) => out.push(c),
        }
        i += 1;
    }
    Ok(out)
}

fn substitute(inner: &str, vars: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let name_len = inner
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(inner.len());
    let (name, op) = inner.split_at(name_len);
    if name.is_empty() {
        return Err(format!("${{{inner}}}: no variable name"));
    }
    let value = vars(name);
    let set_nonempty = value.as_deref().is_some_and(|v| !v.is_empty());
    Ok(match op {
        "" => value.unwrap_or_default(),
        _ if op.starts_with(":-") => {
            if set_nonempty {
                value.unwrap_or_default()
            } else {
                expand(&op[2..], vars)?
            }
        }
        _ if op.starts_with('-') => match value {
            Some(v) => v,
            None => expand(&op[1..], vars)?,
        },
        _ if op.starts_with(":+") => {
            if set_nonempty {
                expand(&op[2..], vars)?
            } else {
                String::new()
            }
        }
        _ if op.starts_with('+') => {
            if value.is_some() {
                expand(&op[1..], vars)?
            } else {
                String::new()
            }
        }
        _ => return Err(format!("${{{inner}}}: unsupported modifier {op:?}")),
    })
}

/// `KEY=VALUE ...` (or the old `KEY VALUE` form) of ENV and LABEL, expanded.
pub fn pairs(
    raw: &str,
    vars: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<(String, String)>, String> {
    let words = split_words(raw);
    let Some(first) = words.first() else {
        return Err("it needs KEY=VALUE".into());
    };
    if !first.contains('=') {
        // `ENV KEY the rest of the line`.
        let key = expand(first, vars)?;
        let rest = raw.trim_start()[first.len()..].trim();
        return Ok(vec![(key, expand(rest, vars)?)]);
    }
    words
        .iter()
        .map(|w| {
            let (k, v) = w
                .split_once('=')
                .ok_or_else(|| format!("{w:?}: expected KEY=VALUE"))?;
            let key = expand(k, vars)?;
            if key.is_empty() {
                return Err(format!("{w:?}: the key is empty"));
            }
            Ok((key, expand(v, vars)?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(name: &str) -> Option<String> {
        match name {
            "A" => Some("one".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn stages_steps_and_lines() {
        let d = parse(
            "# syntax=docker/dockerfile:1\nARG BASE=busybox\nFROM $BASE AS Build\nRUN echo a \\\n  # note\n  && echo b\nCOPY --from=build --chown=1:2 a* /d/\nFROM scratch\nCMD [\"/app\"]\n",
        )
        .unwrap();
        assert_eq!(
            d.global_args,
            [("BASE".to_string(), Some("busybox".to_string()))]
        );
        assert_eq!(d.stages.len(), 2);
        assert_eq!(d.stages[0].name.as_deref(), Some("build"));
        assert_eq!(d.stages[0].base, "$BASE");
        let run = &d.stages[0].steps[0];
        assert_eq!(run.line, 4);
        assert_eq!(
            run.kind,
            StepKind::Run(Cmd::Shell("echo a   && echo b".into()))
        );
        let StepKind::Copy(c) = &d.stages[0].steps[1].kind else {
            panic!("a copy")
        };
        assert_eq!(
            (c.from.as_deref(), c.chown.as_deref()),
            (Some("build"), Some("1:2"))
        );
        assert_eq!(
            (c.sources.as_slice(), c.dest.as_str()),
            (&["a*".to_string()][..], "/d/")
        );
        assert_eq!(
            d.stages[1].steps[0].kind,
            StepKind::Cmd(Cmd::Exec(vec!["/app".into()]))
        );
    }

    #[test]
    fn what_is_not_done_is_refused_by_line() {
        for (text, line, word) in [
            (
                "FROM a\nRUN --mount=type=cache,target=/x make\n",
                2,
                "--mount",
            ),
            ("FROM a\nONBUILD RUN x\n", 2, "ONBUILD"),
            ("RUN x\n", 1, "FROM"),
            ("FROM a\n\nCOPY --link x /y\n", 3, "--link"),
        ] {
            let e = parse(text).unwrap_err().to_string();
            assert!(
                e.contains(&format!("line {line}")) && e.contains(word),
                "{e}"
            );
        }
        assert!(parse("# just a comment\n").is_err());
    }

    #[test]
    fn here_document_run() {
        let d = parse("FROM a\nRUN <<EOF\necho hi\necho there\nEOF\n").unwrap();
        assert_eq!(
            d.stages[0].steps[0].kind,
            StepKind::Run(Cmd::Shell("echo hi\necho there\n".into()))
        );
    }

    #[test]
    fn expansion_as_docker_does_it() {
        let e = |w: &str| expand(w, &vars).unwrap();
        assert_eq!(e("$A-${A}"), "one-one");
        assert_eq!(e("${MISSING:-dflt} ${EMPTY:-x} ${EMPTY-y}"), "dflt x ");
        assert_eq!(e("${A:+alt}${MISSING:+no}"), "alt");
        assert_eq!(e("'$A' \"$A\" \\$A"), "$A one $A");
        assert_eq!(e("\"a\\b\""), "a\\b");
        assert!(expand("${A", &vars).is_err());
    }

    #[test]
    fn env_pairs_both_forms() {
        assert_eq!(
            pairs("X=\"a b\" Y=$A", &vars).unwrap(),
            [("X".into(), "a b".into()), ("Y".into(), "one".into())]
        );
        assert_eq!(
            pairs("X the rest $A", &vars).unwrap(),
            [("X".into(), "the rest one".into())]
        );
        assert!(pairs("=x", &vars).is_err());
    }
}
