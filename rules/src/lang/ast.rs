//! The expression tree. Every node keeps its span for error messages.

use super::span::Span;

#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ExprKind {
    Bool(bool),
    Int(i64),
    Bytes(Vec<u8>),
    /// An address or CIDR literal, as written.
    Addr(String),
    Field(String),
    Call {
        name: String,
        args: Vec<Expr>,
    },
    Index {
        base: Box<Expr>,
        index: Index,
    },
    /// `base[start:end]`, bytes `start..end`.
    Slice {
        base: Box<Expr>,
        start: i64,
        end: i64,
    },
    Not(Box<Expr>),
    Logic {
        op: Logic,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
    },
    Compare {
        op: CmpOp,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
    },
    In {
        lhs: Box<Expr>,
        set: SetExpr,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub enum Index {
    /// `[*]`: every element (of an array) or value (of a map).
    All,
    Int(i64),
    Key(Vec<u8>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Logic {
    And,
    Or,
    Xor,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Contains,
    Matches,
    Wildcard,
    StrictWildcard,
}

#[derive(Clone, Debug, PartialEq)]
pub enum SetExpr {
    Items(Vec<SetItem>),
    /// `$name`, with the span of the reference.
    List(String, Span),
}

#[derive(Clone, Debug, PartialEq)]
pub enum SetItem {
    /// A literal (int, string, address or CIDR).
    Value(Expr),
    /// `lo..hi`, inclusive.
    Range(i64, i64, Span),
}
