//go:build !lean

package main

// isLean says which build this is: the full one (see lean.go).
const isLean = false
