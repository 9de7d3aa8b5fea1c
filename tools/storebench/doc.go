// Package storebench measures candidate on-disk engines (bbolt, pebble, a
// plain segmented append-only file) for the region's event store. It has
// only benchmarks and their tests; see README.md.
package storebench
