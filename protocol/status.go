package protocol

import (
	"errors"
	"fmt"
	"time"
)

// Status is a component's availability: UP or DOWN.
type Status string

// The statuses of a StatusRecord.
const (
	StatusUp   Status = "UP"
	StatusDown Status = "DOWN"
)

// Valid reports whether s is UP or DOWN.
func (s Status) Valid() bool { return s == StatusUp || s == StatusDown }

// A StatusRecord is one change of a component's availability, in the
// common record layout of IBM's availability measurement paper ("Finding
// and Collecting Availability Measurement Data"): the component, its new
// status, when it changed, and what says so. The region's availability
// ledger (gateway/availability) writes one for each change it sees; the
// store keeps them apart from the event stream, beyond its retention, in
// the order they were appended; reports are computed from them.
type StatusRecord struct {
	// Seq numbers the records in the order the store appended them,
	// from 1; the store assigns it.
	Seq uint64 `json:"seq"`
	// Component names what changed: a system (SYSA), a guest
	// (VMSYS1/LINUX01), a service (has113.httpd.80).
	Component string `json:"component"`
	Status    Status `json:"status"`
	// Time is when the status changed, in UTC: the time of the event that
	// said so, or when a heartbeat was found missing or a probe answered.
	Time time.Time `json:"time"`
	// Change identifies the status change: the message ID or event type
	// that said so (IXC418I, LOGOFF), heartbeat-lost, heartbeat, probe-ok,
	// probe-failed, probe-timeout.
	Change string `json:"change"`
	// Rule is the ledger rule, heartbeat or probe that made the record.
	Rule string `json:"rule"`
	// Event is the ID of the event that said so, when one did.
	Event ID `json:"event,omitzero"`
	// Detail is free text for a person: the event's text, the probe's
	// output or why it failed (cut to 256 bytes).
	Detail string `json:"detail,omitempty"`
}

// MaxStatusDetail bounds StatusRecord.Detail.
const MaxStatusDetail = 256

// Validate checks a record before it is stored.
func (r *StatusRecord) Validate() error {
	switch {
	case r.Component == "" || len(r.Component) > 256:
		return errors.New("protocol: status record: component must be 1 to 256 bytes")
	case !r.Status.Valid():
		return fmt.Errorf("protocol: status record: status %q is not UP or DOWN", r.Status)
	case r.Time.IsZero():
		return errors.New("protocol: status record: time is required")
	case r.Time.Year() < 1900 || r.Time.Year() > 9999:
		return fmt.Errorf("protocol: status record: time %s is not within the years 1900 to 9999", r.Time.UTC().Format(time.RFC3339))
	case len(r.Change) > 64 || len(r.Rule) > 128 || len(r.Detail) > MaxStatusDetail:
		return errors.New("protocol: status record: change (64), rule (128) or detail (256 bytes) too long")
	}
	return nil
}
