use std::ffi::OsStr;
use std::io;
use std::path::{Path, PathBuf};

use cap_std::fs::Dir;

use super::NodeKind;

fn unsupported(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        format!("{what} is not supported on Windows"),
    )
}

/// Directories carry no Unix metadata on Windows; this only checks the directory opens.
pub fn open_dir_for_metadata(parent: &Dir, name: &OsStr) -> io::Result<Dir> {
    parent.open_dir(Path::new(name))
}

/// Open the directory `name` in `parent` (Windows: as cap-std opens it).
pub fn open_dir_nofollow(parent: &Dir, name: &OsStr) -> io::Result<Dir> {
    parent.open_dir(Path::new(name))
}

/// Windows has no uid 0; wharf never needs elevation there.
pub fn is_root() -> bool {
    false
}

/// Create a relative symlink (absolute targets only make sense inside a Linux root).
pub fn symlink(parent: &Dir, name: &OsStr, target: &OsStr) -> io::Result<()> {
    parent.symlink_file(Path::new(target), Path::new(name))
}

pub fn read_link(parent: &Dir, name: &OsStr) -> io::Result<PathBuf> {
    parent.read_link(Path::new(name))
}

pub fn mknod(_: &Dir, _: &OsStr, _: NodeKind, _: u32, _: u32, _: u32) -> io::Result<()> {
    Err(unsupported("creating special files"))
}

pub fn device_node(_: &Path) -> io::Result<super::DeviceNode> {
    Err(unsupported("host devices"))
}

pub fn whiteout(_: &Dir, _: &OsStr) -> io::Result<()> {
    Err(unsupported("overlay whiteouts"))
}

pub fn set_opaque(_: &Dir) -> io::Result<()> {
    Err(unsupported("overlay opaque directories"))
}

pub fn is_opaque(_: &Dir) -> bool {
    false
}

pub fn is_whiteout(_: &cap_std::fs::Metadata) -> bool {
    false
}

pub fn lchown(_: &Dir, _: &OsStr, _: u32, _: u32) -> io::Result<()> {
    Ok(())
}

pub fn fchown<T>(_: T, _: u32, _: u32) -> io::Result<()> {
    Ok(())
}

pub fn fchmod<T>(_: T, _: u32) -> io::Result<()> {
    Ok(())
}

pub fn set_mtime_nofollow(_: &Dir, _: &OsStr, _: i64) -> io::Result<()> {
    Ok(())
}

pub fn set_mtime_fd<T>(_: T, _: i64) -> io::Result<()> {
    Ok(())
}

pub fn set_xattr<T>(_: T, _: &str, _: &[u8]) -> io::Result<()> {
    Ok(())
}

pub fn can_mknod() -> bool {
    false
}

// Processes. A process is named by its pid and its creation time (as on Linux by pid and
// start time), so a later process reusing the pid is not mistaken for it. Signals have no
// Windows equivalent: wharf's own processes wait on named events instead, one per signal
// they act on ("wharf-signal-PID-N"), and SIGKILL is TerminateProcess.

use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle, RawHandle};
use std::sync::atomic::{AtomicI32, Ordering};

use windows_sys::Win32::Foundation::{
    CloseHandle, FILETIME, HANDLE, HANDLE_FLAG_INHERIT, STILL_ACTIVE, SetHandleInformation,
};
use windows_sys::Win32::System::Threading::{
    CREATE_NEW_PROCESS_GROUP, CreateEventW, DETACHED_PROCESS, EVENT_MODIFY_STATE,
    GetExitCodeProcess, GetProcessTimes, INFINITE, OpenEventW, OpenProcess,
    PROCESS_QUERY_LIMITED_INFORMATION, PROCESS_TERMINATE, SetEvent, TerminateProcess,
    WaitForMultipleObjects,
};

pub const SIGINT: i32 = 2;
pub const SIGTERM: i32 = 15;
pub const SIGKILL: i32 = 9;
pub const SIGSTOP: i32 = 19;
pub const SIGCONT: i32 = 18;

/// The signals a wharf process on Windows waits for (by named event).
const CAUGHT: [i32; 2] = [SIGINT, SIGTERM];

/// A process handle, closed when dropped.
struct Process(HANDLE);

impl Process {
    fn open(pid: i32, access: u32) -> io::Result<Process> {
        let pid = u32::try_from(pid).map_err(|_| io::Error::from(io::ErrorKind::NotFound))?;
        // SAFETY: OpenProcess takes plain integers; a null result is an error.
        let h = unsafe { OpenProcess(access, 0, pid) };
        if h.is_null() {
            Err(io::Error::last_os_error())
        } else {
            Ok(Process(h))
        }
    }

    fn running(&self) -> bool {
        let mut code = 0u32;
        // SAFETY: the handle is open (PROCESS_QUERY_LIMITED_INFORMATION); `code` is ours.
        let ok = unsafe { GetExitCodeProcess(self.0, &mut code) } != 0;
        ok && code == STILL_ACTIVE as u32
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        // SAFETY: the handle is ours and open.
        unsafe { CloseHandle(self.0) };
    }
}

/// The creation time of process `pid` (100 ns units since 1601), if it runs: with the pid,
/// it names a process without confusing it with a later one that reuses the pid.
pub fn process_start_time(pid: i32) -> Option<u64> {
    let p = Process::open(pid, PROCESS_QUERY_LIMITED_INFORMATION).ok()?;
    if !p.running() {
        return None;
    }
    let zero = FILETIME {
        dwLowDateTime: 0,
        dwHighDateTime: 0,
    };
    let (mut created, mut exited, mut kernel, mut user) = (zero, zero, zero, zero);
    // SAFETY: the handle is open; the four FILETIMEs are ours to write.
    let ok = unsafe { GetProcessTimes(p.0, &mut created, &mut exited, &mut kernel, &mut user) };
    (ok != 0).then(|| (u64::from(created.dwHighDateTime) << 32) | u64::from(created.dwLowDateTime))
}

/// CPU time (user + kernel) process `pid` has used, in nanoseconds.
pub fn process_cpu_ns(pid: i32) -> Option<u64> {
    let p = Process::open(pid, PROCESS_QUERY_LIMITED_INFORMATION).ok()?;
    let zero = FILETIME {
        dwLowDateTime: 0,
        dwHighDateTime: 0,
    };
    let (mut created, mut exited, mut kernel, mut user) = (zero, zero, zero, zero);
    // SAFETY: the handle is open; the four FILETIMEs are ours to write.
    let ok = unsafe { GetProcessTimes(p.0, &mut created, &mut exited, &mut kernel, &mut user) };
    let ticks = |t: FILETIME| (u64::from(t.dwHighDateTime) << 32) | u64::from(t.dwLowDateTime);
    (ok != 0).then(|| (ticks(kernel) + ticks(user)) * 100)
}

/// What `wharf top` shows of process `pid` on Windows (there is no `ps`): its executable's
/// name, its CPU time (ns) and its private bytes (commit charge).
pub fn process_summary(pid: i32) -> Option<(String, u64, u64)> {
    use windows_sys::Win32::System::ProcessStatus::{
        K32GetProcessMemoryInfo, PROCESS_MEMORY_COUNTERS, PROCESS_MEMORY_COUNTERS_EX,
    };
    use windows_sys::Win32::System::Threading::{PROCESS_NAME_WIN32, QueryFullProcessImageNameW};
    let p = Process::open(pid, PROCESS_QUERY_LIMITED_INFORMATION).ok()?;
    let mut buf = [0u16; 1024];
    let mut len = buf.len() as u32;
    // SAFETY: the handle is open; `buf` holds `len` u16s, which the call updates.
    let named =
        unsafe { QueryFullProcessImageNameW(p.0, PROCESS_NAME_WIN32, buf.as_mut_ptr(), &mut len) };
    let path = if named != 0 {
        String::from_utf16_lossy(&buf[..len as usize])
    } else {
        String::new()
    };
    let name = path
        .rsplit(['\\', '/'])
        .next()
        .unwrap_or_default()
        .to_string();
    let mut counters = PROCESS_MEMORY_COUNTERS_EX {
        cb: std::mem::size_of::<PROCESS_MEMORY_COUNTERS_EX>() as u32,
        ..Default::default()
    };
    // SAFETY: the handle is open; `counters` is ours, its size given in `cb` (the EX form is
    // accepted through the base type's pointer, as documented).
    let ok = unsafe {
        K32GetProcessMemoryInfo(
            p.0,
            (&raw mut counters).cast::<PROCESS_MEMORY_COUNTERS>(),
            counters.cb,
        )
    };
    let private = if ok != 0 {
        counters.PrivateUsage as u64
    } else {
        0
    };
    drop(p);
    Some((name, process_cpu_ns(pid).unwrap_or(0), private))
}

fn wide(s: &str) -> Vec<u16> {
    s.encode_utf16().chain(std::iter::once(0)).collect()
}

fn event_name(pid: u32, sig: i32) -> Vec<u16> {
    wide(&format!("wharf-signal-{pid}-{sig}"))
}

/// Send `signal` to process `pid`: SIGKILL terminates it (exit code 137, as a SIGKILLed
/// process reports on Linux); SIGTERM and SIGINT set the named event the wharf process
/// waits on, or, if it waits on none (it has not started its guest yet, or is no wharf
/// process), terminate it with 128 + the signal, as the signal's default action would.
pub fn send_signal(pid: i32, signal: i32) -> io::Result<()> {
    match signal {
        SIGKILL => terminate(pid, 137),
        SIGTERM | SIGINT => {
            // The process must exist (and be the caller's to signal).
            let p = Process::open(pid, PROCESS_QUERY_LIMITED_INFORMATION)?;
            if !p.running() {
                return Err(io::Error::from(io::ErrorKind::NotFound));
            }
            let name = event_name(pid as u32, signal);
            // SAFETY: `name` is a NUL-terminated UTF-16 string that outlives the call.
            let ev = unsafe { OpenEventW(EVENT_MODIFY_STATE, 0, name.as_ptr()) };
            if ev.is_null() {
                return terminate(pid, 128 + signal as u32);
            }
            // SAFETY: `ev` is the open event handle, closed right after.
            let ok = unsafe {
                let ok = SetEvent(ev);
                CloseHandle(ev);
                ok
            };
            if ok == 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        }
        _ => Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!("signal {signal} has no Windows equivalent (TERM, INT and KILL do)"),
        )),
    }
}

fn terminate(pid: i32, code: u32) -> io::Result<()> {
    let p = Process::open(pid, PROCESS_TERMINATE | PROCESS_QUERY_LIMITED_INFORMATION)?;
    // SAFETY: the handle is open with PROCESS_TERMINATE.
    if unsafe { TerminateProcess(p.0, code) } == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

pub fn parse_signal(name: &str) -> Option<i32> {
    match name.to_ascii_uppercase().trim_start_matches("SIG") {
        "TERM" | "15" => Some(SIGTERM),
        "KILL" | "9" => Some(SIGKILL),
        "INT" | "2" => Some(SIGINT),
        _ => None,
    }
}

/// The termination signal this process was sent, if any.
static TERMINATION: AtomicI32 = AtomicI32::new(0);

unsafe extern "system" fn on_console(ctrl: u32) -> windows_sys::core::BOOL {
    use windows_sys::Win32::System::Console::{CTRL_BREAK_EVENT, CTRL_C_EVENT, CTRL_CLOSE_EVENT};
    let sig = match ctrl {
        CTRL_C_EVENT => SIGINT,
        CTRL_BREAK_EVENT | CTRL_CLOSE_EVENT => SIGTERM,
        _ => return 0,
    };
    TERMINATION.store(sig, Ordering::SeqCst);
    1
}

/// Record SIGTERM and SIGINT (their named events, and Ctrl-C / Ctrl-Break at a console)
/// instead of dying of them: a wasm guest is then interrupted at its next epoch check and
/// reports 128+N, as on Unix.
pub fn catch_termination() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: the handler only stores to an atomic.
        unsafe {
            windows_sys::Win32::System::Console::SetConsoleCtrlHandler(Some(on_console), 1);
        }
        let me = std::process::id();
        let mut events = Vec::new();
        for sig in CAUGHT {
            let name = event_name(me, sig);
            // SAFETY: `name` is NUL-terminated UTF-16; a manual-reset event, not signalled.
            let ev = unsafe { CreateEventW(std::ptr::null(), 1, 0, name.as_ptr()) };
            if !ev.is_null() {
                events.push((ev as usize, sig));
            }
        }
        if events.is_empty() {
            return;
        }
        let _ = std::thread::Builder::new()
            .name("signal-events".into())
            .stack_size(64 << 10)
            .spawn(move || {
                let handles: Vec<HANDLE> = events.iter().map(|(h, _)| *h as HANDLE).collect();
                // SAFETY: the handles are the open events made above, never closed (they
                // live as long as the process).
                let r = unsafe {
                    WaitForMultipleObjects(handles.len() as u32, handles.as_ptr(), 0, INFINITE)
                };
                if let Some((_, sig)) = events.get(r as usize) {
                    TERMINATION.store(*sig, Ordering::SeqCst);
                }
            });
    });
}

/// The termination signal received since [`catch_termination`], if any.
pub fn termination_requested() -> Option<i32> {
    match TERMINATION.load(Ordering::SeqCst) {
        0 => None,
        n => Some(n),
    }
}

pub fn die_of(sig: i32) -> ! {
    std::process::exit(128 + sig)
}

/// Give the child `cmd` starts the write end `w` of a pipe: the handle is made inheritable
/// (std starts children inheriting inheritable handles) and its value named to the child by
/// the environment variable `env`; the child takes it with [`inherited_from_env`].
pub fn pass_to_child(cmd: &mut std::process::Command, w: &std::io::PipeWriter, env: &str) {
    let h = w.as_raw_handle();
    // SAFETY: `h` is the open pipe handle `w` owns.
    unsafe { SetHandleInformation(h as HANDLE, HANDLE_FLAG_INHERIT, HANDLE_FLAG_INHERIT) };
    cmd.env(env, (h as usize).to_string());
}

/// The pipe handle our parent passed with [`pass_to_child`] under `env`, if it did and it
/// is open. Made non-inheritable, so our own children do not hold it.
pub fn inherited_from_env(env: &str) -> Option<std::fs::File> {
    let value: usize = std::env::var(env).ok()?.parse().ok()?;
    let h = value as HANDLE;
    // SAFETY: clearing the inherit flag fails (harmlessly) on a handle that is not open.
    if unsafe { SetHandleInformation(h, HANDLE_FLAG_INHERIT, 0) } == 0 {
        return None;
    }
    // SAFETY: the handle was inherited for us (the protocol above) and nothing else in
    // this process owns it.
    Some(std::fs::File::from(unsafe {
        OwnedHandle::from_raw_handle(h as RawHandle)
    }))
}

/// Start `cmd`'s child detached: no console (so no Ctrl-C or console close reaches it) and
/// a process group of its own.
pub fn detach(cmd: &mut std::process::Command) {
    use std::os::windows::process::CommandExt;
    cmd.creation_flags(DETACHED_PROCESS | CREATE_NEW_PROCESS_GROUP);
}

/// Before the start on Windows: no console of its own (a supervisor runs in the background;
/// its stdio are the monitor's pipes). A console host made for it (conhost) would hold
/// those pipes open past its exit: the monitor then waited seconds for the end of its
/// output (6 s under wine) before it could record how the run ended. The tie itself is
/// made after the start ([`tie_spawned`]).
pub fn tie_to_parent(cmd: &mut std::process::Command) {
    use std::os::windows::process::CommandExt;
    cmd.creation_flags(DETACHED_PROCESS);
}

/// What keeps a started child tied to us: a job object that kills its processes when its
/// last handle, ours, closes (when we exit or die).
pub struct Tie(#[allow(dead_code)] OwnedHandle);

/// Tie a started child to this process (a kill-on-close job object).
pub fn tie_spawned(child: &std::process::Child) -> io::Result<Tie> {
    use windows_sys::Win32::System::JobObjects::{
        AssignProcessToJobObject, CreateJobObjectW, JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE,
        JOBOBJECT_EXTENDED_LIMIT_INFORMATION, JobObjectExtendedLimitInformation,
        SetInformationJobObject,
    };
    // SAFETY: an anonymous job with default security.
    let job = unsafe { CreateJobObjectW(std::ptr::null(), std::ptr::null()) };
    if job.is_null() {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `job` is the fresh job handle, owned from here on.
    let job = unsafe { OwnedHandle::from_raw_handle(job as RawHandle) };
    // SAFETY: a zeroed JOBOBJECT_EXTENDED_LIMIT_INFORMATION is valid (plain integers).
    let mut info: JOBOBJECT_EXTENDED_LIMIT_INFORMATION = unsafe { std::mem::zeroed() };
    info.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
    // SAFETY: `info` is the struct the class names, with its size; the handles are open.
    unsafe {
        if SetInformationJobObject(
            job.as_raw_handle() as HANDLE,
            JobObjectExtendedLimitInformation,
            &info as *const _ as *const std::ffi::c_void,
            std::mem::size_of::<JOBOBJECT_EXTENDED_LIMIT_INFORMATION>() as u32,
        ) == 0
            || AssignProcessToJobObject(
                job.as_raw_handle() as HANDLE,
                child.as_raw_handle() as HANDLE,
            ) == 0
        {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(Tie(job))
}

/// Windows does not say (x64 gives processes 128 TiB): the default applies.
pub fn address_space_bits() -> Option<u32> {
    None
}

/// Nothing to ignore: a detached process has no console.
pub fn ignore_hangup() {}

/// Run `f` again (a few times, 20 ms apart, doubling, for at most about a second) while it
/// fails with a sharing violation or access denied: Windows (and wine, under load: a
/// supervisor's start failed with "Access denied" about 1 in 25 restarts) refuses to open or
/// start a file briefly held by another process (a scanner, a process just exiting).
pub fn retry_transient<T>(mut f: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    const ERROR_ACCESS_DENIED: i32 = 5;
    const ERROR_SHARING_VIOLATION: i32 = 32;
    let mut delay = std::time::Duration::from_millis(20);
    for _ in 0..6 {
        match f() {
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(ERROR_ACCESS_DENIED | ERROR_SHARING_VIOLATION)
                ) =>
            {
                std::thread::sleep(delay);
                delay *= 2;
            }
            other => return other,
        }
    }
    f()
}

/// A child's exit code.
pub fn exit_code(status: &std::process::ExitStatus) -> i32 {
    status.code().unwrap_or(255)
}

/// Free space and total size of the volume holding `dir` (not measured on Windows yet:
/// unpacking there is bounded by the size limits alone).
pub fn free_space(_: &Dir) -> Option<(u64, u64)> {
    None
}

/// Which file an open file is, among the files of one directory, to tell a renamed file
/// from its successor: (0, file index). The volume serial number is left out: every file
/// compared is on one volume, and wine reports 0 for it once a file has been renamed
/// (its handle's path is gone), which made a renamed file look like another one.
pub fn file_id(f: &std::fs::File) -> Option<(u64, u64)> {
    use std::os::windows::io::AsRawHandle;
    use windows_sys::Win32::Storage::FileSystem::{
        BY_HANDLE_FILE_INFORMATION, GetFileInformationByHandle,
    };
    // SAFETY: an all-zero BY_HANDLE_FILE_INFORMATION is a valid value (plain integers).
    let mut info: BY_HANDLE_FILE_INFORMATION = unsafe { std::mem::zeroed() };
    // SAFETY: the handle is `f`'s, open for the whole call; `info` is a valid out pointer.
    let ok = unsafe { GetFileInformationByHandle(f.as_raw_handle() as _, &mut info) };
    (ok != 0).then(|| {
        (
            0,
            (u64::from(info.nFileIndexHigh) << 32) | u64::from(info.nFileIndexLow),
        )
    })
}

/// What identifies a file's content without reading it: nothing on Windows, where every
/// time stamp can be set back by the file's owner; files given by path are hashed on every
/// run there (store blobs are named by their digest and need no identity).
pub fn file_identity(_: &std::fs::Metadata) -> Vec<i64> {
    Vec::new()
}

/// The open-files limit a native container starts with (native containers need Linux: this
/// only fills the spec `--print-spec` shows).
pub fn container_nofile() -> u64 {
    1 << 20
}

/// A terminal in raw mode (not on Windows: see [`raw_terminal`]).
pub struct RawTerminal;

/// Raw terminal input is not set up on Windows (nothing attaches a terminal there).
pub fn raw_terminal() -> Option<RawTerminal> {
    None
}
