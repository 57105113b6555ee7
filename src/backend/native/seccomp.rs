//! The spec's seccomp profile: compiled to a BPF program with libseccomp in the parent,
//! before clone (it allocates and takes a while), and loaded by the child with one system
//! call just before exec.

use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};
use oci_spec::runtime::{Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompOperator};

use std::path::Path;

use super::ChildError;

fn action(a: LinuxSeccompAction, errno: Option<u32>) -> ScmpAction {
    let errno = errno.map_or(libc::EPERM, |e| e as i32);
    match a {
        LinuxSeccompAction::ScmpActAllow => ScmpAction::Allow,
        LinuxSeccompAction::ScmpActErrno => ScmpAction::Errno(errno),
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            ScmpAction::KillThread
        }
        LinuxSeccompAction::ScmpActKillProcess => ScmpAction::KillProcess,
        LinuxSeccompAction::ScmpActTrap => ScmpAction::Trap,
        LinuxSeccompAction::ScmpActLog => ScmpAction::Log,
        LinuxSeccompAction::ScmpActTrace => ScmpAction::Trace(errno as u16),
        LinuxSeccompAction::ScmpActNotify => ScmpAction::Notify,
    }
}

fn arch(a: &Arch) -> Option<ScmpArch> {
    Some(match a {
        Arch::ScmpArchX86_64 => ScmpArch::X8664,
        Arch::ScmpArchX86 => ScmpArch::X86,
        Arch::ScmpArchX32 => ScmpArch::X32,
        Arch::ScmpArchAarch64 => ScmpArch::Aarch64,
        Arch::ScmpArchArm => ScmpArch::Arm,
        _ => return None,
    })
}

fn compare(index: usize, op: LinuxSeccompOperator, value: u64, value_two: u64) -> ScmpArgCompare {
    let op = match op {
        LinuxSeccompOperator::ScmpCmpNe => ScmpCompareOp::NotEqual,
        LinuxSeccompOperator::ScmpCmpLt => ScmpCompareOp::Less,
        LinuxSeccompOperator::ScmpCmpLe => ScmpCompareOp::LessOrEqual,
        LinuxSeccompOperator::ScmpCmpEq => ScmpCompareOp::Equal,
        LinuxSeccompOperator::ScmpCmpGe => ScmpCompareOp::GreaterEqual,
        LinuxSeccompOperator::ScmpCmpGt => ScmpCompareOp::Greater,
        LinuxSeccompOperator::ScmpCmpMaskedEq => ScmpCompareOp::MaskedEqual(value),
    };
    let datum = if matches!(op, ScmpCompareOp::MaskedEqual(_)) {
        value_two
    } else {
        value
    };
    ScmpArgCompare::new(index as u32, op, datum)
}

/// A compiled filter: the `struct sock_filter` array the kernel takes.
#[derive(Debug, Clone)]
pub struct Bpf(Vec<libc::sock_filter>);

/// Build the filter and compile it to BPF (in the parent, before clone).
pub fn compile(profile: &LinuxSeccomp) -> Result<Bpf, ChildError> {
    let err = |e: libseccomp::error::SeccompError| ChildError::Setup(format!("seccomp: {e}"));
    let mut ctx = ScmpFilterContext::new(action(
        profile.default_action(),
        profile.default_errno_ret(),
    ))
    .map_err(err)?;
    for a in profile.architectures().iter().flatten().filter_map(arch) {
        let _ = ctx.add_arch(a);
    }
    for rule in profile.syscalls().iter().flatten() {
        let act = action(rule.action(), rule.errno_ret());
        for name in rule.names() {
            // Names this architecture does not have are skipped, as runc does.
            let Ok(sc) = ScmpSyscall::from_name(name) else {
                continue;
            };
            let args: Vec<ScmpArgCompare> = rule
                .args()
                .iter()
                .flatten()
                .map(|a| compare(a.index(), a.op(), a.value(), a.value_two().unwrap_or(0)))
                .collect();
            let added = if args.is_empty() {
                ctx.add_rule(act, sc)
            } else {
                ctx.add_rule_conditional(act, sc, &args)
            };
            added.map_err(err)?;
        }
    }
    // libseccomp 2.5 exports to a descriptor only: an anonymous file, read back.
    let io = |e: std::io::Error| ChildError::Setup(format!("seccomp: exporting the filter: {e}"));
    let mut file = tempfile::tempfile().map_err(io)?;
    ctx.export_bpf(&file).map_err(err)?;
    let mut raw = Vec::new();
    std::io::Seek::rewind(&mut file).map_err(io)?;
    std::io::Read::read_to_end(&mut file, &mut raw).map_err(io)?;
    from_raw(&raw, std::mem::size_of::<libc::sock_filter>()).ok_or_else(|| {
        ChildError::Setup(format!(
            "seccomp: libseccomp exported {} bytes, not a BPF program",
            raw.len()
        ))
    })
}

/// [`compile`], through a cache of compiled filters in `dir`: the file is named by the hash of
/// the profile (and libseccomp's version and the architecture), and used only if it is the
/// very file wharf wrote (its identity is recorded beside it, as for compiled wasm).
pub fn compile_cached(profile: &LinuxSeccomp, dir: Option<&Path>) -> Result<Bpf, ChildError> {
    let Some(dir) = dir else {
        return compile(profile);
    };
    let key = {
        use sha2::Digest as _;
        let mut h = sha2::Sha256::new();
        h.update(serde_json::to_vec(profile).unwrap_or_default());
        let v = libseccomp::ScmpVersion::current().ok();
        h.update(format!("{v:?} {}", std::env::consts::ARCH));
        hex::encode(h.finalize())
    };
    let path = dir.join(format!("{key}.bpf"));
    let size = std::mem::size_of::<libc::sock_filter>();
    if crate::sys::is_recorded(&path)
        && let Ok(raw) = std::fs::read(&path)
        && let Some(bpf) = from_raw(&raw, size)
    {
        return Ok(bpf);
    }
    let bpf = compile(profile)?;
    let store = || -> std::io::Result<()> {
        let mut raw = Vec::with_capacity(bpf.0.len() * size);
        for f in &bpf.0 {
            raw.extend_from_slice(&f.code.to_ne_bytes());
            raw.extend_from_slice(&[f.jt, f.jf]);
            raw.extend_from_slice(&f.k.to_ne_bytes());
        }
        crate::sys::write_recorded(&path, &raw)
    };
    if let Err(e) = store() {
        tracing::debug!(error = %e, "could not cache the compiled seccomp filter");
    }
    Ok(bpf)
}

fn from_raw(raw: &[u8], size: usize) -> Option<Bpf> {
    if raw.is_empty() || !raw.len().is_multiple_of(size) || raw.len() / size > u16::MAX as usize {
        return None;
    }
    Some(Bpf(raw
        .chunks_exact(size)
        .map(|c| libc::sock_filter {
            code: u16::from_ne_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect()))
}

/// Load a compiled filter (in the child: no allocation). With `set_nnp`, `no_new_privs` is
/// set first, so the filter loads without CAP_SYS_ADMIN; without it the caller still holds
/// CAP_SYS_ADMIN (a spec with `noNewPrivileges: false`). After this only what the profile
/// allows works (execve is).
pub fn load(bpf: &Bpf, set_nnp: bool) -> Result<(), ChildError> {
    let prog = libc::sock_fprog {
        len: bpf.0.len() as u16,
        filter: bpf.0.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: prctl with PR_SET_NO_NEW_PRIVS and integers has no memory effects.
    if set_nnp && unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(ChildError::Setup(format!(
            "no_new_privs: {}",
            std::io::Error::last_os_error()
        )));
    }
    // SAFETY: `prog` points at `bpf.0`, a valid sock_filter array of `len` entries that
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
            "seccomp: {}",
            std::io::Error::last_os_error()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_default_profile_compiles_to_a_program() {
        let spec = crate::bundle::security::default_seccomp(&[]);
        let bpf = super::compile(&spec).unwrap();
        // Docker's allow-list is a few hundred instructions; the last returns.
        assert!(bpf.0.len() > 100, "{}", bpf.0.len());
        assert_eq!(bpf.0.last().unwrap().code & 0x07, 0x06, "ends in BPF_RET");
        // Cached: the same program back; a tampered cache file is not used.
        let dir = tempfile::tempdir().unwrap();
        let first = super::compile_cached(&spec, Some(dir.path())).unwrap();
        let again = super::compile_cached(&spec, Some(dir.path())).unwrap();
        let raw = |b: &super::Bpf| {
            b.0.iter()
                .map(|f| (f.code, f.jt, f.jf, f.k))
                .collect::<Vec<_>>()
        };
        assert_eq!(raw(&first), raw(&bpf));
        assert_eq!(raw(&again), raw(&bpf));
        let file = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .find(|e| e.path().extension().is_some_and(|x| x == "bpf"))
            .unwrap()
            .path();
        // An allow-everything program written over it: wharf compiles anew.
        std::fs::write(&file, [6u8, 0, 0, 0, 0, 0, 0xff, 0x7f]).unwrap();
        let after = super::compile_cached(&spec, Some(dir.path())).unwrap();
        assert_eq!(raw(&after), raw(&bpf));
    }
}
