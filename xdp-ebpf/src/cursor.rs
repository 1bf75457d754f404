//! The one bounds-checked cursor for packet access. Every read goes through [`Cursor::next`], which
//! checks `pos + size_of::<T>() <= data_end` before handing out a pointer, so the verifier sees a
//! proven bound for every access. A second, semantic bound (`limit`) is the end of the IP datagram
//! (IPv4 total length, IPv6 payload length): headers are never read out of Ethernet padding or a
//! trailer, as the kernel's own stack trims to that length before parsing.

use aya_ebpf::programs::XdpContext;

pub struct Cursor {
    start: usize,
    pos: usize,
    end: usize,
    /// Offset from `start` past which nothing may be read (the datagram's end).
    limit: usize,
}

impl Cursor {
    #[inline(always)]
    pub fn new(ctx: &XdpContext) -> Self {
        Cursor {
            start: ctx.data(),
            pos: ctx.data(),
            end: ctx.data_end(),
            limit: usize::MAX,
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
        let next = self.pos + core::mem::size_of::<T>();
        if next > self.end || next - self.start > self.limit {
            return None;
        }
        Some(self.pos as *const T)
    }

    /// Lowers the semantic bound to `offset` bytes from the start of the frame.
    #[inline(always)]
    pub fn limit_to(&mut self, offset: usize) {
        if offset < self.limit {
            self.limit = offset;
        }
    }

    /// Moves `n` bytes forward; `n` must be at most `max` (a constant the verifier can use) and the
    /// bytes must be inside the frame.
    #[inline(always)]
    pub fn skip(&mut self, n: usize, max: usize) -> Option<()> {
        if n > max || self.pos + n > self.end || self.pos + n - self.start > self.limit {
            return None;
        }
        self.pos += n;
        Some(())
    }
}

/// Copies a 16-byte address out of the packet as eight 2-byte loads. Header offsets in a frame are
/// always even (14-byte Ethernet, 4-byte tags, 4/8-byte IP header units), so the loads are aligned;
/// a plain array copy would be a byte-at-a-time `memcpy` loop (LLVM 22, BPF target).
#[inline(always)]
pub fn copy_addr16(dst: &mut [u8; 16], src: *const [u8; 16]) {
    let s = src as *const u16;
    let d = dst.as_mut_ptr() as *mut u16;
    for i in 0..8 {
        // SAFETY: the caller's cursor bound covers all 16 source bytes; `dst` is 16 bytes and at
        // least 2-aligned (a field of a 4-aligned struct at an even offset).
        unsafe { core::ptr::write_volatile(d.add(i), core::ptr::read_volatile(s.add(i))) };
    }
}

/// Copies a 4-byte IPv4 address into IPv4-mapped form.
#[inline(always)]
pub fn copy_addr4_mapped(dst: &mut [u8; 16], src: *const [u8; 4]) {
    let s = src as *const u16;
    let d = dst.as_mut_ptr() as *mut u16;
    // SAFETY: as in `copy_addr16`; the source is 4 bytes inside the bounds-checked header.
    unsafe {
        for i in 0..5 {
            core::ptr::write_volatile(d.add(i), 0);
        }
        core::ptr::write_volatile(d.add(5), 0xffff);
        core::ptr::write_volatile(d.add(6), core::ptr::read_volatile(s));
        core::ptr::write_volatile(d.add(7), core::ptr::read_volatile(s.add(1)));
    }
}

/// Fills `words` with `value` using word stores (a plain assignment becomes a byte-at-a-time
/// `memset` loop on the BPF target).
#[inline(always)]
pub fn fill_u64(words: &mut [u64], value: u64) {
    for w in words.iter_mut() {
        // SAFETY: `w` is a valid, aligned, exclusive reference.
        unsafe { core::ptr::write_volatile(w, value) };
    }
}
