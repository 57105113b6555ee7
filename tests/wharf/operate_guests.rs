//! Guests the operating-verb tests run (shared by the Linux-only and the portable tests).

/// Grows its memory from 1 to 640 pages (40 MiB), touches every page, then sleeps 30 s.
pub const GROW_40_MIB: &str = r#"(module
  (import "wasi_snapshot_preview1" "poll_oneoff"
    (func $poll_oneoff (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "\01\00\00\00")
  (data (i32.const 24) "\00\ac\23\fc\06\00\00\00")
  (func (export "_start") (local $p i32)
    (drop (memory.grow (i32.const 639)))
    (local.set $p (i32.const 65536))
    (loop $touch
      (i32.store (local.get $p) (i32.const 1))
      (local.set $p (i32.add (local.get $p) (i32.const 4096)))
      (br_if $touch (i32.lt_u (local.get $p) (i32.const 41943040))))
    (drop (call $poll_oneoff (i32.const 0) (i32.const 48) (i32.const 1) (i32.const 124)))))
"#;

/// A guest that asks the clock again and again, forever: it burns fuel, and its host
/// calls let the engine's fuel counter be read (a loop without calls keeps it in a
/// register until it calls out).
pub const CLOCK_LOOP: &str = r#"(module
  (import "wasi_snapshot_preview1" "clock_time_get" (func $now (param i32 i64 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (loop $spin
      (drop (call $now (i32.const 1) (i64.const 0) (i32.const 0)))
      (br $spin))))
"#;
