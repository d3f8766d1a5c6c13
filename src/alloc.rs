//! The process's allocator: the system's, except for blocks of 1 GiB or more, which get their own
//! `MAP_NORESERVE` mapping.
//!
//! Why: when a request ends with its body unread, tiny_http (under rouille) drains the rest of the
//! body through a buffer as large as the client's declared `Content-Length`, after our handler has
//! answered. A request that declares a terabyte would make that allocation fail and abort the whole
//! process. A `MAP_NORESERVE` mapping reserves address space only, so the drain gets its buffer,
//! touches just the pages a read fills, and gives the mapping back when it ends. flowsnap itself
//! never needs a block this large (bodies are limited to `max_body_bytes`).
//!
//! A declared length beyond the address space (2^63 - 1 bytes is a valid Rust allocation, but no
//! mapping can be that large) gets a stand-in mapping of `STAND_IN` bytes, remembered in a fixed
//! table so that it is unmapped with its real size. The drain only hands the buffer to the
//! kernel's `recv`, which writes at most what the socket has queued (a few MB), so a stand-in that
//! large is never written past; without it the process aborted on such a header.

use std::alloc::{GlobalAlloc, Layout, System};

/// Blocks at least this large are mapped on their own.
const HUGE: usize = 1 << 30;
const PAGE: usize = 4096;
/// The mapping that stands in for a block larger than any mapping can be.
const STAND_IN: usize = 256 << 20;
/// Blocks beyond this cannot be mapped at all (x86-64 and AArch64 give user space 2^47 bytes):
/// only they get a stand-in. A smaller block whose mapping fails (a memory limit) fails.
const ADDRESS_SPACE: usize = 1 << 47;
/// Stand-ins alive at once (each a connection draining an absurd body); beyond it, null.
const STAND_IN_SLOTS: usize = 4096;

/// The addresses of the live stand-in mappings (0: a free slot).
static STAND_INS: [std::sync::atomic::AtomicUsize; STAND_IN_SLOTS] =
    [const { std::sync::atomic::AtomicUsize::new(0) }; STAND_IN_SLOTS];

/// A block of `size` bytes (at least HUGE): its own mapping, or a stand-in when the address space
/// cannot hold it.
unsafe fn map_huge(size: usize) -> *mut u8 {
    let p = unsafe { map(size) };
    if !p.is_null() || size <= ADDRESS_SPACE {
        return p;
    }
    let p = unsafe { map(STAND_IN) };
    if p.is_null() {
        return p;
    }
    use std::sync::atomic::Ordering;
    for slot in &STAND_INS {
        if slot
            .compare_exchange(0, p as usize, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            return p;
        }
    }
    // SAFETY: `p` is the STAND_IN mapping made just above.
    unsafe { libc::munmap(p.cast(), STAND_IN) };
    std::ptr::null_mut()
}

/// The bytes really mapped at `ptr` for a block of `size`: STAND_IN for a stand-in, whose slot
/// is freed when `release` is set.
fn mapped_size(ptr: *mut u8, size: usize, release: bool) -> usize {
    use std::sync::atomic::Ordering;
    if size <= ADDRESS_SPACE {
        return size;
    }
    for slot in &STAND_INS {
        if slot.load(Ordering::Acquire) == ptr as usize {
            if release {
                slot.store(0, Ordering::Release);
            }
            return STAND_IN;
        }
    }
    size
}

pub struct Allocator;

unsafe fn map(size: usize) -> *mut u8 {
    // SAFETY: an anonymous private mapping; the kernel picks the address.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            size,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        std::ptr::null_mut()
    } else {
        p.cast()
    }
}

// SAFETY: blocks of HUGE bytes or more always come from `map` (page-aligned, zero-filled) and go
// back through `munmap`; every other block is the system allocator's, so each block is freed by
// the allocator that made it.
unsafe impl GlobalAlloc for Allocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() >= HUGE && layout.align() <= PAGE {
            unsafe { map_huge(layout.size()) }
        } else {
            unsafe { System.alloc(layout) }
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.size() >= HUGE && layout.align() <= PAGE {
            unsafe { map_huge(layout.size()) }
        } else {
            unsafe { System.alloc_zeroed(layout) }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if layout.size() >= HUGE && layout.align() <= PAGE {
            let size = mapped_size(ptr, layout.size(), true);
            unsafe { libc::munmap(ptr.cast(), size) };
        } else {
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let huge = |size: usize| size >= HUGE && layout.align() <= PAGE;
        if !huge(layout.size()) && !huge(new_size) {
            return unsafe { System.realloc(ptr, layout, new_size) };
        }
        // One side is a mapping: move the bytes by hand.
        // SAFETY: the caller guarantees `layout` describes `ptr` and that the new layout is valid.
        unsafe {
            let new_layout = Layout::from_size_align_unchecked(new_size, layout.align());
            let new = self.alloc(new_layout);
            if !new.is_null() {
                // A stand-in holds only the bytes it maps.
                let old = if huge(layout.size()) {
                    mapped_size(ptr, layout.size(), false)
                } else {
                    layout.size()
                };
                std::ptr::copy_nonoverlapping(ptr, new, old.min(new_size));
                self.dealloc(ptr, layout);
            }
            new
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_terabyte_of_address_space_is_not_an_abort() {
        // What tiny_http's drain asks for with a declared Content-Length of 1 TiB.
        let layout = Layout::from_size_align(1 << 40, 1).unwrap();
        unsafe {
            let p = Allocator.alloc_zeroed(layout);
            assert!(!p.is_null());
            *p = 1;
            assert_eq!(*p.add(12345), 0);
            Allocator.dealloc(p, layout);
        }
    }

    #[test]
    fn a_block_larger_than_the_address_space_gets_a_stand_in() {
        // What the drain asks for with a declared Content-Length of 2^63 - 1.
        let layout = Layout::from_size_align(isize::MAX as usize, 1).unwrap();
        unsafe {
            let p = Allocator.alloc_zeroed(layout);
            assert!(!p.is_null());
            *p.add(STAND_IN - 1) = 1;
            assert_eq!(mapped_size(p, layout.size(), false), STAND_IN);
            Allocator.dealloc(p, layout);
            // Its slot is free again.
            assert_eq!(mapped_size(p, layout.size(), false), layout.size());
        }
    }

    #[test]
    fn blocks_move_between_the_two_kinds() {
        unsafe {
            let small = Layout::from_size_align(16, 8).unwrap();
            let p = Allocator.alloc(small);
            *p = 42;
            let big = Allocator.realloc(p, small, HUGE + 1);
            assert_eq!(*big, 42);
            let back = Allocator.realloc(big, Layout::from_size_align(HUGE + 1, 8).unwrap(), 8);
            assert_eq!(*back, 42);
            Allocator.dealloc(back, Layout::from_size_align(8, 8).unwrap());
        }
    }
}
