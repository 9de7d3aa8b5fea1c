// Package policyfile reads the line-oriented policy files of zbridge's
// agents: the Linux agent's (package linuxagent) and the z/VM agent's CP
// command policy (package vmagent). It does the reading they share and
// leaves them what differs.
//
// # Format
//
// A policy file is read line by line; a line ends at \n, and a \r before
// it is dropped. Blank lines and lines whose first non-blank character is
// # are ignored (a # later in a line is part of it). Each other line is a
// directive and its argument, separated by the first run of blanks
// (spaces and tabs); the argument is the rest of the line, surrounding
// blanks removed:
//
//	allow PATTERN       a rule: the commands PATTERN matches are allowed
//	deny PATTERN        a rule: the commands PATTERN matches are refused
//	default allow|deny  for commands no rule matches; default: deny
//
// Rules keep their order and their line numbers, for the agent to try
// them in file order and to name the line that decided. Every directive
// but allow and deny may be given once, and needs a value. A line may be
// up to MaxLine bytes long.
//
// # What an agent adds
//
// A Syntax names the directives an agent adds (the Linux agent's shell,
// timeout, max-timeout and output-cap; the z/VM agent's special) with the
// function that reads each one's value, and the function that checks a
// rule's pattern: each agent compiles patterns its own way (package
// commands/cmdpattern, word patterns for Linux, CP patterns for z/VM).
// Syntax.StrictText refuses lines that are not valid UTF-8 or that hold a
// NUL byte.
//
// # Errors
//
// Parse stops at the first line that cannot be used and returns an *Error
// giving the line and a sentence, which the agents copy into their own
// PolicyError types: "given twice (first on line N)", "needs a value",
// "needs a pattern", "unknown directive", "want allow or deny", and the
// sentences of the Syntax's own functions. A read error other than a line
// longer than MaxLine is returned as the reader gave it.
//
// Parse does no file I/O of its own and keeps no state between calls:
// opening the file, and checking who may change it, stay with the agent.
package policyfile
