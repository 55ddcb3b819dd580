//! Load figures: CPU, memory and load average, sampled once a second on a thread of its
//! own (sysinfo reads /proc synchronously).

use std::time::Duration;

use tokio::sync::watch;

/// One sample of this node's load.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LoadSample {
    /// 0.0–1.0 of all cores.
    pub cpu: f64,
    /// 0.0–1.0.
    pub mem: f64,
    pub load1: f64,
    pub cores: usize,
}

impl LoadSample {
    pub fn figures(&self) -> proto::LoadFigures {
        proto::LoadFigures {
            cpu_permille: (self.cpu.clamp(0.0, 1.0) * 1000.0).round() as u16,
            mem_permille: (self.mem.clamp(0.0, 1.0) * 1000.0).round() as u16,
            load1_centi: (self.load1.max(0.0) * 100.0)
                .round()
                .min(f64::from(u32::MAX)) as u32,
        }
    }
}

/// Environment variable that replaces the sampled CPU use (0.0–1.0): fault injection for
/// tests of load-based weights, where every agent shares one machine's load. Never set
/// it in production.
pub const CPU_OVERRIDE_ENV: &str = "QUORATE_FAULT_CPU";

/// Starts the sampler; the receiver holds `None` until the first sample.
pub fn spawn(interval: Duration) -> watch::Receiver<Option<LoadSample>> {
    let (tx, rx) = watch::channel(None);
    let cpu_override = std::env::var(CPU_OVERRIDE_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|v| (0.0..=1.0).contains(v));
    if let Some(cpu) = cpu_override {
        tracing::warn!(
            "{CPU_OVERRIDE_ENV} replaces this node's CPU reading with {cpu} (fault injection)"
        );
    }
    let spawned = std::thread::Builder::new()
        .name("quorate-load".into())
        .spawn(move || {
            let mut sys = sysinfo::System::new();
            let cores = std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1);
            sys.refresh_cpu_usage();
            // CPU use is a difference between two readings.
            std::thread::sleep(
                sysinfo::MINIMUM_CPU_UPDATE_INTERVAL.max(Duration::from_millis(200)),
            );
            loop {
                sys.refresh_cpu_usage();
                sys.refresh_memory();
                let total = sys.total_memory();
                let sample = LoadSample {
                    cpu: cpu_override.unwrap_or(f64::from(sys.global_cpu_usage()) / 100.0),
                    mem: if total == 0 {
                        0.0
                    } else {
                        sys.used_memory() as f64 / total as f64
                    },
                    load1: sysinfo::System::load_average().one,
                    cores,
                };
                if tx.send(Some(sample)).is_err() {
                    return;
                }
                std::thread::sleep(interval);
            }
        });
    if let Err(e) = spawned {
        tracing::error!("cannot start the load sampler thread: {e}");
    }
    rx
}
