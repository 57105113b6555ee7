//! Stats: the runtime's `events --stats` sample as the Any containerd decodes
//! (`io.containerd.cgroups.v1.Metrics` or `io.containerd.cgroups.v2.Metrics`), so `ctr task
//! metrics` and the kubelet see memory, cpu and pids.

use containerd_shim::protos::cgroups::metrics as v1;
use containerd_shim::protos::cgroups_v2::metrics as v2;
use containerd_shim::protos::protobuf::well_known_types::any::Any;
use containerd_shim::protos::protobuf::{Message, MessageField};
use serde_json::Value;

fn n(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

/// The sample's OOM-kill count.
pub fn oom_kills(stats: &Value) -> u64 {
    n(&stats["memory"]["oom_kill"])
}

/// The Any for a StatsResponse.
pub fn to_any(stats: &Value) -> Result<Any, String> {
    let cpu = &stats["cpu"]["usage"];
    let mem = &stats["memory"]["usage"];
    let pids = &stats["pids"];
    let (value, type_url) = if n(&stats["cgroup_version"]) == 2 {
        let m = v2::Metrics {
            pids: MessageField::some(v2::PidsStat {
                current: n(&pids["current"]),
                limit: n(&pids["limit"]),
                ..Default::default()
            }),
            cpu: MessageField::some(v2::CPUStat {
                usage_usec: n(&cpu["total"]) / 1000,
                user_usec: n(&cpu["user"]) / 1000,
                system_usec: n(&cpu["kernel"]) / 1000,
                ..Default::default()
            }),
            memory: MessageField::some(v2::MemoryStat {
                usage: n(&mem["usage"]),
                usage_limit: n(&mem["limit"]),
                ..Default::default()
            }),
            memory_events: MessageField::some(v2::MemoryEvents {
                oom_kill: oom_kills(stats),
                ..Default::default()
            }),
            ..Default::default()
        };
        (m.write_to_bytes(), "io.containerd.cgroups.v2.Metrics")
    } else {
        let m = v1::Metrics {
            pids: MessageField::some(v1::PidsStat {
                current: n(&pids["current"]),
                limit: n(&pids["limit"]),
                ..Default::default()
            }),
            cpu: MessageField::some(v1::CPUStat {
                usage: MessageField::some(v1::CPUUsage {
                    total: n(&cpu["total"]),
                    user: n(&cpu["user"]),
                    kernel: n(&cpu["kernel"]),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            memory: MessageField::some(v1::MemoryStat {
                usage: MessageField::some(v1::MemoryEntry {
                    usage: n(&mem["usage"]),
                    limit: n(&mem["limit"]),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            memory_oom_control: MessageField::some(v1::MemoryOomControl {
                oom_kill: oom_kills(stats),
                ..Default::default()
            }),
            ..Default::default()
        };
        (m.write_to_bytes(), "io.containerd.cgroups.v1.Metrics")
    };
    Ok(Any {
        type_url: type_url.into(),
        value: value.map_err(|e| e.to_string())?,
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_sample_round_trips() {
        let s = serde_json::json!({"cgroup_version": 1,
            "cpu": {"usage": {"total": 5000, "user": 3000, "kernel": 2000}},
            "memory": {"usage": {"usage": 4096, "limit": 8192}, "oom_kill": 1},
            "pids": {"current": 3, "limit": 100}});
        let any = to_any(&s).unwrap();
        assert_eq!(any.type_url, "io.containerd.cgroups.v1.Metrics");
        let m = v1::Metrics::parse_from_bytes(&any.value).unwrap();
        assert_eq!(m.memory.usage.usage, 4096);
        assert_eq!(m.memory.usage.limit, 8192);
        assert_eq!(m.cpu.usage.total, 5000);
        assert_eq!(m.cpu.usage.user, 3000);
        assert_eq!(m.pids.current, 3);
        assert_eq!(m.memory_oom_control.oom_kill, 1);
    }

    #[test]
    fn v2_sample_in_microseconds() {
        let s = serde_json::json!({"cgroup_version": 2,
            "cpu": {"usage": {"total": 7_000_000}},
            "memory": {"usage": {"usage": 1, "limit": 2}},
            "pids": {"current": 1}});
        let any = to_any(&s).unwrap();
        assert_eq!(any.type_url, "io.containerd.cgroups.v2.Metrics");
        let m = v2::Metrics::parse_from_bytes(&any.value).unwrap();
        assert_eq!(m.cpu.usage_usec, 7000);
        assert_eq!(m.memory.usage_limit, 2);
    }
}
