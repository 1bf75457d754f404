//! SecLang transformations (`t:lowercase`, `t:urlDecodeUni` …) as pure functions on bytes.
//! (Owned by the transformations work; this is the agreed signature.)

use std::borrow::Cow;

/// One transformation. `t:none` is not one: the compiler handles it by clearing the list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transform {
    Lowercase,
}

impl Transform {
    /// The transformation called `name` (case-insensitive, without `t:`); None if unknown.
    pub fn from_name(name: &str) -> Option<Transform> {
        let _ = name;
        unimplemented!("seclang transformations not written yet")
    }

    /// Applies it; borrows the input back when nothing changes.
    pub fn apply<'a>(self, input: Cow<'a, [u8]>) -> Cow<'a, [u8]> {
        let _ = input;
        unimplemented!("seclang transformations not written yet")
    }
}
