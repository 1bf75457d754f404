//! The fragment-policy demo: a fragment flood against `frag_policy = drop`.

use super::*;

/// What `frag_policy = drop` did to a fragment flood.
#[derive(Clone, Copy, Debug)]
pub struct FragPolicyResult {
    pub attack: AttackReport,
    /// Packets counted under `drop_frag_policy` while the flood ran.
    pub dropped_by_policy: u64,
}

impl FragPolicyResult {
    pub fn share(&self) -> f64 {
        if self.attack.frames == 0 {
            0.0
        } else {
            (self.dropped_by_policy as f64 / f64::from(self.attack.frames)).min(1.0)
        }
    }
}

/// Sends a fragment flood (`packets` at `pps`) with the data plane's fragment policy set to drop,
/// the detection loop running, and puts the policy back as it was, error or not.
pub fn fragment_policy_demo(
    net: &LabNet,
    dp: &mut Dataplane,
    det: &mut DetectionLoop,
    packets: u32,
    pps: u32,
) -> Result<FragPolicyResult, ScenarioError> {
    let previous = dp.config()?.frag_policy;
    dp.update_config(|c| c.frag_policy = POLICY_DROP)?;
    let result = fragment_flood_now(net, dp, det, packets, pps);
    let restored = dp.update_config(|c| c.frag_policy = previous);
    let r = result?;
    restored?;
    Ok(r)
}

fn fragment_flood_now(
    net: &LabNet,
    dp: &mut Dataplane,
    det: &mut DetectionLoop,
    packets: u32,
    pps: u32,
) -> Result<FragPolicyResult, ScenarioError> {
    let mut plan = AttackPlan::new(AttackKind::FragmentFlood, spoofed_sources(), VICTIM);
    plan.packets = packets;
    plan.rate_pps = pps;
    plan.seed = 7;
    let secs = f64::from(packets) / f64::from(pps.max(1));
    plan.time_limit = Duration::from_secs_f64(secs * 2.0 + 2.0).min(HARD_TIME_LIMIT);
    let frames = plan.frames(L2::resolve(&net.attacker, ATTACKER_IF, VICTIM)?)?;
    let before = dp.counters()?;
    let attack = std::thread::scope(|s| -> Result<AttackReport, ScenarioError> {
        let (attacker, pacing) = (&net.attacker, Pacing::of(&plan));
        let sender = s.spawn(move || send_frames(attacker, ATTACKER_IF, pacing, frames));
        drive_while_sending(sender, "fragment flood", || {
            std::thread::sleep(MIN_PASS_GAP);
            det.pass(dp, Duration::from_millis(20))
                .map(|_| ())
                .map_err(ScenarioError::from)
        })
    })?;
    // Let the last frames through the veth before reading the counters.
    std::thread::sleep(Duration::from_millis(100));
    let d = before.delta(&dp.counters()?);
    Ok(FragPolicyResult {
        attack,
        dropped_by_policy: d.reason(Reason::DropFragPolicy).packets,
    })
}
