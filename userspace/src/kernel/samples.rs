//! The sample ring buffer: what the detector reads. Records are copied out of the ring as they
//! are drained; a reader that falls behind loses samples in the kernel (counted as
//! `ev_sample_dropped`), never blocks the packet path.

use std::os::fd::AsRawFd;
use std::time::Duration;

use aya::maps::{MapData, RingBuf};
use rampart_common::sample::SampleRecord;

use super::{Dataplane, KernelError};

pub struct Sampler {
    ring: RingBuf<MapData>,
}

impl Dataplane {
    /// The sample reader (one per process: the ring has one consumer position).
    pub fn sampler(&mut self) -> Result<Sampler, KernelError> {
        let ring = self.maps.samples.take().ok_or(KernelError::MissingMap {
            name: "SAMPLES (already taken)",
        })?;
        Ok(Sampler { ring })
    }

    /// Sample 1 in `every` packets per CPU (0: off).
    pub fn set_sample_every(&mut self, every: u32) -> Result<(), KernelError> {
        self.update_config(|c| c.sample_every = every).map(|_| ())
    }
}

impl Sampler {
    /// Appends up to `max` records to `out`; returns how many.
    pub fn drain(&mut self, max: usize, out: &mut Vec<SampleRecord>) -> usize {
        let mut n = 0;
        while n < max {
            let Some(item) = self.ring.next() else { break };
            if item.len() >= std::mem::size_of::<SampleRecord>() {
                // SAFETY: the kernel wrote a whole SampleRecord (size checked); it is plain data
                // and may be unaligned in the ring, hence read_unaligned.
                out.push(unsafe { std::ptr::read_unaligned(item.as_ptr().cast::<SampleRecord>()) });
                n += 1;
            }
        }
        n
    }

    /// Waits until records are available or `timeout` passes; returns whether some are.
    pub fn wait(&self, timeout: Duration) -> bool {
        let mut fds = libc::pollfd {
            fd: self.ring.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd for the duration of the call.
        let rc = unsafe {
            libc::poll(
                &mut fds,
                1,
                timeout.as_millis().min(i32::MAX as u128) as i32,
            )
        };
        rc > 0 && fds.revents & libc::POLLIN != 0
    }
}
