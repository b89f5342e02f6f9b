//! Hardware counters of the benchmark's own thread: instructions and cycles
//! in user mode, read with perf_event_open (the `perf-event2` crate). A CPU
//! or VM without a PMU (no `/sys/bus/event_source/devices/cpu`) refuses the
//! events, and the benchmark then prints "no PMU" instead of figures.

use perf_event::events::Hardware;
use perf_event::{Builder, Counter, Group};

/// An enabled group of two counters: both cover exactly the same stretch of
/// execution, so cycles / instructions of one batch belong together.
pub struct Pmu {
    group: Group,
    instructions: Counter,
    cycles: Counter,
}

/// Counter values since [`Pmu::open`]; subtract two readings for a stretch.
#[derive(Clone, Copy, Debug)]
pub struct Counts {
    pub instructions: u64,
    pub cycles: u64,
}

impl Pmu {
    /// Opens and enables the counters, or says why there are none.
    pub fn open() -> Result<Pmu, String> {
        let why = |what: &str, e: std::io::Error| format!("{what}: {e}");
        let mut group = Group::new().map_err(|e| why("perf_event_open (group)", e))?;
        let instructions = group
            .add(&Builder::new(Hardware::INSTRUCTIONS))
            .map_err(|e| why("instructions counter", e))?;
        let cycles = group
            .add(&Builder::new(Hardware::CPU_CYCLES))
            .map_err(|e| why("cycles counter", e))?;
        group.enable().map_err(|e| why("enable", e))?;
        let mut pmu = Pmu {
            group,
            instructions,
            cycles,
        };
        // A group the kernel cannot put on the PMU (counters taken by
        // others) counts nothing: better no figures than zeros.
        let mut spin = 0u64;
        for i in 0..100_000u64 {
            spin = std::hint::black_box(spin.wrapping_add(i));
        }
        match pmu.read() {
            Ok(c) if c.instructions > 0 && c.cycles > 0 => Ok(pmu),
            Ok(_) => Err("counters opened but never scheduled (PMU busy?)".into()),
            Err(e) => Err(why("read", e)),
        }
    }

    /// The counters now.
    pub fn read(&mut self) -> std::io::Result<Counts> {
        let data = self.group.read()?;
        let value = |c: &Counter| {
            data.get(c).map(|e| e.value()).ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "counter missing from the group's read",
                )
            })
        };
        Ok(Counts {
            instructions: value(&self.instructions)?,
            cycles: value(&self.cycles)?,
        })
    }
}

impl std::ops::Sub for Counts {
    type Output = Counts;
    fn sub(self, earlier: Counts) -> Counts {
        Counts {
            instructions: self.instructions.saturating_sub(earlier.instructions),
            cycles: self.cycles.saturating_sub(earlier.cycles),
        }
    }
}
