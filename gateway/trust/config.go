package trust

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// File is a parsed config file.
type File struct {
	// Region holds the [region] table: flag names and their values.
	Region  map[string]any `toml:"region"`
	Clients []ClientSpec   `toml:"client"`
	Roles   []RoleSpec     `toml:"role"`
}

// ClientSpec is a [[client]] entry.
type ClientSpec struct {
	Name       string   `toml:"name"`
	SecretHash string   `toml:"secret-hash"`
	Roles      []string `toml:"roles"`
}

// RoleSpec is a [[role]] entry.
type RoleSpec struct {
	Name        string        `toml:"name"`
	Ports       []string      `toml:"ports"`
	VMMon       []string      `toml:"vmmon"`
	Events      []string      `toml:"events"`
	Groups      []string      `toml:"groups"`
	SeeOthers   bool          `toml:"see-others"`
	MaxTimeout  Duration      `toml:"max-timeout"`
	MaxInFlight int           `toml:"max-in-flight"`
	Targets     []TargetGrant `toml:"target"`
}

// TargetGrant is a [[role.target]] entry.
type TargetGrant struct {
	Pattern  string   `toml:"pattern"`
	Commands []string `toml:"commands"`
}

// Duration is a time.Duration written as "5m" in the file.
type Duration struct{ time.Duration }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	if v < 0 {
		return fmt.Errorf("negative duration %q", b)
	}
	d.Duration = v
	return nil
}

// ReadFile reads and parses the config file at path. It refuses a file
// that group or other may write: whoever can write it can grant
// themselves anything.
func ReadFile(path string) (*File, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("trust: config file: %w", err)
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return nil, fmt.Errorf("trust: config file %s: %w (mode %v)", path, ErrWritableByOthers, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("trust: config file: %w", err)
	}
	f, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("trust: config file %s: %w", path, err)
	}
	return f, nil
}

// Parse parses a config file's text. Unknown keys are errors.
func Parse(b []byte) (*File, error) {
	var f File
	md, err := toml.Decode(string(b), &f)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("%w: line %d: %s", ErrSyntax, pe.Position.Line, pe.Message)
		}
		return nil, fmt.Errorf("%w: %w", ErrSyntax, err)
	}
	var unknown []string
	for _, k := range md.Undecoded() {
		if len(k) > 0 && (k[0] == "region" || k[0] == "availability") {
			continue // flag names, and the availability ledger's rules: checked by whoever applies them
		}
		unknown = append(unknown, k.String())
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return nil, fmt.Errorf("%w: %s", ErrUnknownKey, strings.Join(unknown, ", "))
	}
	return &f, nil
}
