//! Loading the spec's seccomp profile into the kernel with libseccomp.

use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};
use oci_spec::runtime::{Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompOperator};

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

/// Build and load the filter. After this only what the profile allows works (execve is).
pub fn load(profile: &LinuxSeccomp) -> Result<(), ChildError> {
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
    ctx.load().map_err(err)
}
