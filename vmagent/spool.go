package vmagent

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/zbridge/zbridge/protocol"
)

// Spool keeps the agent's events, in order and numbered, until the region
// has acknowledged them: on disk (dir/spool.jsonl, one {"seq":N,"event":…}
// a line, and dir/acked, the last acknowledged sequence), so that events
// survive the region being away and the agent restarting. It is bounded:
// past MaxBytes of unacknowledged events, new events are dropped and
// counted, and the next event spooled after room is made is preceded by
// an agent event saying how many were lost — order is kept, and a loss is
// never silent.
type Spool struct {
	dir      string
	maxBytes int64
	id       string // random, made when the spool is created

	mu       sync.Mutex // guards the following fields
	f        *os.File
	w        *bufio.Writer
	entries  []spooled // unacknowledged, in sequence order
	bytes    int64     // of entries
	next     uint64    // sequence of the next event
	acked    uint64
	dropped  uint64 // events dropped since the last loss notice
	fileSize int64
	notify   chan struct{} // closed and replaced when an event is spooled
}

type spooled struct {
	Seq   uint64          `json:"seq"`
	Event *protocol.Event `json:"event"`
	size  int64
}

// ErrSpoolClosed is returned after Close.
var ErrSpoolClosed = errors.New("vmagent: spool closed")

// OpenSpool opens (or creates) the spool in dir, keeping at most maxBytes
// of unacknowledged events (default 64 MiB).
func OpenSpool(dir string, maxBytes int64) (*Spool, error) {
	if maxBytes <= 0 {
		maxBytes = 64 << 20
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("vmagent: spool: %w", err)
	}
	s := &Spool{dir: dir, maxBytes: maxBytes, next: 1, notify: make(chan struct{})}
	// The spool's identity: the region keeps its "already stored" mark per
	// spool, so a new spool (numbering from 1 again) is not taken for
	// replays of an old one.
	idPath := filepath.Join(dir, "id")
	if b, err := os.ReadFile(idPath); err == nil && len(strings.TrimSpace(string(b))) > 0 {
		s.id = strings.TrimSpace(string(b))
	} else {
		var r [8]byte
		rand.Read(r[:])
		s.id = hex.EncodeToString(r[:])
		if err := os.WriteFile(idPath, []byte(s.id+"\n"), 0o600); err != nil {
			return nil, fmt.Errorf("vmagent: spool: %w", err)
		}
	}
	if b, err := os.ReadFile(filepath.Join(dir, "acked")); err == nil {
		s.acked, _ = strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	}
	path := filepath.Join(dir, "spool.jsonl")
	if f, err := os.Open(path); err == nil {
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		for line := 1; sc.Scan(); line++ {
			var e spooled
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil || e.Event == nil {
				break // a torn last line from a crash: what follows is not trusted
			}
			if e.Seq >= s.next {
				s.next = e.Seq + 1
			}
			if e.Seq > s.acked {
				e.size = int64(len(sc.Bytes()))
				s.entries = append(s.entries, e)
				s.bytes += e.size
			}
		}
		f.Close()
	}
	if s.acked >= s.next {
		s.next = s.acked + 1
	}
	if err := s.rewriteLocked(); err != nil {
		return nil, err
	}
	return s, nil
}

// rewriteLocked writes the file anew with only the unacknowledged events.
func (s *Spool) rewriteLocked() error {
	path := filepath.Join(s.dir, "spool.jsonl")
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("vmagent: spool: %w", err)
	}
	w := bufio.NewWriter(f)
	var size int64
	for _, e := range s.entries {
		b, _ := json.Marshal(e)
		w.Write(append(b, '\n'))
		size += int64(len(b) + 1)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("vmagent: spool: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		f.Close()
		return fmt.Errorf("vmagent: spool: %w", err)
	}
	if s.f != nil {
		s.f.Close()
	}
	s.f, s.w, s.fileSize = f, bufio.NewWriter(f), size
	return nil
}

// Add spools events. An event that does not fit is dropped and counted.
func (s *Spool) Add(evs ...*protocol.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return ErrSpoolClosed
	}
	for _, ev := range evs {
		if s.dropped > 0 && s.bytes < s.maxBytes/2 {
			lost := &protocol.Event{Source: protocol.SourceAgent, Origin: ev.Origin, MsgID: "ZBRVMA001W",
				Severity: protocol.SevWarning, Facility: protocol.FacDaemon, Parsed: true, Time: ev.Time,
				Text: fmt.Sprintf("%d console events were lost: the agent's spool was full while the region was unreachable", s.dropped)}
			s.dropped = 0
			if err := s.appendLocked(lost); err != nil {
				return err
			}
		}
		b, _ := json.Marshal(ev)
		if s.bytes+int64(len(b)) > s.maxBytes {
			s.dropped++
			continue
		}
		if err := s.appendLocked(ev); err != nil {
			return err
		}
	}
	if err := s.w.Flush(); err != nil {
		return fmt.Errorf("vmagent: spool: %w", err)
	}
	close(s.notify)
	s.notify = make(chan struct{})
	return nil
}

func (s *Spool) appendLocked(ev *protocol.Event) error {
	e := spooled{Seq: s.next, Event: ev}
	b, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("vmagent: spool: %w", err)
	}
	s.w.Write(append(b, '\n'))
	e.size = int64(len(b) + 1)
	s.next++
	s.entries = append(s.entries, e)
	s.bytes += e.size
	s.fileSize += e.size
	return nil
}

// ID identifies the spool (and so the numbering of its events).
func (s *Spool) ID() string { return s.id }

// Pending returns up to max unacknowledged events after sequence after,
// the first one's sequence, and a channel closed when more are spooled.
func (s *Spool) Pending(after uint64, max int) ([]*protocol.Event, uint64, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := 0
	for i < len(s.entries) && s.entries[i].Seq <= after {
		i++
	}
	var out []*protocol.Event
	first := uint64(0)
	for ; i < len(s.entries) && len(out) < max; i++ {
		if first == 0 {
			first = s.entries[i].Seq
		}
		out = append(out, s.entries[i].Event)
	}
	return out, first, s.notify
}

// Ack records that the region has stored every event up to seq.
func (s *Spool) Ack(seq uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if seq <= s.acked || s.f == nil {
		return nil
	}
	if seq >= s.next {
		return fmt.Errorf("vmagent: spool: the region acknowledged sequence %d, but only %d events were ever spooled", seq, s.next-1)
	}
	s.acked = seq
	i := 0
	for i < len(s.entries) && s.entries[i].Seq <= seq {
		s.bytes -= s.entries[i].size
		i++
	}
	s.entries = append(s.entries[:0], s.entries[i:]...)
	tmp := filepath.Join(s.dir, "acked.tmp")
	if err := os.WriteFile(tmp, []byte(strconv.FormatUint(seq, 10)+"\n"), 0o600); err != nil {
		return fmt.Errorf("vmagent: spool: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(s.dir, "acked")); err != nil {
		return fmt.Errorf("vmagent: spool: %w", err)
	}
	if s.fileSize > 4<<20 && s.fileSize > 4*s.bytes { // mostly acknowledged: compact
		return s.rewriteLocked()
	}
	return nil
}

// Stats reports the spool's state.
func (s *Spool) Stats() (unacked int, bytes int64, acked uint64, dropped uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.entries), s.bytes, s.acked, s.dropped
}

// Close flushes and closes the spool.
func (s *Spool) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return nil
	}
	err := s.w.Flush()
	s.f.Close()
	s.f = nil
	return err
}
