//! `wharf top CONTAINER [ps OPTIONS]`: a container's processes, as Docker shows them: the
//! host's `ps` (default `-ef`) limited to the container's processes (native: its cgroup's;
//! wasm: the process running the guest).

use std::process::Command;

use super::Session;

#[derive(Debug, clap::Args)]
#[command(trailing_var_arg = true)]
pub struct Args {
    /// The container (name or id).
    container: String,
    /// Options for ps (default: -ef).
    #[arg(allow_hyphen_values = true, value_name = "PS OPTIONS")]
    ps_args: Vec<String>,
}

pub fn run(ctx: &Session, args: Args) -> anyhow::Result<()> {
    let containers = wharf::lifecycle::containers(&ctx.roots);
    let id = containers.find(&args.container)?;
    let record = containers.lock(&id)?.record;
    let pids = wharf::lifecycle::stats::processes(&record)?;
    let ps_args = if args.ps_args.is_empty() {
        vec!["-ef".to_string()]
    } else {
        args.ps_args
    };
    let out = Command::new("ps")
        .args(&ps_args)
        .output()
        .map_err(|e| anyhow::anyhow!("running ps: {e}"))?;
    if !out.status.success() {
        anyhow::bail!(
            "ps {}: {}",
            ps_args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    for line in filter(&text, &pids)? {
        outln!("{line}");
    }
    Ok(())
}

/// The header and the lines of `ps` output whose PID column is one of `pids` (as Docker
/// does: the last column, the command, may hold spaces).
fn filter<'a>(text: &'a str, pids: &[i32]) -> anyhow::Result<Vec<&'a str>> {
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let columns: Vec<&str> = header.split_whitespace().collect();
    let Some(pid_col) = columns.iter().position(|c| *c == "PID") else {
        anyhow::bail!("ps printed no PID column (use ps options that show it, e.g. -ef or aux)");
    };
    let mut out = vec![header];
    for line in lines {
        let pid = line
            .split_whitespace()
            .nth(pid_col)
            .and_then(|p| p.parse::<i32>().ok());
        if pid.is_some_and(|p| pids.contains(&p)) {
            out.push(line);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn keeps_the_header_and_the_containers_lines() {
        let ps = "UID          PID    PPID  C STIME TTY          TIME CMD
root           1       0  0 10:00 ?        00:00:01 /sbin/init
root          42       1  0 10:01 ?        00:00:00 sleep 1000 now
root         420       1  0 10:01 ?        00:00:00 sh -c x
";
        let got = super::filter(ps, &[42]).unwrap();
        assert_eq!(got.len(), 2);
        assert!(got[1].ends_with("sleep 1000 now"));
        assert!(super::filter("USER COMMAND\nroot x\n", &[1]).is_err());
    }
}
