//go:build unix && !linux

package memstore

// adviseHugePages does nothing outside Linux (see hugepage_linux.go).
func adviseHugePages([]byte) {}
