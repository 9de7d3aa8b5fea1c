package memstore

import "syscall"

// adviseHugePages asks the kernel to back b with transparent huge pages
// (madvise MADV_HUGEPAGE), which it does when THP is "always" or
// "madvise" (Debian's default) and ignores when it is "never". A 4 MiB
// chunk is then two 2 MiB pages instead of 1,024 of 4 KiB: two page faults
// to fill and two page-table entries. The advice is best effort: an error
// leaves the chunk in small pages.
//
// Why, measured on the 2-vCPU VMs these benchmarks ran on:
//   - A page fault costs ~12 µs there. Mapping, filling and unmapping a
//     chunk takes 0.23 ms in huge pages against 12 ms in small ones
//     (BenchmarkChunkFill), paid by the append that takes a new chunk,
//     under the store's lock, while retention is still growing.
//   - The kernel's DAMON reclaim thread (kdamond: paddr operations,
//     access bits sampled every 500 ms, a pageout scheme) runs for up
//     to 21 ms at each pass, and each long slow stretch of the relay's
//     latency began with one. With the chunks in huge pages the region's p99 was
//     lower in each of eleven rounds at 150k and 300k msg/s, the builds
//     taking turns (at 150k a median of 13.5 ms against 23.0; README,
//     "Measuring").
//
// When no huge page is free, the kernel's THP "defrag" setting decides
// what the fault does: "madvise" (Debian's default), "defer+madvise" and
// "always" compact memory then and there for an advised mapping, which can
// take milliseconds on a fragmented host; "defer" leaves that to
// kcompactd, and the chunk starts in small pages. Recent kernels (6.18 on
// these VMs) place a mapping of a multiple of 2 MiB on a 2 MiB boundary,
// so that the whole chunk can be huge; a kernel that does not may leave
// its ends in small pages.
func adviseHugePages(b []byte) {
	syscall.Madvise(b, syscall.MADV_HUGEPAGE)
}
