//! The data-plane thread: it alone owns the [`Dataplane`] (maps, attached links, ring buffer),
//! runs the detector's passes, expires deny entries, and serves requests from the rest of the
//! daemon over a channel: jails from the L7 engine, rule loads, deny/allow edits, counter
//! snapshots and the generated-rule commands of the control API.

use std::net::IpAddr;
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rampart_rules::xdp::RuleSpec;
use rampart_rules::Prefix;

use crate::counters::Snapshot;
use crate::detection_loop::{DetectionLoop, LoopConfig};
use crate::detector::ManagerStats;
use crate::kernel::{AttachMode, AttachReport, Dataplane, KernelError, LoadOptions};
use crate::l7::Jailer;

use super::config::Config;
use super::list_request::{List, ListRequest};

/// What the thread is asked to do.
enum Command {
    Jail(IpAddr, Duration),
    LoadRules(Vec<RuleSpec>, SyncSender<Result<String, String>>),
    Control(Vec<String>, SyncSender<Result<String, String>>),
    List(ListRequest, SyncSender<Result<String, String>>),
    State(SyncSender<KernelState>),
    Stop,
}

/// The data plane as metrics and `status` show it.
#[derive(Clone, Debug, Default)]
pub struct KernelState {
    pub counters: Option<Snapshot>,
    pub attached: Vec<AttachReport>,
    pub detector: Option<ManagerStats>,
    /// Generated rules live: (id, expression, hits, action).
    pub generated: Vec<(u32, String, u64, String)>,
    pub generated_total: usize,
    pub deny_entries: usize,
    pub jails: u64,
    pub jail_errors: u64,
}

/// A handle to the data-plane thread.
#[derive(Clone)]
pub struct KernelHandle {
    tx: Sender<Command>,
}

pub struct KernelThread {
    pub handle: KernelHandle,
    join: JoinHandle<()>,
}

fn mode(s: &str) -> AttachMode {
    match s {
        "native" => AttachMode::Native,
        "generic" => AttachMode::Generic,
        _ => AttachMode::Auto,
    }
}

/// Why the data-plane thread could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Kernel(#[from] KernelError),
    #[error("detector: {0}")]
    Detector(#[from] crate::detection_loop::LoopError),
    #[error("rules: {0}")]
    Rules(#[from] rampart_rules::xdp::CompileError),
    #[error("starting the data-plane thread: {0}")]
    Thread(#[from] std::io::Error),
}

impl KernelThread {
    /// Loads the program (maps pinned under `pin_dir`), attaches it to the configured
    /// interfaces, loads `operator` rules, starts the detector, and runs the thread.
    ///
    /// # Errors
    /// Loading or attaching failed (nothing is left attached).
    pub fn start(cfg: &Config, operator: Vec<RuleSpec>) -> Result<KernelThread, StartError> {
        let mut dp = Dataplane::load(&LoadOptions {
            object: None,
            pin_dir: Some(cfg.dataplane.pin_dir.clone()),
        })?;
        let mut attached = Vec::new();
        for iface in &cfg.dataplane.interfaces {
            // Links stay owned by this process: they go away with it (no pinned link).
            attached.push(dp.attach(iface, mode(&cfg.dataplane.mode), None)?);
        }
        let det = if cfg.detector.enabled {
            let mut lc = LoopConfig::default();
            lc.detector.floor_pps = cfg.detector.floor_pps;
            lc.detector.min_ttl_ns = cfg.detector.min_ttl.saturating_mul(1_000_000_000);
            lc.sample_budget = cfg.detector.sample_budget;
            Some(DetectionLoop::start(&mut dp, lc, operator)?)
        } else {
            dp.load_rules(&rampart_rules::xdp::compile(&operator)?)?;
            None
        };
        let (tx, rx) = mpsc::channel();
        let join = std::thread::Builder::new()
            .name("rampart-dataplane".into())
            .spawn(move || {
                Owner {
                    dp,
                    det,
                    attached,
                    jails: 0,
                    jail_errors: 0,
                }
                .run(rx)
            })?;
        Ok(KernelThread {
            handle: KernelHandle { tx },
            join,
        })
    }

    /// Stops the thread; links and the program are released (interfaces detached).
    pub fn stop(self) {
        let _ = self.handle.tx.send(Command::Stop);
        let _ = self.join.join();
    }
}

fn ask<T>(tx: &Sender<Command>, make: impl FnOnce(SyncSender<T>) -> Command) -> Option<T> {
    let (rtx, rrx) = mpsc::sync_channel(1);
    tx.send(make(rtx)).ok()?;
    rrx.recv_timeout(Duration::from_secs(5)).ok()
}

impl KernelHandle {
    /// Replaces the operator's XDP rules (generated rules stay after them).
    pub fn load_rules(&self, entries: Vec<RuleSpec>) -> Result<String, String> {
        ask(&self.tx, |r| Command::LoadRules(entries, r))
            .unwrap_or_else(|| Err("the data-plane thread did not answer".into()))
    }

    /// A checked deny/allow edit or listing.
    pub fn list(&self, req: ListRequest) -> Result<String, String> {
        ask(&self.tx, |r| Command::List(req, r))
            .unwrap_or_else(|| Err("the data-plane thread did not answer".into()))
    }

    /// A control request for the data plane (`generated …`, `counters`).
    pub fn control(&self, words: Vec<String>) -> Result<String, String> {
        ask(&self.tx, |r| Command::Control(words, r))
            .unwrap_or_else(|| Err("the data-plane thread did not answer".into()))
    }

    pub fn state(&self) -> Option<KernelState> {
        ask(&self.tx, Command::State)
    }

    /// A [`Jailer`] for the L7 engine: jails are queued to the thread, never waited on.
    pub fn jailer(&self) -> Arc<dyn Jailer> {
        Arc::new(ChannelJailer {
            tx: self.tx.clone(),
        })
    }
}

struct ChannelJailer {
    tx: Sender<Command>,
}

impl Jailer for ChannelJailer {
    fn jail(&self, ip: IpAddr, duration: Duration) -> Result<(), rampart_tables::TablesError> {
        self.tx
            .send(Command::Jail(ip, duration))
            .map_err(|_| KernelError::OwnerStopped.into())
    }
}

struct Owner {
    dp: Dataplane,
    det: Option<DetectionLoop>,
    attached: Vec<AttachReport>,
    jails: u64,
    jail_errors: u64,
}

impl Owner {
    fn run(mut self, rx: Receiver<Command>) {
        let mut last_expiry = Instant::now();
        loop {
            match &mut self.det {
                Some(det) => {
                    if let Err(e) = det.pass(&mut self.dp, Duration::from_millis(50)) {
                        log::warn!("detector pass failed: {e}");
                        std::thread::sleep(Duration::from_millis(50));
                    }
                }
                None => std::thread::sleep(Duration::from_millis(20)),
            }
            while let Ok(cmd) = rx.try_recv() {
                if !self.handle(cmd) {
                    return;
                }
            }
            if last_expiry.elapsed() >= Duration::from_secs(1) {
                last_expiry = Instant::now();
                if let Err(e) = self.dp.expire_denies() {
                    log::warn!("expiring deny entries failed: {e}");
                }
            }
        }
    }

    /// Returns false on `Stop`.
    fn handle(&mut self, cmd: Command) -> bool {
        match cmd {
            Command::Stop => return false,
            Command::Jail(ip, ttl) => match self.dp.deny(Prefix::from_ip(ip), Some(ttl)) {
                Ok(()) => {
                    self.jails += 1;
                    log::info!("jailed {ip} in XDP for {} s", ttl.as_secs());
                }
                Err(e) => {
                    self.jail_errors += 1;
                    log::warn!("jailing {ip} failed: {e}");
                }
            },
            Command::LoadRules(entries, reply) => {
                let r = self.load_rules(entries);
                let _ = reply.send(r);
            }
            Command::Control(words, reply) => {
                let words: Vec<&str> = words.iter().map(String::as_str).collect();
                let _ = reply.send(self.control(&words));
            }
            Command::List(req, reply) => {
                let _ = reply.send(self.list(req).map_err(|e| e.to_string()));
            }
            Command::State(reply) => {
                let _ = reply.send(self.state());
            }
        }
        true
    }

    fn load_rules(&mut self, entries: Vec<RuleSpec>) -> Result<String, String> {
        let n = entries.len();
        match &mut self.det {
            Some(det) => {
                det.manager
                    .set_operator_rules(entries)
                    .map_err(|e| e.to_string())?;
                det.manager.sync(&mut self.dp).map_err(|e| e.to_string())?;
            }
            None => {
                let tables = rampart_rules::xdp::compile(&entries).map_err(|e| e.to_string())?;
                self.dp.load_rules(&tables).map_err(|e| e.to_string())?;
            }
        }
        Ok(format!("{n} XDP entries loaded\n"))
    }

    fn list(&mut self, req: ListRequest) -> Result<String, KernelError> {
        let removed =
            |was: bool, p: Prefix| format!("{} {p}\n", if was { "removed" } else { "not listed:" });
        Ok(match req {
            ListRequest::Add {
                list: List::Deny,
                prefix,
                ttl,
            } => {
                self.dp.deny(prefix, ttl)?;
                match ttl {
                    Some(t) => format!("denied {prefix} for {} s\n", t.as_secs()),
                    None => format!("denied {prefix}\n"),
                }
            }
            ListRequest::Add {
                list: List::Allow,
                prefix,
                ..
            } => {
                self.dp.allow(prefix)?;
                format!("allowed {prefix}\n")
            }
            ListRequest::Remove {
                list: List::Deny,
                prefix,
            } => removed(self.dp.undeny(prefix)?, prefix),
            ListRequest::Remove {
                list: List::Allow,
                prefix,
            } => removed(self.dp.unallow(prefix)?, prefix),
            ListRequest::List(List::Deny) => self
                .dp
                .deny_list()?
                .iter()
                .map(|d| match d.expires_in {
                    Some(t) => format!("{}  expires in {} s\n", d.prefix, t.as_secs()),
                    None => format!("{}\n", d.prefix),
                })
                .collect(),
            ListRequest::List(List::Allow) => self
                .dp
                .allow_list()?
                .iter()
                .map(|p| format!("{p}\n"))
                .collect(),
        })
    }

    fn control(&mut self, words: &[&str]) -> Result<String, String> {
        match words {
            ["counters"] => Ok(self.dp.counters().map_err(|e| e.to_string())?.render()),
            ["generated", rest @ ..] => match &mut self.det {
                Some(det) => crate::control::generated_command(&mut det.manager, rest),
                None => Err("the detector is disabled in this configuration".into()),
            },
            _ => Err(format!("unknown data-plane request `{}`", words.join(" "))),
        }
    }

    fn state(&self) -> KernelState {
        let (detector, generated, generated_total) = match &self.det {
            Some(det) => {
                let m = &det.manager;
                let live = m
                    .rules()
                    .iter()
                    .map(|r| (r.id, r.expression(), r.hits, format!("{:?}", r.action)))
                    .collect();
                (Some(m.stats()), live, m.rules().len() + m.history().count())
            }
            None => (None, Vec::new(), 0),
        };
        KernelState {
            counters: self.dp.counters().ok(),
            attached: self.attached.clone(),
            detector,
            generated,
            generated_total,
            deny_entries: self.dp.deny_list().map_or(0, |l| l.len()),
            jails: self.jails,
            jail_errors: self.jail_errors,
        }
    }
}
