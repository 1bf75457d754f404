//! The one bounds-checked cursor for packet access. Every read goes through [`Cursor::next`], which
//! checks `pos + size_of::<T>() <= data_end` before handing out a pointer, so the verifier sees a
//! proven bound for every access.

use aya_ebpf::programs::XdpContext;

pub struct Cursor {
    start: usize,
    pos: usize,
    end: usize,
}

impl Cursor {
    #[inline(always)]
    pub fn new(ctx: &XdpContext) -> Self {
        Cursor {
            start: ctx.data(),
            pos: ctx.data(),
            end: ctx.data_end(),
        }
    }

    /// Bytes from the start of the frame to the cursor.
    #[inline(always)]
    pub fn offset(&self) -> u16 {
        (self.pos - self.start) as u16
    }

    /// Returns a pointer to a `T` at the cursor and moves past it, or `None` if the frame is too
    /// short. `T` must be a plain byte-layout header (`#[repr(C)]`, alignment 1).
    #[inline(always)]
    pub fn next<T>(&mut self) -> Option<*const T> {
        let p = self.peek::<T>()?;
        self.pos += core::mem::size_of::<T>();
        Some(p)
    }

    /// Like [`Cursor::next`] without moving.
    #[inline(always)]
    pub fn peek<T>(&self) -> Option<*const T> {
        if self.pos + core::mem::size_of::<T>() > self.end {
            return None;
        }
        Some(self.pos as *const T)
    }

    /// Moves `n` bytes forward; `n` must be at most `max` (a constant the verifier can use) and the
    /// bytes must be inside the frame.
    #[inline(always)]
    pub fn skip(&mut self, n: usize, max: usize) -> Option<()> {
        if n > max || self.pos + n > self.end {
            return None;
        }
        self.pos += n;
        Some(())
    }
}
