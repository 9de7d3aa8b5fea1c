package memstore

import "syscall"

// adviseHugePages asks the kernel to back b with transparent huge pages
// (madvise MADV_HUGEPAGE), which it does when THP is "always" or
// "madvise" (Debian's default) and ignores when it is "never". A 4 MiB
// chunk is then two 2 MiB pages, not 1,024 pages of 4 KiB: filling one
// takes two page faults instead of 1,024, and the page tables hold two
// entries for it. Recent kernels (6.18 on these VMs) place a mapping of a
// multiple of 2 MiB on a 2 MiB boundary, so that the whole chunk can be
// huge; a kernel that does not may leave its ends in small pages.
//
// The reason is the relay's tail latency. On the 2-vCPU VMs these
// benchmarks ran on, the kernel's DAMON reclaim thread (kdamond, sampling
// page access bits every 500 ms, paddr operations, a pageout scheme)
// runs for 13-21 ms at each pass, and every slow stretch of the relay's
// latency began with one. With the chunks in huge pages the region's p99
// was lower in each of eleven rounds at 150k and 300k msg/s, the builds
// taking turns (at 150k a median of 13.5 ms against 23.0; README,
// "Measuring"). The advice is best effort: an error leaves the chunk in
// small pages.
func adviseHugePages(b []byte) {
	syscall.Madvise(b, syscall.MADV_HUGEPAGE)
}
