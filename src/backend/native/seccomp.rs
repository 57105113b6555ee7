//! The spec's seccomp profile: compiled to BPF in the parent, before clone (it allocates and
//! takes a while), and loaded by the child just before exec.
//!
//! The BPF comes from `seccompiler` (pure Rust, so wharf links no C library and builds as a
//! static musl binary). A seccompiler filter has one action for its matches and one for the
//! rest, while an OCI profile gives each rule its own action; the profile is therefore
//! compiled to a small stack of filters, one per action, which the kernel runs together,
//! taking the most restrictive answer (kill > trap > errno > trace > log > allow):
//! - the default filter answers the default action for a call no rule matches, allow
//!   otherwise;
//! - the filter of action A answers A for a call a rule with action A matches, allow
//!   otherwise.
//!
//! Exactly one filter answers something other than allow, so the stack gives the rule's own
//! action or the default, as libseccomp's single program does. Syscall names come from the
//! host architecture's table (`syscalls`); names it does not have are skipped, as runc does.
//! The filters check the architecture and kill a process of another one (32-bit x86 or
//! arm calls on a 64-bit host): stricter than runc's multi-architecture filters.

use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr;

use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompAction, LinuxSeccompOperator};
use seccompiler::{
    SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter, SeccompRule,
    TargetArch,
};

use super::ChildError;

fn setup(what: impl std::fmt::Display) -> ChildError {
    ChildError::Setup(format!("seccomp: {what}"))
}

fn action(a: LinuxSeccompAction, errno: Option<u32>) -> Result<SeccompAction, ChildError> {
    let errno = errno.unwrap_or(libc::EPERM as u32);
    Ok(match a {
        LinuxSeccompAction::ScmpActAllow => SeccompAction::Allow,
        LinuxSeccompAction::ScmpActErrno => SeccompAction::Errno(errno),
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            SeccompAction::KillThread
        }
        LinuxSeccompAction::ScmpActKillProcess => SeccompAction::KillProcess,
        LinuxSeccompAction::ScmpActTrap => SeccompAction::Trap,
        LinuxSeccompAction::ScmpActLog => SeccompAction::Log,
        LinuxSeccompAction::ScmpActTrace => SeccompAction::Trace(errno),
        LinuxSeccompAction::ScmpActNotify => {
            return Err(setup(
                "SCMP_ACT_NOTIFY needs a listener (listenerPath), which wharf does not provide",
            ));
        }
    })
}

fn condition(
    index: usize,
    op: LinuxSeccompOperator,
    value: u64,
    value_two: u64,
) -> Result<SeccompCondition, ChildError> {
    // As libseccomp: MASKED_EQ's `value` is the mask and `valueTwo` the datum; every
    // comparison is on the whole 64-bit argument.
    let (op, datum) = match op {
        LinuxSeccompOperator::ScmpCmpNe => (SeccompCmpOp::Ne, value),
        LinuxSeccompOperator::ScmpCmpLt => (SeccompCmpOp::Lt, value),
        LinuxSeccompOperator::ScmpCmpLe => (SeccompCmpOp::Le, value),
        LinuxSeccompOperator::ScmpCmpEq => (SeccompCmpOp::Eq, value),
        LinuxSeccompOperator::ScmpCmpGe => (SeccompCmpOp::Ge, value),
        LinuxSeccompOperator::ScmpCmpGt => (SeccompCmpOp::Gt, value),
        LinuxSeccompOperator::ScmpCmpMaskedEq => (SeccompCmpOp::MaskedEq(value), value_two),
    };
    let index = u8::try_from(index).map_err(|_| setup(format!("argument index {index}")))?;
    SeccompCondition::new(index, SeccompCmpArgLen::Qword, op, datum)
        .map_err(|e| setup(format!("argument {index}: {e}")))
}

/// The host's architecture as seccompiler names it.
fn target_arch() -> Result<TargetArch, ChildError> {
    TargetArch::try_from(std::env::consts::ARCH).map_err(|_| {
        setup(format!(
            "filters are built for x86_64, aarch64 and riscv64 hosts, not {}",
            std::env::consts::ARCH
        ))
    })
}

/// What a rule matches, per syscall number: `None` the whole call, else any of the rules.
type Matches = BTreeMap<i64, Option<Vec<SeccompRule>>>;

fn add(matches: &mut Matches, nr: i64, rule: Option<SeccompRule>) {
    let entry = matches.entry(nr).or_insert_with(|| Some(Vec::new()));
    match (entry.as_mut(), rule) {
        // A call matched whole stays matched whole.
        (None, _) => {}
        (Some(_), None) => *entry = None,
        (Some(rules), Some(r)) => rules.push(r),
    }
}

fn program(
    matches: &Matches,
    on_match: SeccompAction,
    otherwise: SeccompAction,
    arch: TargetArch,
) -> Result<Vec<libc::sock_filter>, ChildError> {
    let rules = matches
        .iter()
        .map(|(nr, r)| (*nr, r.clone().unwrap_or_default()))
        .collect();
    let filter = SeccompFilter::new(rules, otherwise, on_match, arch).map_err(setup)?;
    let bpf: seccompiler::BpfProgram = filter.try_into().map_err(setup)?;
    Ok(bpf
        .into_iter()
        .map(|f| libc::sock_filter {
            code: f.code,
            jt: f.jt,
            jf: f.jf,
            k: f.k,
        })
        .collect())
}

/// Compiled filters, in the order they are loaded: `struct sock_filter` arrays the kernel
/// takes.
#[derive(Debug, Clone)]
pub struct Bpf(Vec<Vec<libc::sock_filter>>);

/// Build the filters and compile them to BPF (in the parent, before clone).
pub fn compile(profile: &LinuxSeccomp) -> Result<Bpf, ChildError> {
    let arch = target_arch()?;
    let default = action(profile.default_action(), profile.default_errno_ret())?;
    // Every call some rule matches (the default filter allows those), and per action the
    // calls its rules match, in the profile's order of first appearance.
    let mut any = Matches::new();
    let mut by_action: Vec<(SeccompAction, Matches)> = Vec::new();
    for rule in profile.syscalls().iter().flatten() {
        let act = action(rule.action(), rule.errno_ret())?;
        if act == default {
            // The default does this already (libseccomp refuses such a rule; runc skips it).
            continue;
        }
        let conditions = rule
            .args()
            .iter()
            .flatten()
            .map(|a| condition(a.index(), a.op(), a.value(), a.value_two().unwrap_or(0)))
            .collect::<Result<Vec<_>, _>>()?;
        let matched = if conditions.is_empty() {
            None
        } else {
            Some(SeccompRule::new(conditions).map_err(setup)?)
        };
        let slot = match by_action.iter().position(|(a, _)| *a == act) {
            Some(i) => i,
            None => {
                by_action.push((act.clone(), Matches::new()));
                by_action.len() - 1
            }
        };
        for name in rule.names() {
            let Ok(nr) = syscalls::Sysno::from_str(name) else {
                continue;
            };
            let nr = i64::from(nr.id());
            add(&mut any, nr, matched.clone());
            add(&mut by_action[slot].1, nr, matched.clone());
        }
    }
    // Load order: each filter must let the next `seccomp(2)` through. The default filter
    // denies it unless a rule matches it; an action's filter denies only what it matches.
    // So: the actions' filters that leave seccomp alone, the default's, then the rest.
    let seccomp_nr = i64::from(syscalls::Sysno::seccomp.id());
    let (late, early): (Vec<_>, Vec<_>) = by_action
        .into_iter()
        .filter(|(a, _)| *a != SeccompAction::Allow)
        .partition(|(_, m)| m.contains_key(&seccomp_nr));
    let mut programs = Vec::new();
    for (act, m) in &early {
        programs.push(program(m, act.clone(), SeccompAction::Allow, arch)?);
    }
    if default != SeccompAction::Allow {
        programs.push(program(&any, SeccompAction::Allow, default, arch)?);
    }
    for (act, m) in &late {
        programs.push(program(m, act.clone(), SeccompAction::Allow, arch)?);
    }
    Ok(Bpf(programs))
}

/// [`compile`], through a cache of compiled filters in `dir`: the file is named by the hash of
/// the profile (and the compiler and the architecture), and used only if it is the very file
/// wharf wrote (its identity is recorded beside it, as for compiled wasm).
pub fn compile_cached(profile: &LinuxSeccomp, dir: Option<&Path>) -> Result<Bpf, ChildError> {
    let Some(dir) = dir else {
        return compile(profile);
    };
    let key = {
        use sha2::Digest as _;
        let mut h = sha2::Sha256::new();
        h.update(serde_json::to_vec(profile).unwrap_or_default());
        h.update(format!(
            "seccompiler-0.5 stacked {}",
            std::env::consts::ARCH
        ));
        hex::encode(h.finalize())
    };
    let path = dir.join(format!("{key}.bpf"));
    if crate::sys::is_recorded(&path)
        && let Ok(raw) = std::fs::read(&path)
        && let Some(bpf) = from_raw(&raw)
    {
        return Ok(bpf);
    }
    let bpf = compile(profile)?;
    if let Err(e) = crate::sys::write_recorded(&path, &to_raw(&bpf)) {
        tracing::debug!(error = %e, "could not cache the compiled seccomp filter");
    }
    Ok(bpf)
}

/// The cache file: per program, its length (u16) then its instructions.
fn to_raw(bpf: &Bpf) -> Vec<u8> {
    let mut raw = Vec::new();
    for p in &bpf.0 {
        raw.extend_from_slice(&(p.len() as u16).to_ne_bytes());
        for f in p {
            raw.extend_from_slice(&f.code.to_ne_bytes());
            raw.extend_from_slice(&[f.jt, f.jf]);
            raw.extend_from_slice(&f.k.to_ne_bytes());
        }
    }
    raw
}

fn from_raw(mut raw: &[u8]) -> Option<Bpf> {
    const SIZE: usize = std::mem::size_of::<libc::sock_filter>();
    let mut programs = Vec::new();
    while !raw.is_empty() {
        let n = usize::from(u16::from_ne_bytes([*raw.first()?, *raw.get(1)?]));
        let body = raw.get(2..2 + n * SIZE)?;
        if n == 0 {
            return None;
        }
        programs.push(
            body.chunks_exact(SIZE)
                .map(|c| libc::sock_filter {
                    code: u16::from_ne_bytes([c[0], c[1]]),
                    jt: c[2],
                    jf: c[3],
                    k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
                })
                .collect(),
        );
        raw = &raw[2 + n * SIZE..];
    }
    (!programs.is_empty()).then_some(Bpf(programs))
}

/// Load a compiled filter (in the child: no allocation). With `set_nnp`, `no_new_privs` is
/// set first, so the filter loads without CAP_SYS_ADMIN; without it the caller still holds
/// CAP_SYS_ADMIN (a spec with `noNewPrivileges: false`). After this only what the profile
/// allows works (execve is).
pub fn load(bpf: &Bpf, set_nnp: bool) -> Result<(), ChildError> {
    // SAFETY: prctl with PR_SET_NO_NEW_PRIVS and integers has no memory effects.
    if set_nnp && unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(ChildError::Setup(format!(
            "no_new_privs: {}",
            std::io::Error::last_os_error()
        )));
    }
    for (i, p) in bpf.0.iter().enumerate() {
        let prog = libc::sock_fprog {
            len: p.len() as u16,
            filter: p.as_ptr() as *mut libc::sock_filter,
        };
        // SAFETY: `prog` points at `p`, a valid sock_filter array of `len` entries that
        // outlives the call; the kernel copies it.
        let r = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                0,
                &prog as *const libc::sock_fprog,
            )
        };
        if r != 0 {
            return Err(ChildError::Setup(format!(
                "seccomp: loading filter {} of {}: {}",
                i + 1,
                bpf.0.len(),
                std::io::Error::last_os_error()
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{LinuxSeccompArgBuilder, LinuxSeccompBuilder, LinuxSyscallBuilder};

    fn raw(b: &Bpf) -> Vec<Vec<(u16, u8, u8, u32)>> {
        b.0.iter()
            .map(|p| p.iter().map(|f| (f.code, f.jt, f.jf, f.k)).collect())
            .collect()
    }

    #[test]
    fn the_default_profile_compiles_and_is_cached_only_as_written() {
        let spec = crate::bundle::security::default_seccomp(&[]);
        let bpf = compile(&spec).unwrap();
        // Docker's allow-list (EPERM by default) plus its ENOSYS rule for clone3: two
        // filters, the allow-list a few hundred instructions, each ending in a return.
        assert_eq!(
            bpf.0.len(),
            2,
            "{:?}",
            bpf.0.iter().map(Vec::len).collect::<Vec<_>>()
        );
        assert!(bpf.0.iter().map(Vec::len).sum::<usize>() > 300);
        for p in &bpf.0 {
            assert_eq!(p.last().unwrap().code & 0x07, 0x06, "ends in BPF_RET");
        }
        let dir = tempfile::tempdir().unwrap();
        let first = compile_cached(&spec, Some(dir.path())).unwrap();
        let again = compile_cached(&spec, Some(dir.path())).unwrap();
        assert_eq!(raw(&first), raw(&bpf));
        assert_eq!(raw(&again), raw(&bpf));
        let file = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .find(|e| e.path().extension().is_some_and(|x| x == "bpf"))
            .unwrap()
            .path();
        // An allow-everything program written over it: wharf compiles anew.
        std::fs::write(&file, [1u8, 0, 6, 0, 0, 0, 0, 0, 0xff, 0x7f]).unwrap();
        let after = compile_cached(&spec, Some(dir.path())).unwrap();
        assert_eq!(raw(&after), raw(&bpf));
        // Truncated or empty files do not parse.
        assert!(from_raw(&[]).is_none());
        assert!(from_raw(&[3, 0, 6, 0]).is_none());
        assert_eq!(raw(&from_raw(&to_raw(&bpf)).unwrap()), raw(&bpf));
    }

    #[test]
    fn one_filter_per_action_and_the_default_filter_loads_before_a_rule_on_seccomp() {
        let rule = |names: &[&str], action, errno: Option<u32>| {
            let mut b = LinuxSyscallBuilder::default()
                .names(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .action(action);
            if let Some(e) = errno {
                b = b.errno_ret(e);
            }
            b.build().unwrap()
        };
        let kill9 = LinuxSyscallBuilder::default()
            .names(vec!["kill".to_string()])
            .action(LinuxSeccompAction::ScmpActErrno)
            .args(vec![
                LinuxSeccompArgBuilder::default()
                    .index(1usize)
                    .value(9u64)
                    .op(LinuxSeccompOperator::ScmpCmpEq)
                    .build()
                    .unwrap(),
            ])
            .build()
            .unwrap();
        let profile = LinuxSeccompBuilder::default()
            .default_action(LinuxSeccompAction::ScmpActErrno)
            .syscalls(vec![
                rule(
                    &["read", "write", "no_such_call"],
                    LinuxSeccompAction::ScmpActAllow,
                    None,
                ),
                rule(&["seccomp"], LinuxSeccompAction::ScmpActErrno, Some(38)),
                rule(&["mkdir"], LinuxSeccompAction::ScmpActLog, None),
                // The default's own action: nothing to add.
                rule(&["chmod"], LinuxSeccompAction::ScmpActErrno, None),
                kill9,
            ])
            .build()
            .unwrap();
        let bpf = compile(&profile).unwrap();
        // log (mkdir), then the default (kill 9 and chmod are the default already), then
        // errno 38 (on seccomp).
        assert_eq!(bpf.0.len(), 3);
        let returns = |p: &Vec<libc::sock_filter>| {
            p.iter()
                .filter(|f| f.code == 0x06)
                .map(|f| f.k)
                .collect::<std::collections::BTreeSet<_>>()
        };
        assert!(returns(&bpf.0[0]).contains(&0x7ffc_0000), "log first");
        assert!(
            returns(&bpf.0[1]).contains(&0x0005_0001),
            "the default (EPERM) next"
        );
        assert!(
            returns(&bpf.0[2]).contains(&(0x0005_0000 | 38)),
            "seccomp's rule last"
        );
        let notify = LinuxSeccompBuilder::default()
            .default_action(LinuxSeccompAction::ScmpActNotify)
            .build()
            .unwrap();
        assert!(compile(&notify).unwrap_err().to_string().contains("NOTIFY"));
    }
}
