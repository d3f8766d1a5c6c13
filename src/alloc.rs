//! The process's allocator: the system's, except for blocks of 1 GiB or more, which get their own
//! `MAP_NORESERVE` mapping.
//!
//! Why: when a request ends with its body unread, tiny_http (under rouille) drains the rest of the
//! body through a buffer as large as the client's declared `Content-Length`, after our handler has
//! answered. A request that declares a terabyte would make that allocation fail and abort the whole
//! process. A `MAP_NORESERVE` mapping reserves address space only, so the drain gets its buffer,
//! touches just the pages a read fills, and gives the mapping back when it ends. flowsnap itself
//! never needs a block this large (bodies are limited to `max_body_bytes`).

use std::alloc::{GlobalAlloc, Layout, System};

/// Blocks at least this large are mapped on their own.
const HUGE: usize = 1 << 30;
const PAGE: usize = 4096;

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
            unsafe { map(layout.size()) }
        } else {
            unsafe { System.alloc(layout) }
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.size() >= HUGE && layout.align() <= PAGE {
            unsafe { map(layout.size()) }
        } else {
            unsafe { System.alloc_zeroed(layout) }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if layout.size() >= HUGE && layout.align() <= PAGE {
            unsafe { libc::munmap(ptr.cast(), layout.size()) };
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
                std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
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
