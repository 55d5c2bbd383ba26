//! A global allocator that survives impossible allocation requests from hostile input.
//!
//! `kafka-protocol` 0.18 decodes an array by calling `Vec::with_capacity(count)` with the
//! count read off the wire, before checking it against the bytes present. A 14-byte
//! request can ask for hundreds of gigabytes; the system allocator refuses and Rust aborts
//! the process. [`ReserveLargeAllocator`] serves every request of at least
//! [`LARGE_ALLOCATION_BYTES`] with an anonymous `MAP_NORESERVE` mapping instead: the kernel
//! hands out address space without committing memory, the decoder fails at the end of the
//! frame having touched only what it really decoded, and the mapping is returned. Memory
//! that *is* touched is committed as usual.
//!
//! Binaries that run the broker install it with
//! `#[global_allocator] static ALLOC: sluice_core::alloc::ReserveLargeAllocator = sluice_core::alloc::ReserveLargeAllocator;`
//! (the `sluice` binary does). Remove it once a `kafka-protocol` release bounds array
//! capacities (upstream PRs #152, #161, #200).

#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};

/// Requests at least this large are served by `mmap(MAP_NORESERVE)`.
pub const LARGE_ALLOCATION_BYTES: usize = 1 << 30;

/// Page size assumed for alignment: mappings are page-aligned, so larger alignments go to
/// the system allocator.
const PAGE_BYTES: usize = 4096;

/// See the module documentation.
#[derive(Debug, Default, Clone, Copy)]
pub struct ReserveLargeAllocator;

fn is_large(layout: Layout) -> bool {
    layout.size() >= LARGE_ALLOCATION_BYTES && layout.align() <= PAGE_BYTES
}

// SAFETY (for the impl as a whole): small requests are forwarded unchanged to `System`;
// large ones are served by mmap/munmap of exactly `layout.size()` bytes, page-aligned
// (alignment <= PAGE_BYTES is checked), and `dealloc`/`realloc` route a pointer back to
// the allocator that produced it by the same size test on its layout, which Rust
// guarantees is the layout it was allocated with.
unsafe impl GlobalAlloc for ReserveLargeAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if !is_large(layout) {
            // SAFETY: forwarding the caller's contract to the system allocator.
            return unsafe { System.alloc(layout) };
        }
        // SAFETY: an anonymous private mapping has no preconditions; failure is checked.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                layout.size(),
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            std::ptr::null_mut()
        } else {
            ptr.cast()
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if !is_large(layout) {
            // SAFETY: forwarding the caller's contract to the system allocator.
            return unsafe { System.alloc_zeroed(layout) };
        }
        // SAFETY: anonymous mappings are zero-filled.
        unsafe { self.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if !is_large(layout) {
            // SAFETY: `ptr` came from `System.alloc` with this layout (same size test).
            unsafe { System.dealloc(ptr, layout) };
            return;
        }
        // SAFETY: `ptr` is a mapping of exactly `layout.size()` bytes made by `alloc`.
        unsafe {
            libc::munmap(ptr.cast(), layout.size());
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller guarantees `new_size` with `layout.align()` forms a valid layout.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        if !is_large(layout) && !is_large(new_layout) {
            // SAFETY: both sides belong to the system allocator.
            return unsafe { System.realloc(ptr, layout, new_size) };
        }
        // Crossing between the two allocators (or resizing a mapping): allocate, copy,
        // free. Rare: only buffers of a gigabyte or more take this path.
        // SAFETY: `new_layout` is valid (above); the copy stays within both blocks.
        unsafe {
            let new_ptr = self.alloc(new_layout);
            if !new_ptr.is_null() {
                std::ptr::copy_nonoverlapping(ptr, new_ptr, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
            new_ptr
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Large blocks are real memory: writable, zeroed when asked, resizable both ways.
    #[test]
    fn large_blocks_work_and_round_trip() {
        let a = ReserveLargeAllocator;
        let layout = Layout::from_size_align(LARGE_ALLOCATION_BYTES, 8).unwrap();
        unsafe {
            let p = a.alloc_zeroed(layout);
            assert!(!p.is_null());
            assert_eq!(*p.add(12345), 0);
            *p.add(LARGE_ALLOCATION_BYTES - 1) = 7;
            let q = a.realloc(p, layout, 4096);
            assert!(!q.is_null());
            *q = 1;
            let small = Layout::from_size_align(4096, 8).unwrap();
            let r = a.realloc(q, small, LARGE_ALLOCATION_BYTES);
            assert_eq!(*r, 1);
            a.dealloc(r, layout);
        }
    }

    // An allocation far beyond physical memory (what a hostile array count asks for)
    // succeeds as address space instead of aborting.
    #[test]
    fn impossible_capacity_is_only_address_space() {
        let a = ReserveLargeAllocator;
        let layout = Layout::from_size_align(400 << 30, 8).unwrap();
        unsafe {
            let p = a.alloc(layout);
            assert!(!p.is_null());
            *p = 1;
            a.dealloc(p, layout);
        }
    }
}
