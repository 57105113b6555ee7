//! `wharf top CONTAINER [ps OPTIONS]`: a container's processes, as Docker shows them: the
//! host's `ps` (default `-ef`) limited to the container's processes (native: its cgroup's;
//! wasm: the process running the guest). On Windows, where there is no `ps`: each process's
//! name, PID, CPU time and private bytes, as Docker's `top` of a Windows container.

#[cfg(not(windows))]
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
    list(&pids, args.ps_args)
}

/// The host's `ps` output (default `-ef`) for `pids` only.
#[cfg(not(windows))]
fn list(pids: &[i32], ps_args: Vec<String>) -> anyhow::Result<()> {
    let ps_args = if ps_args.is_empty() {
        vec!["-ef".to_string()]
    } else {
        ps_args
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
    for line in filter(&text, pids)? {
        outln!("{line}");
    }
    Ok(())
}

/// No `ps` on Windows: the columns Docker's `top` shows for a Windows container (private
/// bytes, the commit charge, where Docker reads the private working set).
#[cfg(windows)]
fn list(pids: &[i32], ps_args: Vec<String>) -> anyhow::Result<()> {
    if !ps_args.is_empty() {
        anyhow::bail!("ps options are for Linux hosts: top on Windows has fixed columns");
    }
    let rows: Vec<Vec<String>> = pids
        .iter()
        .filter_map(|&pid| {
            let (name, cpu_ns, private) = wharf::sys::process_summary(pid)?;
            let ms = cpu_ns / 1_000_000;
            Some(vec![
                name,
                pid.to_string(),
                format!(
                    "{:02}:{:02}:{:02}.{:03}",
                    ms / 3_600_000,
                    ms / 60_000 % 60,
                    ms / 1000 % 60,
                    ms % 1000
                ),
                super::format::human_size(private),
            ])
        })
        .collect();
    super::format::table(
        &mut std::io::stdout().lock(),
        &["Name", "PID", "CPU", "Private Bytes"],
        &rows,
    )?;
    Ok(())
}

/// The header and the lines of `ps` output whose PID column is one of `pids` (as Docker
/// does: the last column, the command, may hold spaces).
#[cfg_attr(windows, allow(dead_code))]
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
