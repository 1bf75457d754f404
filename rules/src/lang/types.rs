//! Types and runtime values.

use core::fmt;

use rampart_common::Addr16;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ty {
    Bool,
    Int,
    Ip,
    Bytes,
    Array(Box<Ty>),
    /// Name → values (a name may repeat, as HTTP headers and query args do).
    Map(Box<Ty>),
}

impl Ty {
    pub fn map_of_bytes() -> Ty {
        Ty::Map(Box::new(Ty::Bytes))
    }

    pub fn array_of_bytes() -> Ty {
        Ty::Array(Box::new(Ty::Bytes))
    }
}

impl fmt::Display for Ty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ty::Bool => f.write_str("bool"),
            Ty::Int => f.write_str("int"),
            Ty::Ip => f.write_str("ip"),
            Ty::Bytes => f.write_str("bytes"),
            Ty::Array(t) => write!(f, "array<{t}>"),
            Ty::Map(t) => write!(f, "map<{t}>"),
        }
    }
}

/// A runtime value. Absent fields are not values: the evaluator sees `None`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Value {
    Bool(bool),
    Int(i64),
    Ip(Addr16),
    Bytes(Vec<u8>),
    Array(Vec<Value>),
    /// Entries in order; a name may repeat.
    Map(Vec<(Vec<u8>, Value)>),
}
