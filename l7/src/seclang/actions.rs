//! A rule's action list (`id:1,phase:2,t:lowercase,setvar:tx.x=+1,…`) read into typed form.
//!
//! Actions that only feed ModSecurity's own logs or storage (`rev`, `ver`, `maturity`,
//! `auditlog`, `initcol`, `expirevar`, `setenv` …) are accepted and dropped; the list is
//! [`INERT`]. An action outside both lists is an `UnknownAction` error, so a typo in a rule
//! file is never silently a no-op.

use super::ast::{ActionAst, Location};
use super::error::{SecLangError, SecLangErrorKind};
use super::transform::Transform;

/// What a matching rule does to the transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disruptive {
    Pass,
    /// Whatever `SecDefaultAction` says for the phase (CRS: `pass`, the anomaly rules decide).
    Block,
    Deny,
    Drop,
    /// `allow`: stop evaluating the request's rules.
    Allow,
    Redirect,
}

/// One side effect, run in the order written when the rule (whole chain) matches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// `setvar:tx.name=value`, `=+n`, `=-n`, `!tx.name`; name and value may hold macros.
    SetVar {
        collection: String,
        name: String,
        op: SetOp,
    },
    Ctl(Ctl),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SetOp {
    Assign(String),
    Add(String),
    Sub(String),
    Delete,
}

/// `ctl:` changes to this transaction only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ctl {
    RuleRemoveById(u32, u32),
    RuleRemoveByTag(String),
    /// `ruleRemoveTargetById=ID;TARGET` (TARGET like `ARGS:foo` or `REQUEST_COOKIES`).
    RuleRemoveTargetById(u32, u32, String),
    RuleRemoveTargetByTag(String, String),
    RuleEngine(super::ast::EngineMode),
    RequestBodyProcessor(String),
    ForceRequestBodyVariable(bool),
    /// Audit-log and body-access switches: nothing to do for an engine handed whole requests.
    Inert,
}

/// A rule's (or chain link's) actions, typed. `None`/empty fields were not written.
#[derive(Clone, Debug, Default)]
pub struct Actions {
    pub id: Option<u32>,
    pub phase: Option<u8>,
    pub msg: Option<String>,
    pub logdata: Option<String>,
    pub tags: Vec<String>,
    pub severity: Option<String>,
    pub log: Option<bool>,
    pub capture: bool,
    pub multi_match: bool,
    pub chain: bool,
    pub disruptive: Option<Disruptive>,
    pub status: Option<u16>,
    pub skip_after: Option<String>,
    pub skip: u32,
    /// `t:none` seen: drop the default action's transformations.
    pub t_none: bool,
    pub transforms: Vec<Transform>,
    pub effects: Vec<Effect>,
}

/// Actions accepted and ignored: metadata, persistence and logging knobs.
pub const INERT: &[&str] = &[
    "rev",
    "ver",
    "maturity",
    "accuracy",
    "auditlog",
    "noauditlog",
    "initcol",
    "expirevar",
    "setenv",
    "setuid",
    "setsid",
    "setrsc",
    "sanitisematched",
    "sanitizematched",
    "sanitisearg",
    "sanitizearg",
    "sanitisematchedbytes",
    "sanitizematchedbytes",
    "xmlns",
    "append",
    "prepend",
    "deprecatevar",
    "sanitiserequestheader",
    "sanitiseresponseheader",
];

impl Actions {
    /// Reads `list` (as parsed) for a rule written at `at`.
    pub fn read(list: &[ActionAst], at: &Location) -> Result<Actions, SecLangError> {
        let mut out = Actions::default();
        for a in list {
            out.apply(a, at)?;
        }
        Ok(out)
    }

    fn apply(&mut self, a: &ActionAst, at: &Location) -> Result<(), SecLangError> {
        let bad =
            |detail: String| SecLangError::new(at.clone(), SecLangErrorKind::BadArgument, detail);
        let arg = || a.argument.clone().unwrap_or_default();
        match a.name.as_str() {
            "id" => {
                self.id = Some(
                    arg()
                        .trim()
                        .parse()
                        .map_err(|_| bad(format!("id:{} is not a number", arg())))?,
                )
            }
            "phase" => {
                self.phase = Some(match arg().trim().to_ascii_lowercase().as_str() {
                    "1" => 1,
                    "2" | "request" => 2,
                    "3" => 3,
                    "4" | "response" => 4,
                    "5" | "logging" => 5,
                    other => return Err(bad(format!("phase:{other} is not 1-5"))),
                })
            }
            "msg" => self.msg = Some(arg()),
            "logdata" => self.logdata = Some(arg()),
            "tag" => self.tags.push(arg()),
            "severity" => self.severity = Some(arg()),
            "log" => self.log = Some(true),
            "nolog" => self.log = Some(false),
            "capture" => self.capture = true,
            "multimatch" => self.multi_match = true,
            "chain" => self.chain = true,
            "pass" => self.disruptive = Some(Disruptive::Pass),
            "block" => self.disruptive = Some(Disruptive::Block),
            "deny" => self.disruptive = Some(Disruptive::Deny),
            "drop" => self.disruptive = Some(Disruptive::Drop),
            "allow" => self.disruptive = Some(Disruptive::Allow),
            "redirect" => self.disruptive = Some(Disruptive::Redirect),
            "status" => {
                self.status = Some(
                    arg()
                        .trim()
                        .parse()
                        .map_err(|_| bad(format!("status:{} is not a status code", arg())))?,
                )
            }
            "skipafter" => self.skip_after = Some(arg()),
            "skip" => {
                self.skip = arg()
                    .trim()
                    .parse()
                    .map_err(|_| bad(format!("skip:{} is not a count", arg())))?
            }
            "t" => {
                let name = arg();
                if name.eq_ignore_ascii_case("none") {
                    self.t_none = true;
                    self.transforms.clear();
                } else {
                    let t = Transform::from_name(&name).ok_or_else(|| {
                        SecLangError::new(
                            at.clone(),
                            SecLangErrorKind::UnknownTransformation,
                            format!("unknown transformation t:{name}"),
                        )
                    })?;
                    self.transforms.push(t);
                }
            }
            "setvar" => self.effects.push(read_setvar(&arg()).map_err(bad)?),
            "ctl" => self
                .effects
                .push(Effect::Ctl(read_ctl(&arg()).map_err(bad)?)),
            name if INERT.contains(&name) => {}
            name => {
                return Err(SecLangError::new(
                    at.clone(),
                    SecLangErrorKind::UnknownAction,
                    format!("unknown action {name}"),
                ))
            }
        }
        Ok(())
    }
}

/// `tx.name=value` | `tx.name=+n` | `tx.name=-n` | `tx.name` | `!tx.name`.
fn read_setvar(s: &str) -> Result<Effect, String> {
    let (delete, s) = match s.strip_prefix('!') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (var, value) = match s.split_once('=') {
        Some((v, val)) => (v.trim(), Some(val)),
        None => (s.trim(), None),
    };
    let (collection, name) = var
        .split_once('.')
        .ok_or_else(|| format!("setvar:{s} has no collection (want tx.name)"))?;
    if name.is_empty() {
        return Err(format!("setvar:{s} has an empty name"));
    }
    let op = match (delete, value) {
        (true, _) => SetOp::Delete,
        (false, None) => SetOp::Assign("1".into()),
        (false, Some(v)) => match (v.strip_prefix('+'), v.strip_prefix('-')) {
            (Some(n), _) => SetOp::Add(n.to_string()),
            (_, Some(n)) => SetOp::Sub(n.to_string()),
            _ => SetOp::Assign(v.to_string()),
        },
    };
    Ok(Effect::SetVar {
        collection: collection.to_ascii_lowercase(),
        name: name.to_string(),
        op,
    })
}

/// `ruleRemoveById=920100` | `=920100-920199`: an inclusive range.
fn id_range(s: &str) -> Result<(u32, u32), String> {
    let num = |t: &str| {
        t.trim()
            .parse::<u32>()
            .map_err(|_| format!("{s} is not a rule id or range"))
    };
    match s.split_once('-') {
        Some((a, b)) => Ok((num(a)?, num(b)?)),
        None => {
            let n = num(s)?;
            Ok((n, n))
        }
    }
}

fn read_ctl(s: &str) -> Result<Ctl, String> {
    let (name, value) = s
        .split_once('=')
        .ok_or_else(|| format!("ctl:{s} has no `=`"))?;
    let value = value.trim();
    let on = || value.eq_ignore_ascii_case("on");
    Ok(match name.trim().to_ascii_lowercase().as_str() {
        "ruleremovebyid" => {
            let (a, b) = id_range(value)?;
            Ctl::RuleRemoveById(a, b)
        }
        "ruleremovebytag" => Ctl::RuleRemoveByTag(value.to_string()),
        "ruleremovetargetbyid" => {
            let (ids, target) = value
                .split_once(';')
                .ok_or_else(|| format!("ctl:{s} wants ID;TARGET"))?;
            let (a, b) = id_range(ids)?;
            Ctl::RuleRemoveTargetById(a, b, target.trim().to_string())
        }
        "ruleremovetargetbytag" => {
            let (tag, target) = value
                .split_once(';')
                .ok_or_else(|| format!("ctl:{s} wants TAG;TARGET"))?;
            Ctl::RuleRemoveTargetByTag(tag.to_string(), target.trim().to_string())
        }
        "ruleengine" => Ctl::RuleEngine(match value.to_ascii_lowercase().as_str() {
            "on" => super::ast::EngineMode::On,
            "off" => super::ast::EngineMode::Off,
            "detectiononly" => super::ast::EngineMode::DetectionOnly,
            _ => {
                return Err(format!(
                    "ctl:ruleEngine={value} is not On, Off or DetectionOnly"
                ))
            }
        }),
        "requestbodyprocessor" => Ctl::RequestBodyProcessor(value.to_ascii_uppercase()),
        "forcerequestbodyvariable" => Ctl::ForceRequestBodyVariable(on()),
        "auditengine" | "auditlogparts" | "requestbodyaccess" | "responsebodyaccess"
        | "requestbodylimit" | "responsebodylimit" | "debugloglevel" | "hashengine" => Ctl::Inert,
        other => return Err(format!("unknown ctl:{other}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn at() -> Location {
        Location {
            file: Arc::from("t.conf"),
            line: 1,
            column: 1,
        }
    }

    fn act(name: &str, arg: Option<&str>) -> ActionAst {
        ActionAst {
            name: name.into(),
            argument: arg.map(Into::into),
        }
    }

    #[test]
    fn reads_the_actions_crs_writes() {
        let a = Actions::read(
            &[
                act("id", Some("942100")),
                act("phase", Some("request")),
                act("block", None),
                act("capture", None),
                act("t", Some("none")),
                act(
                    "setvar",
                    Some("tx.inbound_anomaly_score_pl1=+%{tx.critical_anomaly_score}"),
                ),
                act("setvar", Some("!tx.x")),
                act("setvar", Some("tx.flag")),
                act("ctl", Some("ruleRemoveTargetById=942100;ARGS:foo")),
                act("ver", Some("OWASP_CRS/4.0.0")),
            ],
            &at(),
        )
        .unwrap();
        assert_eq!(a.id, Some(942100));
        assert_eq!(a.phase, Some(2));
        assert_eq!(a.disruptive, Some(Disruptive::Block));
        assert!(a.capture && a.t_none);
        assert_eq!(
            a.effects[0],
            Effect::SetVar {
                collection: "tx".into(),
                name: "inbound_anomaly_score_pl1".into(),
                op: SetOp::Add("%{tx.critical_anomaly_score}".into())
            }
        );
        assert!(matches!(
            a.effects[1],
            Effect::SetVar {
                op: SetOp::Delete,
                ..
            }
        ));
        assert!(matches!(&a.effects[2], Effect::SetVar { op: SetOp::Assign(v), .. } if v == "1"));
        assert_eq!(
            a.effects[3],
            Effect::Ctl(Ctl::RuleRemoveTargetById(942100, 942100, "ARGS:foo".into()))
        );
    }

    #[test]
    fn refuses_unknown_and_bad_actions() {
        let e = Actions::read(&[act("idd", Some("1"))], &at()).unwrap_err();
        assert_eq!(e.kind(), SecLangErrorKind::UnknownAction);
        let e = Actions::read(&[act("id", Some("x"))], &at()).unwrap_err();
        assert_eq!(e.kind(), SecLangErrorKind::BadArgument);
        let e = Actions::read(&[act("phase", Some("9"))], &at()).unwrap_err();
        assert_eq!(e.kind(), SecLangErrorKind::BadArgument);
        let e = Actions::read(&[act("ctl", Some("nope=1"))], &at()).unwrap_err();
        assert!(e.detail().contains("unknown ctl:nope"));
        let e = Actions::read(&[act("setvar", Some("novar"))], &at()).unwrap_err();
        assert!(e.detail().contains("no collection"));
    }
}
