//! `--format` Go templates, as Docker's CLI renders them: Go's text/template (the `gtmpl`
//! crate) over the same JSON `inspect` prints, with Docker's extra functions `json`, `join`,
//! `split`, `lower`, `upper`, `title`, `pad` and `truncate`.

use gtmpl::{Context, Template};
use gtmpl_value::{FuncError, Number, Value};

/// A `--format` template that failed to parse or to run.
#[derive(Debug, thiserror::Error)]
#[error("template {template:?}: {why}")]
pub struct TemplateError {
    template: String,
    why: String,
}

/// A parsed `--format` template.
pub struct Format {
    template: Template,
    text: String,
    /// `table TEMPLATE`: a header row, columns aligned at the template's tabs.
    table: bool,
}

impl Format {
    /// Parse `text` (Docker's `--format`; a trailing newline is added on output, as Docker does).
    pub fn parse(text: &str) -> Result<Format, TemplateError> {
        let (table, text) = match text.strip_prefix("table") {
            Some(rest) if rest.is_empty() || rest.starts_with(char::is_whitespace) => {
                (true, rest.trim_start())
            }
            _ => (false, text),
        };
        let mut template = Template::default();
        template.add_funcs(&[
            ("json", json as gtmpl_value::Func),
            ("join", join),
            ("split", split),
            ("lower", lower),
            ("upper", upper),
            ("title", title),
            ("pad", pad),
            ("truncate", truncate),
        ]);
        // As Docker's CLI: `\t` and `\n` typed in a shell's quotes are a tab and a newline.
        let text = &text.replace("\\t", "\t").replace("\\n", "\n");
        template.parse(text.as_str()).map_err(|e| TemplateError {
            template: text.to_string(),
            why: e.to_string(),
        })?;
        Ok(Format {
            template,
            text: text.to_string(),
            table,
        })
    }

    /// Every row through the template, one output line each; a `table` format first renders
    /// the template over the column headers (`headers`: field name and Docker's header for
    /// it; other fields are headed by their name in capitals) and aligns the tab-separated
    /// cells as Docker's tabwriter does (at least 10 wide, 3 spaces apart).
    pub fn write_rows(
        &self,
        out: &mut impl std::io::Write,
        headers: &[(&str, &str)],
        rows: &[serde_json::Value],
    ) -> anyhow::Result<()> {
        if !self.table {
            for row in rows {
                writeln!(out, "{}", self.render(row)?)?;
            }
            return Ok(());
        }
        let mut head = serde_json::Map::new();
        if let Some(serde_json::Value::Object(first)) = rows.first() {
            for k in first.keys() {
                head.insert(k.clone(), k.to_uppercase().into());
            }
        }
        for (field, title) in headers {
            head.insert(field.to_string(), title.to_string().into());
        }
        let mut lines = vec![self.render(&serde_json::Value::Object(head))?];
        for row in rows {
            lines.push(self.render(row)?);
        }
        let lines: Vec<Vec<&str>> = lines
            .iter()
            .flat_map(|l| l.split('\n'))
            .map(|l| l.split('\t').collect())
            .collect();
        let mut widths = Vec::<usize>::new();
        for cells in &lines {
            // A line's last cell is not a column: it sets no width.
            for (i, c) in cells.iter().enumerate().take(cells.len().saturating_sub(1)) {
                if widths.len() <= i {
                    widths.push(0);
                }
                widths[i] = widths[i].max((c.chars().count() + 3).max(10));
            }
        }
        for cells in &lines {
            let last = cells.len() - 1;
            let mut line = String::new();
            for (i, c) in cells.iter().enumerate() {
                if i == last {
                    line.push_str(c);
                } else {
                    line.push_str(&format!("{c:<w$}", w = widths[i]));
                }
            }
            writeln!(out, "{}", line.trim_end())?;
        }
        Ok(())
    }

    /// The template applied to `data`.
    pub fn render(&self, data: &serde_json::Value) -> Result<String, TemplateError> {
        self.template
            .render(&Context::from(to_value(data)))
            .map_err(|e| TemplateError {
                template: self.text.clone(),
                why: e.to_string(),
            })
    }
}

/// JSON as a template value. JSON objects become maps, so a missing key prints `<no value>`
/// as in Go (where Docker's structs would not even have the field, wharf's JSON is the schema).
fn to_value(v: &serde_json::Value) -> Value {
    match v {
        serde_json::Value::Null => Value::Nil,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
            (Some(u), _, _) => Value::Number(Number::from(u)),
            (_, Some(i), _) => Value::Number(Number::from(i)),
            (_, _, Some(f)) => Value::Number(Number::from(f)),
            _ => Value::Nil,
        },
        serde_json::Value::String(s) => Value::String(s.clone()),
        serde_json::Value::Array(a) => Value::Array(a.iter().map(to_value).collect()),
        serde_json::Value::Object(o) => {
            Value::Map(o.iter().map(|(k, v)| (k.clone(), to_value(v))).collect())
        }
    }
}

/// A template value as JSON (for `{{json .X}}`).
fn to_json(v: &Value) -> serde_json::Value {
    match v {
        Value::NoValue | Value::Nil | Value::Function(_) => serde_json::Value::Null,
        Value::Bool(b) => serde_json::Value::Bool(*b),
        Value::String(s) => serde_json::Value::String(s.clone()),
        Value::Number(n) => n
            .as_u64()
            .map(serde_json::Value::from)
            .or_else(|| n.as_i64().map(serde_json::Value::from))
            .or_else(|| n.as_f64().map(serde_json::Value::from))
            .unwrap_or(serde_json::Value::Null),
        Value::Array(a) => serde_json::Value::Array(a.iter().map(to_json).collect()),
        Value::Object(m) | Value::Map(m) => {
            // Sorted keys, as Go's encoding/json writes a map.
            let sorted: std::collections::BTreeMap<_, _> = m.iter().collect();
            serde_json::Value::Object(
                sorted
                    .into_iter()
                    .map(|(k, v)| (k.clone(), to_json(v)))
                    .collect(),
            )
        }
    }
}

fn arity(name: &str, args: &[Value], n: usize) -> Result<(), FuncError> {
    if args.len() == n {
        Ok(())
    } else {
        Err(FuncError::ExactlyXArgs(name.to_string(), n))
    }
}

fn string(v: &Value) -> Result<String, FuncError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Nil | Value::NoValue => Ok(String::new()),
        other => Ok(gtmpl::go_format(other)),
    }
}

fn json(args: &[Value]) -> Result<Value, FuncError> {
    arity("json", args, 1)?;
    serde_json::to_string(&to_json(&args[0]))
        .map(Value::String)
        .map_err(|e| FuncError::Generic(e.to_string()))
}

fn join(args: &[Value]) -> Result<Value, FuncError> {
    arity("join", args, 2)?;
    let sep = string(&args[1])?;
    let items = match &args[0] {
        Value::Array(a) => a.iter().map(string).collect::<Result<Vec<_>, _>>()?,
        Value::Nil | Value::NoValue => Vec::new(),
        _ => return Err(FuncError::Generic("join: expected a list".into())),
    };
    Ok(Value::String(items.join(&sep)))
}

fn split(args: &[Value]) -> Result<Value, FuncError> {
    arity("split", args, 2)?;
    let (s, sep) = (string(&args[0])?, string(&args[1])?);
    Ok(Value::Array(
        s.split(sep.as_str())
            .map(|p| Value::String(p.to_string()))
            .collect(),
    ))
}

fn lower(args: &[Value]) -> Result<Value, FuncError> {
    arity("lower", args, 1)?;
    Ok(Value::String(string(&args[0])?.to_lowercase()))
}

fn upper(args: &[Value]) -> Result<Value, FuncError> {
    arity("upper", args, 1)?;
    Ok(Value::String(string(&args[0])?.to_uppercase()))
}

fn title(args: &[Value]) -> Result<Value, FuncError> {
    arity("title", args, 1)?;
    let s = string(&args[0])?;
    let mut out = String::with_capacity(s.len());
    let mut start = true;
    for c in s.chars() {
        if start {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        start = c.is_whitespace();
    }
    Ok(Value::String(out))
}

fn count(v: &Value) -> Result<usize, FuncError> {
    match v {
        Value::Number(n) => n
            .as_u64()
            .map(|n| n as usize)
            .ok_or_else(|| FuncError::Generic("expected a count".into())),
        _ => Err(FuncError::Generic("expected a count".into())),
    }
}

/// `pad S L R`: S with L spaces before and R after.
fn pad(args: &[Value]) -> Result<Value, FuncError> {
    arity("pad", args, 3)?;
    let s = string(&args[0])?;
    let (l, r) = (count(&args[1])?, count(&args[2])?);
    Ok(Value::String(format!(
        "{}{s}{}",
        " ".repeat(l),
        " ".repeat(r)
    )))
}

/// `truncate S N`: the first N characters of S.
fn truncate(args: &[Value]) -> Result<Value, FuncError> {
    arity("truncate", args, 2)?;
    let n = count(&args[1])?;
    Ok(Value::String(string(&args[0])?.chars().take(n).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn render(t: &str, data: serde_json::Value) -> String {
        Format::parse(t).unwrap().render(&data).unwrap()
    }

    #[test]
    fn docker_templates() {
        let c = json!({
            "State": {"Status": "running", "Pid": 42, "ExitCode": 0, "Running": true},
            "Mounts": [{"Type": "volume", "Name": "data", "Destination": "/d"}],
            "Config": {"Env": ["A=1", "B=2"], "Labels": {"z": "last", "a": "first"}},
            "Name": "web",
            "Gone": null,
        });
        assert_eq!(render("{{.State.Status}}", c.clone()), "running");
        assert_eq!(render("{{.State.Pid}}", c.clone()), "42");
        assert_eq!(render("{{.State.Running}}", c.clone()), "true");
        assert_eq!(
            render("{{json .Mounts}}", c.clone()),
            r#"[{"Destination":"/d","Name":"data","Type":"volume"}]"#
        );
        assert_eq!(
            render(
                "{{range .Mounts}}{{.Name}}:{{.Destination}} {{end}}",
                c.clone()
            ),
            "data:/d "
        );
        // Maps in key order, as Go.
        assert_eq!(
            render(
                "{{range $k, $v := .Config.Labels}}{{$k}}={{$v}};{{end}}",
                c.clone()
            ),
            "a=first;z=last;"
        );
        assert_eq!(render("{{index .Config.Labels \"z\"}}", c.clone()), "last");
        assert_eq!(render("{{join .Config.Env \",\"}}", c.clone()), "A=1,B=2");
        assert_eq!(render("{{.Config.Env}}", c.clone()), "[A=1 B=2]");
        assert_eq!(render("{{upper .Name}}", c.clone()), "WEB");
        assert_eq!(render("{{.Gone}}", c.clone()), "<nil>");
        assert_eq!(render("{{.Missing}}", c.clone()), "<no value>");
        assert_eq!(
            render(
                "{{if eq .State.Status \"running\"}}up{{else}}down{{end}}",
                c.clone()
            ),
            "up"
        );
        assert_eq!(render("{{len .Mounts}}", c.clone()), "1");
        assert_eq!(render("{{- .Name -}}  ", c.clone()), "web");
        assert_eq!(render(r"{{.Name}}\t{{.State.Pid}}\n", c), "web\t42\n");
    }

    #[test]
    fn bad_templates_say_why() {
        let e = Format::parse("{{.State.Status").err().unwrap().to_string();
        assert!(e.contains("{{.State.Status"), "{e}");
        let e = Format::parse("{{nosuchfunc .X}}")
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("nosuchfunc"), "{e}");
    }
}
