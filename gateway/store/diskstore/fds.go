package diskstore

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"

	"github.com/sirupsen/logrus"
)

// spareFDs is how many descriptors a journal holds in reserve: the segment
// it starts while the one written full is still open (until the next
// sync closes it), and one more should another start before that.
const spareFDs = 2

// fdReserve is a journal's reserve of descriptors, held open on /dev/null,
// for the segments it starts while it runs (the directory it syncs is
// open throughout). A region with thousands of connections can run out of
// descriptors; a journal that could not start its next segment then would
// fail, and the store refuse every change until the region restarted.
// With the reserve, the journal gives up a spare for the file and opens it
// again; it takes its spares back as descriptors are freed.
type fdReserve struct {
	log logrus.FieldLogger

	mu     sync.Mutex // guards the following fields
	spares []*os.File
	short  bool // a refill fell short (logged once until it succeeds)
}

// open calls open, which opens a file the journal needs; if the process is
// out of descriptors (EMFILE, ENFILE), it closes a spare and calls it
// again, until it succeeds or no spare is left.
func (r *fdReserve) open(name string, open func() (*os.File, error)) (*os.File, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.refillLocked()
	for {
		f, err := open()
		if err == nil || !outOfFDs(err) || len(r.spares) == 0 {
			return f, err
		}
		last := len(r.spares) - 1
		r.spares[last].Close()
		r.spares = r.spares[:last]
		if r.log != nil {
			r.log.WithField("file", name).WithField("spares_left", last).
				Warn("the process is out of file descriptors: the event journal opens its file with a spare it held")
		}
	}
}

// refill takes the spares that are missing, as far as descriptors allow.
func (r *fdReserve) refill() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.refillLocked()
}

func (r *fdReserve) refillLocked() {
	for len(r.spares) < spareFDs {
		f, err := os.Open(os.DevNull)
		if err != nil {
			if !r.short && r.log != nil {
				r.log.WithError(err).WithField("spares", len(r.spares)).
					Warn("the event journal cannot take back its spare file descriptors; it tries again as it writes")
			}
			r.short = true
			return
		}
		r.spares = append(r.spares, f)
	}
	r.short = false
}

// closeFiles closes files of the journal's (segments written full) and
// takes the spares back at once with the descriptors they freed, before
// anything else in the process can take them. It returns the first error.
func (r *fdReserve) closeFiles(files []*os.File) error {
	if len(files) == 0 {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var first error
	for _, f := range files {
		if err := f.Close(); err != nil && first == nil {
			first = fmt.Errorf("close %s: %w", f.Name(), err)
		}
	}
	r.refillLocked()
	return first
}

// held returns how many spares the reserve holds now.
func (r *fdReserve) held() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.spares)
}

// close closes the spares.
func (r *fdReserve) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, f := range r.spares {
		f.Close()
	}
	r.spares = nil
}

// outOfFDs reports whether err is the process's or the system's
// descriptor limit.
func outOfFDs(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE)
}
