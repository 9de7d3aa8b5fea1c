package region

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/zbridge/zbridge/gateway/metrics"
	"github.com/zbridge/zbridge/internal/acceptloop"
)

// The region's file descriptor budget (Config.FDReserve): the session
// servers (UNSOLMSG, COMMANDS, VMMON) refuse a connection past it with a
// refuse frame, reason busy (session.Config.Reserve); the other listeners
// are wrapped here. /healthz reports the budget under "fds", /metrics as
// zbridge_fd_*.

// budgeted applies the descriptor budget to the listener of the server
// name. The session servers apply it themselves, to refuse in the
// protocol's form; SYSLOG, RELP and the console close a connection past it
// at once (a syslog sender has no protocol to be told in; it reconnects);
// HTTP may use the reserve, so that /healthz still answers and says why
// the others are refused, and answers 503 once the descriptors are gone.
func (r *Region) budgeted(name string, l net.Listener) net.Listener {
	switch name {
	case "unsolmsg", "commands", "vmmon":
		return l
	case "http":
		return r.fds.Listener(l, acceptloop.ListenerConfig{Name: name, UseReserve: true, Refuse: r.refuseHTTP})
	}
	return r.fds.Listener(l, acceptloop.ListenerConfig{Name: name, Refuse: func(c net.Conn, _ string) { c.Close() }})
}

// refuseHTTP answers 503 with why, in plain HTTP (a TLS port closes the
// connection: the handshake would hold the spare descriptor longer), once
// the request has arrived: a response before it is one no client can
// take (Go's own drops it). It runs on a goroutine of its own (a Serve
// goroutine of the region's, in r.wg), since it waits for the client,
// within refuseHTTPWait.
func (r *Region) refuseHTTP(c net.Conn, why string) {
	if r.tls != nil {
		c.Close()
		return
	}
	r.wg.Add(1) // under the HTTP server's Serve goroutine, which is counted
	go func() {
		defer r.wg.Done()
		defer c.Close()
		c.SetDeadline(time.Now().Add(refuseHTTPWait))
		// The request's head; a body, if any, is not waited for.
		var head []byte
		buf := make([]byte, 1024)
		for !bytes.Contains(head, []byte("\r\n\r\n")) && len(head) < 8<<10 {
			n, err := c.Read(buf)
			head = append(head, buf[:n]...)
			if err != nil {
				return
			}
		}
		body := why + "\n"
		io.WriteString(c, "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"+
			"Retry-After: 5\r\nConnection: close\r\nContent-Length: "+strconv.Itoa(len(body))+"\r\n\r\n"+body)
	}()
}

// refuseHTTPWait bounds the wait for a refused HTTP request and the write
// of the answer.
const refuseHTTPWait = 2 * time.Second

// fdHealth is the "fds" object of /healthz.
type fdHealth struct {
	// Open is how many descriptors the region has open (-1: unknown).
	Open int `json:"open"`
	// Limit is its descriptor limit (soft RLIMIT_NOFILE), Reserved how
	// many of them accepted connections may not take, Budget the rest.
	Limit    int `json:"limit"`
	Reserved int `json:"reserved"`
	Budget   int `json:"budget"`
	// Spares is the spare descriptors held to refuse connections with
	// once the region has run out (of SparesWanted).
	Spares       int `json:"spares"`
	SparesWanted int `json:"spares_wanted"`
	// Refused counts the connections refused past the budget, Exhausted
	// those accepted with a spare, once the descriptors ran out.
	Refused   uint64 `json:"refused"`
	Exhausted uint64 `json:"exhausted"`
	// StoreSpares is the spare descriptors the on-disk store's journal
	// holds to start segments with once the process has run out (of
	// StoreSparesWanted; both absent with another store).
	StoreSpares       *int `json:"store_spares,omitempty"`
	StoreSparesWanted *int `json:"store_spares_wanted,omitempty"`
}

// spareFDer is the on-disk store (diskstore.Store.SpareFDs).
type spareFDer interface{ SpareFDs() (held, wanted int) }

func (r *Region) fdHealth() fdHealth {
	st := r.fds.Status()
	h := fdHealth{Open: acceptloop.OpenDescriptors(), Limit: st.Limit, Reserved: st.Reserved, Budget: st.Budget,
		Spares: st.Spares, SparesWanted: st.SparesWanted}
	for _, n := range st.Refused {
		h.Refused += n
	}
	for _, n := range st.Exhausted {
		h.Exhausted += n
	}
	if sf, ok := r.store.(spareFDer); ok {
		held, wanted := sf.SpareFDs()
		h.StoreSpares, h.StoreSparesWanted = &held, &wanted
	}
	return h
}

// healthzWithFDs is /healthz: the region's status (healthz) with the
// descriptor budget added as "fds". A region whose descriptors in use
// have reached the budget is "degraded", with the reason, while the store
// is readable: it serves, but refuses new connections.
func (r *Region) healthzWithFDs(w http.ResponseWriter, req *http.Request) {
	rec := &bufferedResponse{header: w.Header()}
	r.healthz(rec, req)
	if rec.code == 0 {
		rec.code = http.StatusOK
	}
	var body map[string]any
	dec := json.NewDecoder(bytes.NewReader(rec.body.Bytes()))
	dec.UseNumber() // numbers pass through as they were written
	if err := dec.Decode(&body); err != nil {
		w.WriteHeader(rec.code)
		w.Write(rec.body.Bytes())
		return
	}
	fh := r.fdHealth()
	body["fds"] = fh
	if body["status"] == "ok" && fh.Open >= fh.Budget {
		body["status"] = "degraded"
		reasons, _ := body["reasons"].([]any)
		body["reasons"] = append(reasons, fmt.Sprintf("%d file descriptors open, the budget for connections is %d "+
			"(limit %d, %d reserved): new connections are refused", fh.Open, fh.Budget, fh.Limit, fh.Reserved))
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(rec.code)
	json.NewEncoder(w).Encode(body)
}

// bufferedResponse keeps what a handler writes, for healthzWithFDs to add
// to.
type bufferedResponse struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (b *bufferedResponse) Header() http.Header { return b.header }

func (b *bufferedResponse) WriteHeader(code int) {
	if b.code == 0 {
		b.code = code
	}
}

func (b *bufferedResponse) Write(p []byte) (int, error) {
	if b.code == 0 {
		b.code = http.StatusOK
	}
	return b.body.Write(p)
}

// registerFDMetrics registers the zbridge_fd_* metrics (the descriptors
// open and the limit are process_open_fds and process_max_fds).
func (r *Region) registerFDMetrics() {
	reg := r.reg
	reg.NewGaugeFunc("zbridge_fd_reserved",
		"File descriptors, below the limit (process_max_fds), that connections the region accepts may not take: kept for its own work.",
		func() float64 { return float64(r.fds.Status().Reserved) })
	reg.NewGaugeFunc("zbridge_fd_budget",
		"File descriptors connections may take (the limit less the reserve): a connection accepted past it is refused with a reason.",
		func() float64 { return float64(r.fds.Status().Budget) })
	reg.NewGaugeFunc("zbridge_fd_spares",
		"Spare file descriptors held to accept and refuse connections once the region has run out of descriptors.",
		func() float64 { return float64(r.fds.Status().Spares) })
	if sf, ok := r.store.(spareFDer); ok {
		reg.NewGaugeFunc("zbridge_store_fd_spares",
			"Spare file descriptors the on-disk store's journal holds to start segments with once the process has run out of descriptors (it keeps 2).",
			func() float64 { held, _ := sf.SpareFDs(); return float64(held) })
	}
	reg.Collect("zbridge_fd_refused_total",
		"Connections refused for want of file descriptors, by server and cause: budget (accepted past the budget), "+
			"exhausted (accept failed for want of a descriptor; taken with a spare to be refused).",
		metrics.TypeCounter, []string{"server", "cause"}, func(emit func(float64, ...string)) {
			st := r.fds.Status()
			for server, n := range st.Refused {
				emit(float64(n), server, "budget")
			}
			for server, n := range st.Exhausted {
				emit(float64(n), server, "exhausted")
			}
		})
}
