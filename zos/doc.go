// Package zos is what the region speaks to the mainframe side. It reads
// the mainframe's time stamps — STCK and STCKE TOD clock values (with the
// leap-second offset CVTLSO), Windows FILETIME, Unix times and z/OS Julian
// dates — into time.Time (tod.go; ParseTimeValue normalises a configured
// event field by its TimeKind), and the z/OS hardcopy log (hardcopy.go):
// ParseHardcopy parses a SYSLOG or OPERLOG hardcopy line (either date
// form), and HardcopyJoiner and HardcopyReader join multi-line messages
// into records with their message ID, for the syslog feed and for
// `zbridge zoslog`.
//
// And it holds the region's messages: every message the region itself
// issues has a z/OS-style message ID and is listed in the catalogue here,
// with its text and inserts, an explanation, the system action and the
// operator response, as IBM's message manuals list theirs. MESSAGES.md is the catalogue written
// out for operators and automation writers (TestCatalogueDoc keeps it
// current: go test ./zos -update rewrites it), and TestIssuedIDsCatalogued
// fails if code anywhere in the module issues an ID the catalogue lacks.
//
// # Message IDs
//
// An ID is "ZBR", three digits and a type letter, as z/OS message
// conventions go:
//
//   - A, action: the operator must act now;
//   - E, eventual action: the operator must act, when convenient;
//   - I, information: no action;
//   - W, wait: processing waits until the operator acts.
//
// The digits group messages by component: 0xx the region and the answers
// to its operator commands, 1xx syslog intake and flood control, 2xx
// commands and agents, 3xx the console, 4xx availability. A multi-line message is one
// message: its first line has the ID, the lines after it belong to it.
package zos
