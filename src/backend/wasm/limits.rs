//! Limits that work on any OS, and what a run's end means: the guest's exit code, or one
//! of the documented codes for a trap or a tripped limit.
//!
//! | code | meaning |
//! | --- | --- |
//! | the guest's | `proc_exit(n)` / `wasi:cli/exit` |
//! | 134 | a trap (unreachable, out-of-bounds access, stack exhausted, …) |
//! | 137 | the run-time limit (`--timeout`) expired |
//! | 128+N | stopped by signal N (`wharf stop`: 143; Ctrl-C: 130) at an epoch check |
//! | 152 | the fuel budget (`--fuel`) ran out |
//! | 153 | the memory limit (`--memory`) was exceeded |

use std::time::{Duration, Instant};

use wasmtime::{ResourceLimiter, Trap};

use super::super::Exit;

pub const EXIT_TRAP: u8 = 134;
pub const EXIT_TIMEOUT: u8 = 137;
pub const EXIT_FUEL: u8 = 152;
pub const EXIT_MEMORY: u8 = 153;

/// Bytes a table element counts against the memory budget.
const TABLE_ELEMENT_BYTES: usize = 8;
/// Instances, tables and memories one store may hold.
const MAX_INSTANCES: usize = 1_000;
const MAX_TABLES: usize = 1_000;
const MAX_MEMORIES: usize = 1_000;
/// Table elements allowed without a memory limit.
const DEFAULT_TABLE_ELEMENTS: usize = 10_000_000;

/// The guest tried to grow past `--memory`.
#[derive(Debug, thiserror::Error)]
#[error(
    "wasm memory limit of {limit} bytes exceeded: the guest asked for {requested} bytes in total (--memory)"
)]
pub struct MemoryLimitExceeded {
    pub limit: usize,
    pub requested: usize,
}

/// A store's resource budget: linear memories and tables share `memory` bytes.
#[derive(Debug, Default)]
pub struct Limiter {
    memory: Option<usize>,
    used: usize,
}

impl Limiter {
    pub fn new(memory: Option<u64>) -> Self {
        Limiter {
            memory: memory.map(|m| usize::try_from(m).unwrap_or(usize::MAX)),
            used: 0,
        }
    }

    fn grow(&mut self, delta: usize) -> wasmtime::Result<()> {
        let requested = self.used.saturating_add(delta);
        if let Some(limit) = self.memory
            && requested > limit
        {
            return Err(MemoryLimitExceeded { limit, requested }.into());
        }
        self.used = requested;
        gauge::add(delta);
        Ok(())
    }
}

/// A store's memories and tables are freed with it.
impl Drop for Limiter {
    fn drop(&mut self) {
        gauge::sub(self.used);
    }
}

/// The guests' memory in this process: the bytes of linear memory and tables every live
/// store holds, which `wharf stats` shows for a wasm container. The process running a
/// container's guest publishes it in a file of the container's ([`gauge::publish_to`]),
/// rewritten in place whenever it changes (a store grows or goes): no thread, no timer.
pub mod gauge {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

    static IN_USE: AtomicUsize = AtomicUsize::new(0);
    static REQUESTS: AtomicUsize = AtomicUsize::new(0);
    /// Fuel a metered command has burnt (`NO_FUEL`: not metered).
    static FUEL: AtomicU64 = AtomicU64::new(NO_FUEL);
    const NO_FUEL: u64 = u64::MAX;
    static PUBLISHED: OnceLock<std::fs::File> = OnceLock::new();
    static WRITING: std::sync::Mutex<()> = std::sync::Mutex::new(());

    /// A wasi:http request answered (`stats` shows how many).
    pub fn served() {
        REQUESTS.fetch_add(1, Ordering::Relaxed);
        publish();
    }

    /// A metered (`--fuel`) guest has burnt `used` fuel so far: published when it changed
    /// (read at its epoch checks, every 10 ms of its run).
    pub(super) fn fuel_used(used: u64) {
        if FUEL.swap(used, Ordering::Relaxed) != used {
            publish();
        }
    }

    /// Bytes of guest memory (linear memories and tables) live in this process.
    pub fn in_use() -> usize {
        IN_USE.load(Ordering::Relaxed)
    }

    pub(super) fn add(delta: usize) {
        IN_USE.fetch_add(delta, Ordering::Relaxed);
        publish();
    }

    pub(super) fn sub(delta: usize) {
        IN_USE.fetch_sub(delta.min(in_use()), Ordering::Relaxed);
        publish();
    }

    /// From now on, keep `file` holding the figures (memory, requests: fixed-width decimals
    /// on one line, written at offset 0 so a reader never sees a mix of two lengths).
    pub fn publish_to(file: std::fs::File) {
        if PUBLISHED.set(file).is_ok() {
            publish();
        }
    }

    fn publish() {
        if let Some(f) = PUBLISHED.get() {
            // Read and written under one lock: two threads never leave an older figure
            // written after a newer one.
            let _order = WRITING.lock().unwrap_or_else(|p| p.into_inner());
            let (value, requests) = (in_use(), REQUESTS.load(Ordering::Relaxed));
            let fuel = match FUEL.load(Ordering::Relaxed) {
                NO_FUEL => "-".to_string(),
                f => f.to_string(),
            };
            let line = format!("{value:>20} {requests:>20} {fuel:>20}\n");
            #[cfg(unix)]
            let _ = std::os::unix::fs::FileExt::write_at(f, line.as_bytes(), 0);
            #[cfg(windows)]
            let _ = std::os::windows::fs::FileExt::seek_write(f, line.as_bytes(), 0);
        }
    }

    /// What a guest's process published.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Published {
        /// Bytes of linear memory and tables.
        pub memory: u64,
        /// wasi:http requests answered.
        pub requests: u64,
        /// Fuel burnt, for a metered guest.
        pub fuel: Option<u64>,
    }

    /// What a guest's process published in `path`, if anything.
    pub fn read(path: &std::path::Path) -> Option<Published> {
        let text = std::fs::read_to_string(path).ok()?;
        let mut fields = text.split_whitespace().map(|f| f.parse::<u64>().ok());
        Some(Published {
            memory: fields.next()??,
            requests: fields.next().flatten().unwrap_or(0),
            fuel: fields.next().flatten(),
        })
    }
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if maximum.is_some_and(|m| desired > m) {
            return Ok(false);
        }
        self.grow(desired.saturating_sub(current))?;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if maximum.is_some_and(|m| desired > m)
            || (self.memory.is_none() && desired > DEFAULT_TABLE_ELEMENTS)
        {
            return Ok(false);
        }
        self.grow(
            desired
                .saturating_sub(current)
                .saturating_mul(TABLE_ELEMENT_BYTES),
        )?;
        Ok(true)
    }

    fn instances(&self) -> usize {
        MAX_INSTANCES
    }

    fn tables(&self) -> usize {
        MAX_TABLES
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES
    }
}

/// The limits of one run, read from the runtime spec.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunLimits {
    pub memory: Option<u64>,
    pub timeout: Option<Duration>,
    pub fuel: Option<u64>,
}

/// The epoch ticker's period: the granularity of `--timeout`.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

impl RunLimits {
    /// Epoch ticks until the deadline (no deadline: effectively never).
    pub fn deadline_ticks(&self) -> u64 {
        match self.timeout {
            Some(t) => (t.as_micros() / EPOCH_TICK.as_micros()).max(1) as u64,
            None => u64::MAX / 2,
        }
    }

    /// Apply the epoch deadline and fuel to a fresh store.
    pub fn apply<T>(&self, store: &mut wasmtime::Store<T>) -> wasmtime::Result<()> {
        store.set_epoch_deadline(self.deadline_ticks());
        store.epoch_deadline_trap();
        if let Some(fuel) = self.fuel {
            store.set_fuel(fuel)?;
        }
        Ok(())
    }

    /// For a command: the deadline, and SIGTERM/SIGINT (`wharf stop`, Ctrl-C), checked at
    /// every epoch tick; a guest that hits either traps with an interrupt.
    pub fn apply_interruptible<T: 'static>(
        &self,
        store: &mut wasmtime::Store<T>,
    ) -> wasmtime::Result<()> {
        let deadline = self.timeout.map(|t| Instant::now() + t);
        let fuel = self.fuel;
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |ctx| {
            if let Some(given) = fuel
                && let Ok(left) = ctx.get_fuel()
            {
                gauge::fuel_used(given.saturating_sub(left));
            }
            if crate::sys::termination_requested().is_some()
                || deadline.is_some_and(|d| Instant::now() >= d)
            {
                Err(Trap::Interrupt.into())
            } else {
                Ok(wasmtime::UpdateDeadline::Continue(1))
            }
        });
        if let Some(fuel) = self.fuel {
            store.set_fuel(fuel)?;
        }
        Ok(())
    }
}

/// What an error that ended a guest means for the user.
pub fn classify(err: &wasmtime::Error, limits: &RunLimits) -> Exit {
    if let Some(exit) = err.downcast_ref::<wasmtime_wasi::I32Exit>() {
        return Exit::code((exit.0 & 0xff) as u8);
    }
    if let Some(m) = err.downcast_ref::<MemoryLimitExceeded>() {
        return Exit {
            code: EXIT_MEMORY,
            message: Some(m.to_string()),
        };
    }
    if let Some(trap) = err.downcast_ref::<Trap>() {
        return match trap {
            Trap::Interrupt if crate::sys::termination_requested().is_some() => {
                let sig = crate::sys::termination_requested().unwrap_or_default();
                Exit {
                    code: 128 + sig as u8,
                    message: Some(format!("wasm guest stopped by signal {sig}")),
                }
            }
            Trap::Interrupt => timed_out(limits),
            Trap::OutOfFuel => Exit {
                code: EXIT_FUEL,
                message: Some(format!(
                    "wasm fuel limit of {} exhausted (--fuel)",
                    limits.fuel.unwrap_or_default()
                )),
            },
            other => Exit {
                code: EXIT_TRAP,
                message: Some(other.to_string()),
            },
        };
    }
    Exit {
        code: EXIT_TRAP,
        message: Some(format!("wasm guest failed: {err:#}")),
    }
}

/// Drive `guest` (calls into wasm on wasmtime's async API) to its end: `None` if `timeout`
/// passed first. The epoch deadline stops a guest that computes; this stops one that waits
/// in a host call (a sleep, a read from a stdin that never closes, a socket), where no epoch
/// check runs: its call is dropped.
///
/// On the caller's tokio runtime if it is in one, else on wasmtime-wasi's own, which its
/// synchronous bindings use too: shared by every thread and never dropped. (A runtime per
/// thread, dropped when the thread ends, deadlocked a plugin host's exit under Windows:
/// its shutdown joins threads from a thread-local destructor.)
pub fn bounded<F: std::future::Future>(timeout: Option<Duration>, guest: F) -> Option<F::Output> {
    wasmtime_wasi::runtime::in_tokio(async {
        match timeout {
            None => Some(guest.await),
            Some(t) => tokio::time::timeout(t, guest).await.ok(),
        }
    })
}

/// How a guest stopped at its deadline ends (an epoch check, or a host call it waited in).
pub fn timed_out(limits: &RunLimits) -> Exit {
    Exit {
        code: EXIT_TIMEOUT,
        message: Some(match limits.timeout {
            Some(t) => format!("wasm run-time limit of {t:?} exceeded (--timeout): stopped"),
            None => "wasm guest interrupted: stopped".to_string(),
        }),
    }
}

/// Whether an error came from the guest (a trap, exit or limit) rather than from linking.
pub fn is_guest_error(err: &wasmtime::Error) -> bool {
    err.downcast_ref::<wasmtime_wasi::I32Exit>().is_some()
        || err.downcast_ref::<MemoryLimitExceeded>().is_some()
        || err.downcast_ref::<Trap>().is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_budget_is_shared_and_enforced() {
        let mut l = Limiter::new(Some(1 << 20));
        assert!(l.memory_growing(0, 512 << 10, None).unwrap());
        assert!(l.table_growing(0, 1000, None).unwrap());
        let err = l.memory_growing(512 << 10, 1 << 20, None).unwrap_err();
        assert!(err.downcast_ref::<MemoryLimitExceeded>().is_some());
        assert!(!l.memory_growing(0, 10, Some(5)).unwrap());
    }

    #[test]
    fn exit_codes() {
        let limits = RunLimits::default();
        let e = wasmtime::Error::from(wasmtime_wasi::I32Exit(42));
        assert_eq!(classify(&e, &limits).code, 42);
        let e = wasmtime::Error::from(Trap::UnreachableCodeReached);
        assert_eq!(classify(&e, &limits).code, EXIT_TRAP);
        let e = wasmtime::Error::from(Trap::Interrupt);
        assert_eq!(classify(&e, &limits).code, EXIT_TIMEOUT);
        let e = wasmtime::Error::from(Trap::OutOfFuel);
        assert_eq!(classify(&e, &limits).code, EXIT_FUEL);
    }
}
