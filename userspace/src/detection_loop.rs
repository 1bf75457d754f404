//! The detection loop: samples from the XDP ring buffer feed the detector; the rules it generates
//! go into the kernel tables (after the operator's) and come out when they expire. The sampling
//! rate adapts each second to keep samples under a budget.
//!
//! Three names, three things: this module is the loop that drives the kernel; the detector it
//! feeds is the `rampart-detector` crate ([`crate::detector`], no kernel types); `rampart detect`
//! (`cli_detect.rs`) and the daemon run this loop.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rampart_common::{frag::NO_SLOT, sample::SampleRecord};
use rampart_rules::{packet::parse_frame, xdp::RuleSpec};

use crate::detector::{DetectorConfig, DetectorError, Manager, Sample};
use crate::kernel::{monotonic_ns, Dataplane, KernelError, Sampler};
use crate::sampling::RateController;

/// What stops the loop: the kernel seam or the detector failed.
#[derive(Debug, thiserror::Error)]
pub enum LoopError {
    #[error(transparent)]
    Kernel(#[from] KernelError),
    #[error(transparent)]
    Detector(#[from] DetectorError),
}

/// One sampled record as the detector's input; `slots` maps counter slots to rule ids.
pub fn to_sample(rec: &SampleRecord, slots: &HashMap<u32, u32>) -> Sample {
    let head = rec.data[..(rec.cap_len as usize).min(rec.data.len())].to_vec();
    let (parsed, _) = parse_frame(&head);
    Sample {
        ts_ns: rec.ts_ns,
        wire_len: rec.wire_len,
        sample_every: rec.sample_every.max(1),
        dropped: rec.verdict == rampart_common::sample::SAMPLE_DROP,
        rule_id: if rec.rule_slot == NO_SLOT {
            None
        } else {
            slots.get(&rec.rule_slot).copied()
        },
        parsed,
        head,
    }
}

/// Loop settings.
#[derive(Clone, Debug)]
pub struct LoopConfig {
    pub detector: DetectorConfig,
    /// Samples per second the loop is sized for.
    pub sample_budget: u64,
    pub min_sample_every: u32,
    pub max_sample_every: u32,
}

impl Default for LoopConfig {
    fn default() -> Self {
        LoopConfig {
            detector: DetectorConfig::default(),
            sample_budget: 50_000,
            min_sample_every: 1,
            max_sample_every: 1 << 16,
        }
    }
}

/// What happened in one pass of the loop (for progress output and tests).
#[derive(Clone, Debug, Default)]
pub struct PassReport {
    pub samples: usize,
    /// The rule set was swapped (rules appeared or expired).
    pub reloaded: bool,
    pub sample_every: u32,
}

/// The detection loop: the detector's [`Manager`] attached to a data plane's sampler and tables.
pub struct DetectionLoop {
    pub manager: Manager,
    sampler: Sampler,
    rate: RateController,
    slots: HashMap<u32, u32>,
    records: Vec<SampleRecord>,
    window_start: Instant,
    window_samples: u64,
}

impl DetectionLoop {
    /// Takes the data plane's sampler and starts sampling at the loop's minimum rate.
    pub fn start(
        dp: &mut Dataplane,
        cfg: LoopConfig,
        operator: Vec<RuleSpec>,
    ) -> Result<DetectionLoop, LoopError> {
        let manager = Manager::new(cfg.detector, operator)?;
        let sampler = dp.sampler()?;
        let rate = RateController::new(
            cfg.sample_budget,
            cfg.min_sample_every,
            cfg.max_sample_every,
        );
        dp.set_sample_every(rate.every())?;
        let slots = dp.rule_slots()?;
        Ok(DetectionLoop {
            manager,
            sampler,
            rate,
            slots,
            records: Vec::new(),
            window_start: Instant::now(),
            window_samples: 0,
        })
    }

    /// Drains samples (waiting up to `wait`), feeds the detector, and brings the kernel tables to
    /// the current rule set.
    pub fn pass(&mut self, dp: &mut Dataplane, wait: Duration) -> Result<PassReport, LoopError> {
        self.sampler.wait(wait);
        self.records.clear();
        let n = self.sampler.drain(200_000, &mut self.records);
        for rec in &self.records {
            self.manager.ingest(&to_sample(rec, &self.slots));
        }
        let reloaded = self.manager.poll(monotonic_ns()?, dp)?.is_some();
        if reloaded {
            self.slots = dp.rule_slots()?;
        }
        self.window_samples += n as u64;
        let elapsed = self.window_start.elapsed();
        if elapsed >= Duration::from_secs(1) {
            let before = self.rate.every();
            let every = self.rate.update(self.window_samples, elapsed.as_secs_f64());
            if every != before {
                dp.set_sample_every(every)?;
            }
            self.window_start = Instant::now();
            self.window_samples = 0;
        }
        Ok(PassReport {
            samples: n,
            reloaded,
            sample_every: self.rate.every(),
        })
    }

    /// Runs passes until `stop` is set.
    pub fn run(
        &mut self,
        dp: &mut Dataplane,
        stop: &AtomicBool,
        mut each: impl FnMut(&PassReport, &Manager),
    ) -> Result<(), LoopError> {
        while !stop.load(Ordering::SeqCst) {
            let r = self.pass(dp, Duration::from_millis(50))?;
            each(&r, &self.manager);
        }
        Ok(())
    }
}
