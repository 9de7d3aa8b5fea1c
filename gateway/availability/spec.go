package availability

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/zbridge/zbridge/protocol"
)

// Spec is the [availability] table of the region's config file: the rules,
// heartbeats and probes that turn what the region sees into status
// records.
//
//	[[availability.rule]]
//	name = "sysplex-join"
//	events = "msgid=IXC418I"                  # filter terms, as UNSOLMSG's
//	text = 'SYSTEM (?P<system>\S+) IS NOW ACTIVE'
//	component = "{system}"
//	status = "UP"
//
//	[[availability.heartbeat]]
//	name = "web-syslog"
//	events = "source=syslog,origin=web*"      # every matching event is a beat
//	component = "{host}.syslog"
//	interval = "5m"
//
//	[[availability.heartbeat]]
//	name = "vmsys1-agent"
//	agent = "zvm:VMSYS1"                      # the agent's link to the region
//	component = "VMSYS1.agent"
//	interval = "1m"
//
//	[[availability.probe]]
//	name = "httpd"
//	target = "linux:has113"
//	command = "systemctl is-active httpd"
//	component = "has113.httpd.80"
//	interval = "1m"
//	timeout = "20s"
//	up-rc = 0                                 # and, if set, up-text must match the output
//	up-text = '^active$'
type Spec struct {
	Rules      []RuleSpec      `toml:"rule"`
	Heartbeats []HeartbeatSpec `toml:"heartbeat"`
	Probes     []ProbeSpec     `toml:"probe"`
	// MaxComponentsPerSender bounds the components that events from one
	// sender address (an IPv6 address by its /64) may add to the ledger
	// (default DefaultMaxComponentsPerSender; at most MaxComponents). A
	// syslog relay forwarding for many hosts is one sender: give it room.
	MaxComponentsPerSender int `toml:"max-components-per-sender"`
}

// RuleSpec maps events to a status: an event the filter (Events) and the
// regular expression (Text, on the event's text) both match says that the
// component (a template) has the status.
type RuleSpec struct {
	Name      string `toml:"name"`
	Events    string `toml:"events"`
	Text      string `toml:"text"`
	Component string `toml:"component"`
	Status    string `toml:"status"`
	// Change is the record's change identifier (a template); default: the
	// event's message ID, else its type, else the rule's name.
	Change string `toml:"change"`
}

// HeartbeatSpec is a component that is UP while it beats: each event the
// filter matches is a beat (Events), or the agent's link is (Agent: a
// connected agent with a heartbeat within the interval). A component
// without a beat for Interval is DOWN (heartbeat-lost) from the moment
// the interval ran out, UP again at the next beat.
type HeartbeatSpec struct {
	Name      string   `toml:"name"`
	Events    string   `toml:"events"`
	Agent     string   `toml:"agent"`
	Component string   `toml:"component"`
	Interval  Duration `toml:"interval"`
}

// ProbeSpec runs a command on a target every Interval: UP when it ends
// with return code UpRC (default 0) and, if UpText is set, its output
// matches it; DOWN otherwise (probe-failed, probe-timeout). A probe that
// cannot run (its target not connected) writes nothing.
type ProbeSpec struct {
	Name      string   `toml:"name"`
	Target    string   `toml:"target"`
	Command   string   `toml:"command"`
	Component string   `toml:"component"`
	Interval  Duration `toml:"interval"`
	Timeout   Duration `toml:"timeout"`
	UpRC      *int     `toml:"up-rc"`
	UpText    string   `toml:"up-text"`
}

// Duration is a time.Duration written as "5m".
type Duration struct{ time.Duration }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	d.Duration = v
	return nil
}

// ErrSpec wraps the errors of a spec that cannot be used.
var ErrSpec = errors.New("availability: config")

// ReadSpec reads the [availability] table of the config file at path; a
// file without one gives a nil Spec. Other tables are not this package's
// business; unknown keys within [availability] are errors.
func ReadSpec(path string) (*Spec, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSpec, err)
	}
	return ParseSpec(b)
}

// ParseSpec parses a config file's text as ReadSpec does.
func ParseSpec(b []byte) (*Spec, error) {
	var f struct {
		Availability *Spec `toml:"availability"`
	}
	md, err := toml.Decode(string(b), &f)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSpec, err)
	}
	var unknown []string
	for _, k := range md.Undecoded() {
		if len(k) > 0 && k[0] == "availability" {
			unknown = append(unknown, k.String())
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return nil, fmt.Errorf("%w: unknown keys %s", ErrSpec, strings.Join(unknown, ", "))
	}
	if f.Availability == nil {
		return nil, nil
	}
	if _, err := compile(f.Availability); err != nil {
		return nil, err
	}
	return f.Availability, nil
}

// compiled is a Spec ready to apply.
type compiled struct {
	rules      []*rule
	heartbeats []*heartbeat
	probes     []*probe
	perSender  int // MaxComponentsPerSender, defaulted
}

type rule struct {
	name              string
	filter            *protocol.Filter
	text              *regexp.Regexp
	component, change template
	status            protocol.Status
}

type heartbeat struct {
	name      string
	filter    *protocol.Filter
	agent     string // kind:NAME
	component template
	interval  time.Duration
}

type probe struct {
	name, target, command string
	component             string
	interval, timeout     time.Duration
	upRC                  int
	upText                *regexp.Regexp
}

// minInterval bounds how often a heartbeat is checked or a probe runs (a
// variable for the tests).
var minInterval = time.Second

func compile(s *Spec) (*compiled, error) {
	c := &compiled{perSender: DefaultMaxComponentsPerSender}
	switch n := s.MaxComponentsPerSender; {
	case n < 0 || n > MaxComponents:
		return nil, fmt.Errorf("%w: max-components-per-sender %d: want 1 to %d", ErrSpec, n, MaxComponents)
	case n > 0:
		c.perSender = n
	}
	names := map[string]bool{}
	bad := func(kind string, i int, name, format string, args ...any) error {
		return fmt.Errorf("%w: %s %d (%q): %s", ErrSpec, kind, i+1, name, fmt.Sprintf(format, args...))
	}
	unique := func(kind string, i int, name string) error {
		switch {
		case name == "":
			return bad(kind, i, name, "name is required")
		case len(name) > 128:
			return bad(kind, i, name[:32]+"...", "a name is at most 128 bytes")
		case names[name]:
			return bad(kind, i, name, "a rule, heartbeat or probe of that name is already defined")
		}
		names[name] = true
		return nil
	}
	for i, rs := range s.Rules {
		if err := unique("rule", i, rs.Name); err != nil {
			return nil, err
		}
		r := &rule{name: rs.Name, status: protocol.Status(strings.ToUpper(rs.Status))}
		if !r.status.Valid() {
			return nil, bad("rule", i, rs.Name, "status %q is not UP or DOWN", rs.Status)
		}
		var err error
		if rs.Events == "" && rs.Text == "" {
			return nil, bad("rule", i, rs.Name, "events or text is required: a rule matching every event says nothing")
		}
		if rs.Events != "" {
			if r.filter, err = protocol.ParseFilter(rs.Events); err != nil {
				return nil, bad("rule", i, rs.Name, "events: %v", err)
			}
		}
		if rs.Text != "" {
			if r.text, err = regexp.Compile(rs.Text); err != nil {
				return nil, bad("rule", i, rs.Name, "text: %v", err)
			}
		}
		if r.component, err = parseTemplate(rs.Component, r.text); err != nil || rs.Component == "" {
			return nil, bad("rule", i, rs.Name, "component: %v", orRequired(err))
		}
		if rs.Change != "" {
			if r.change, err = parseTemplate(rs.Change, r.text); err != nil {
				return nil, bad("rule", i, rs.Name, "change: %v", err)
			}
		}
		c.rules = append(c.rules, r)
	}
	for i, hs := range s.Heartbeats {
		if err := unique("heartbeat", i, hs.Name); err != nil {
			return nil, err
		}
		h := &heartbeat{name: hs.Name, interval: hs.Interval.Duration}
		var err error
		switch {
		case (hs.Events == "") == (hs.Agent == ""):
			return nil, bad("heartbeat", i, hs.Name, "one of events and agent is required")
		case h.interval < minInterval:
			return nil, bad("heartbeat", i, hs.Name, "interval %v is under %v", h.interval, minInterval)
		}
		if hs.Events != "" {
			if h.filter, err = protocol.ParseFilter(hs.Events); err != nil {
				return nil, bad("heartbeat", i, hs.Name, "events: %v", err)
			}
		} else {
			kind, name, ok := strings.Cut(hs.Agent, ":")
			if !ok || (kind != "zvm" && kind != "linux") || name == "" {
				return nil, bad("heartbeat", i, hs.Name, "agent %q is not zvm:SYSTEM or linux:NAME", hs.Agent)
			}
			h.agent = hs.Agent
		}
		if h.component, err = parseTemplate(hs.Component, nil); err != nil || hs.Component == "" {
			return nil, bad("heartbeat", i, hs.Name, "component: %v", orRequired(err))
		}
		if h.agent != "" && len(h.component.fields) > 0 {
			return nil, bad("heartbeat", i, hs.Name, "component: an agent's heartbeat has no event to fill {fields} from")
		}
		c.heartbeats = append(c.heartbeats, h)
	}
	for i, ps := range s.Probes {
		if err := unique("probe", i, ps.Name); err != nil {
			return nil, err
		}
		p := &probe{name: ps.Name, target: ps.Target, command: ps.Command, component: ps.Component,
			interval: ps.Interval.Duration, timeout: ps.Timeout.Duration}
		switch {
		case p.target == "" || p.command == "" || p.component == "":
			return nil, bad("probe", i, ps.Name, "target, command and component are required")
		case strings.ContainsAny(p.component, "{}"):
			return nil, bad("probe", i, ps.Name, "component: a probe's component is a name, not a template")
		case p.interval < minInterval:
			return nil, bad("probe", i, ps.Name, "interval %v is under %v", p.interval, minInterval)
		}
		if p.timeout <= 0 || p.timeout > p.interval {
			p.timeout = min(p.interval, 30*time.Second)
		}
		if ps.UpRC != nil {
			p.upRC = *ps.UpRC
		}
		if ps.UpText != "" {
			var err error
			if p.upText, err = regexp.Compile(ps.UpText); err != nil {
				return nil, bad("probe", i, ps.Name, "up-text: %v", err)
			}
		}
		c.probes = append(c.probes, p)
	}
	return c, nil
}

func orRequired(err error) error {
	if err == nil {
		return errors.New("is required")
	}
	return err
}

// A template is a text with {field} parts: an event's fields (system,
// host, user, type, msgid, app) or a capture of the rule's regular
// expression by name.
type template struct {
	parts  []string // literal, field, literal, field, ..., literal
	fields []string
}

// isEventField reports whether name is an event field a template may name.
func isEventField(name string) bool {
	switch name {
	case "system", "host", "user", "type", "msgid", "app":
		return true
	}
	return false
}

func parseTemplate(s string, re *regexp.Regexp) (template, error) {
	var t template
	last := 0
	for _, f := range templateFields(s) {
		name := s[f[0]+1 : f[1]-1]
		if !isEventField(name) && (re == nil || re.SubexpIndex(name) < 0) {
			return t, fmt.Errorf("{%s} is neither an event field (system, host, user, type, msgid, app) nor a named group of the text", name)
		}
		t.parts = append(t.parts, s[last:f[0]])
		t.fields = append(t.fields, name)
		last = f[1]
	}
	t.parts = append(t.parts, s[last:])
	return t, nil
}

// templateFields returns where the {field} parts of s are, braces
// included, as start and end offsets: a '{', a letter or '_', letters,
// digits and '_', then '}'. Any other brace is literal text.
func templateFields(s string) [][2]int {
	var locs [][2]int
	for i := 0; i < len(s); i++ {
		if s[i] != '{' {
			continue
		}
		j := i + 1
		for j < len(s) && (s[j] >= 'a' && s[j] <= 'z' || s[j] >= 'A' && s[j] <= 'Z' || s[j] == '_' || s[j] >= '0' && s[j] <= '9' && j > i+1) {
			j++
		}
		if j > i+1 && j < len(s) && s[j] == '}' {
			locs = append(locs, [2]int{i, j + 1})
			i = j
		}
	}
	return locs
}

// expand fills the template from the event and the captures; "" when a
// field it names is empty (the record would name no component).
func (t template) expand(e *protocol.Event, caps map[string]string) string {
	if len(t.fields) == 0 {
		return t.parts[0]
	}
	var b strings.Builder
	for i, f := range t.fields {
		b.WriteString(t.parts[i])
		v, ok := caps[f]
		if !ok {
			v = eventField(e, f)
		}
		if v == "" {
			return ""
		}
		b.WriteString(v)
	}
	b.WriteString(t.parts[len(t.parts)-1])
	return b.String()
}

func eventField(e *protocol.Event, name string) string {
	switch name {
	case "system":
		return e.Origin.System
	case "host":
		if e.Origin.Host != "" {
			return e.Origin.Host
		}
		return e.Origin.System
	case "user":
		return e.User
	case "type":
		return e.Type
	case "msgid":
		return e.MsgID
	case "app":
		return e.App
	}
	return ""
}

func (t template) isZero() bool { return len(t.parts) == 0 }
