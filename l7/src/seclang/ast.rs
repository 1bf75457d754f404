//! The parsed form of a SecLang file: directives as written, before anything is compiled.
//! The parser (`parse.rs`) builds these; the compiler (`compile.rs`) turns them into rules.

use std::fmt;
use std::sync::Arc;

/// Where a directive (or a part of it) was written: file, 1-based line and column.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    pub file: Arc<str>,
    pub line: u32,
    pub column: u32,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// One directive, in file order (after `Include`s are expanded in place).
#[derive(Clone, Debug, PartialEq)]
pub enum Directive {
    /// `SecRule TARGETS "OPERATOR" "ACTIONS"`; `SecAction "ACTIONS"` is a rule with no targets
    /// and the `unconditionalMatch` operator. A rule whose actions hold `chain` is followed by
    /// its chained rule as the next `Rule` directive (the compiler links them).
    Rule(RuleAst),
    /// `SecMarker NAME` (a `skipAfter` target).
    Marker { name: String, location: Location },
    /// `SecDefaultAction "ACTIONS"` (applies to the rules that follow, for the phase it names).
    DefaultAction {
        actions: Vec<ActionAst>,
        location: Location,
    },
    /// `SecRuleRemoveById 1 2 100-200`.
    RemoveById {
        ids: Vec<IdRange>,
        location: Location,
    },
    /// `SecRuleRemoveByTag "regex or text"`.
    RemoveByTag { tag: String, location: Location },
    /// `SecRuleRemoveByMsg "text"`.
    RemoveByMsg { msg: String, location: Location },
    /// `SecRuleUpdateTargetById ID[,ID] "TARGETS" ["REPLACED"]`.
    UpdateTargetById {
        ids: Vec<IdRange>,
        targets: Vec<Target>,
        replaced: Option<Vec<Target>>,
        location: Location,
    },
    /// `SecRuleUpdateTargetByTag TAG "TARGETS"`.
    UpdateTargetByTag {
        tag: String,
        targets: Vec<Target>,
        location: Location,
    },
    /// `SecRuleUpdateActionById ID "ACTIONS"`.
    UpdateActionById {
        id: u32,
        actions: Vec<ActionAst>,
        location: Location,
    },
    /// `SecRuleEngine On|Off|DetectionOnly`.
    RuleEngine {
        mode: EngineMode,
        location: Location,
    },
    /// `SecComponentSignature "..."`.
    ComponentSignature { value: String, location: Location },
    /// A directive on the documented list of ones that change nothing here (body limits,
    /// audit log settings, `SecRequestBodyAccess` …): accepted and counted, with its value.
    Ignored {
        name: String,
        value: String,
        location: Location,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EngineMode {
    On,
    Off,
    DetectionOnly,
}

/// `N` or `N-M` (inclusive) in `SecRuleRemoveById` and friends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IdRange {
    pub first: u32,
    pub last: u32,
}

/// A `SecRule` or `SecAction` as written.
#[derive(Clone, Debug, PartialEq)]
pub struct RuleAst {
    /// Empty for `SecAction`.
    pub targets: Vec<Target>,
    pub operator: OperatorAst,
    pub actions: Vec<ActionAst>,
    pub location: Location,
}

/// One `|`-separated target: `ARGS`, `ARGS:id`, `ARGS:/^x/`, `!ARGS:id`, `&ARGS`, `TX:foo`,
/// `XML:/*`, `REQUEST_HEADERS:User-Agent`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The variable or collection name, upper-cased (`ARGS`, `TX`, `REQUEST_URI`).
    pub collection: String,
    pub selector: Selector,
    /// `!` prefix: exclude this key from the collection for this rule.
    pub negated: bool,
    /// `&` prefix: the number of matching values, not the values.
    pub count: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selector {
    /// The whole collection (or a plain variable).
    All,
    /// `COLL:key` (quotes removed; compared case-insensitively by the engine).
    Key(String),
    /// `COLL:/regex/`, the pattern without the slashes.
    Regex(String),
}

/// The operator string: `@rx foo`, `!@eq 0`, or a bare pattern (which is `@rx`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OperatorAst {
    /// Name without `@`, as written (`rx`, `pmFromFile`); `rx` when none was written,
    /// `unconditionalMatch` for `SecAction`.
    pub name: String,
    /// The argument after the name, with one leading space removed; may hold macros.
    pub argument: String,
    /// `!` before the operator.
    pub negated: bool,
}

/// One action: `id:942100`, `t:lowercase`, `setvar:'tx.x=+%{tx.y}'`, `chain`, `msg:'...'`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActionAst {
    /// Lower-cased action name (`id`, `t`, `setvar`, `ctl`, `skipafter`).
    pub name: String,
    /// The argument after `:`, with surrounding single quotes removed and `\'` unescaped.
    pub argument: Option<String>,
}
